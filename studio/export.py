"""CSV for download, safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and a leading tab or
carriage return can hide that character. Feature names, class names and text
values come from uploaded files, so every CSV the app offers goes through
:func:`csv_bytes`, which prefixes such text cells with ``'`` as the OWASP
"CSV Injection" guidance advises; numbers are left as numbers (``-1.5`` is a
number, not a formula).
"""

from __future__ import annotations

import numbers

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""Leading characters a spreadsheet may evaluate: OWASP's list plus their full-width forms."""


def neutralise_cell(value):
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula.

    Parameters
    ----------
    value : object
        One cell. Numbers (Python, numpy), booleans and missing values are
        returned unchanged; anything else is treated as text.

    Returns
    -------
    object
        The value, or ``"'" + str(value)`` for text starting with one of
        :data:`FORMULA_STARTS`.
    """
    if value is None or isinstance(value, (numbers.Number, bool)):
        return value
    try:
        import numpy as np

        if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
            return value
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else value


def csv_bytes(frame, index: bool = False) -> bytes:
    """A DataFrame as UTF-8 CSV bytes with every formula-like text cell and column name neutralised.

    Parameters
    ----------
    frame : pandas.DataFrame
    index : bool
        Write the index as the first column (its labels are neutralised too).

    Returns
    -------
    bytes
        ``frame.to_csv`` of a neutralised copy, rows ending in CRLF (RFC
        4180); numeric columns are written as numbers (negative numbers keep
        their sign, no apostrophe).
    """
    import pandas as pd

    out = frame.copy()
    for position, dtype in enumerate(out.dtypes):
        if not pd.api.types.is_numeric_dtype(dtype):  # text, categories, mixed objects: cell by cell
            out.isetitem(position, out.iloc[:, position].astype(object).map(neutralise_cell))
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    if index:
        out.index = out.index.map(neutralise_cell)
    # CRLF rows (RFC 4180): the csv writer then quotes any cell holding a CR or LF, so a cell cannot split its row
    return out.to_csv(index=index, lineterminator="\r\n").encode("utf-8")
