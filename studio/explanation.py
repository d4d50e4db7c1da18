"""The one result type every explainer returns.

Modelled on shap's ``Explanation``: parallel arrays, never renders itself.
Charts (``studio.charts``) and overlays (``studio.overlays``) are pure
functions of an :class:`Explanation`.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA = "studio.explanation/1"
KINDS = ("attribution", "curve", "rule", "importance")
MAX_RESULT_BYTES = 2**30
"""Default bound on one decoded result (``$STUDIO_RESULT_MAX_BYTES``)."""
_MAX_NPZ_MEMBERS = 10_000


def max_result_bytes() -> int:
    """``$STUDIO_RESULT_MAX_BYTES`` or 1 GiB: the most bytes one decoded :class:`Explanation` may hold."""
    import os

    raw = os.environ.get("STUDIO_RESULT_MAX_BYTES")
    try:
        return int(raw) if raw else MAX_RESULT_BYTES
    except ValueError:
        from studio.errors import StudioError

        raise StudioError(f"environment variable STUDIO_RESULT_MAX_BYTES must be an integer, got {raw!r}") from None


def check_npz(blob: bytes, max_bytes: int) -> None:
    """Refuse an ``.npz`` whose decoded arrays would exceed ``max_bytes``, before reading any array.

    Reads only the zip directory and each member's ``.npy`` header (numpy's
    ``read_magic`` / ``read_array_header_*``). The zip reader never yields
    more than a member's declared size, so the declared sizes bound the work.

    Raises
    ------
    ValueError
        Not a zip, too many members, object (pickled) arrays, a declared size
        over ``max_bytes``, or a damaged header.
    """
    import zipfile

    from numpy.lib import format as npformat

    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ValueError(f"corrupt explanation blob: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > _MAX_NPZ_MEMBERS:
            raise ValueError(f"explanation blob has {len(infos)} members, over {_MAX_NPZ_MEMBERS}")
        declared = sum(info.file_size for info in infos)
        if declared > max_bytes:
            raise ValueError(f"explanation blob inflates to {declared} bytes, over the limit of {max_bytes}")
        total = 0
        for info in infos:
            try:
                with zf.open(info) as fh:
                    version = npformat.read_magic(fh)
                    read_header = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}
                    if version not in read_header:
                        raise ValueError(f"unsupported .npy version {version}")
                    shape, _, dtype = read_header[version](fh, max_header_size=10_000)
            except Exception as exc:  # zipfile, EOF, bad header: all mean corrupt
                raise ValueError(f"corrupt explanation blob: member {info.filename!r}: {exc}") from None
            if dtype.hasobject:
                raise ValueError(f"explanation blob member {info.filename!r} holds Python objects")
            total += int(np.prod(shape, dtype=object)) * dtype.itemsize
            if total > max_bytes:
                raise ValueError(f"explanation blob declares arrays of {total} bytes, over the limit of {max_bytes}")


@dataclass
class Curve:
    """One curve-shaped effect of one or two features.

    Attributes
    ----------
    feature : str or tuple of str
        The feature (or the two features of an interaction).
    kind : str
        ``"pdp"``, ``"ice"``, ``"ale"`` or ``"ebm"`` (and the same names for
        two-feature curves).
    grid : list of ndarray
        One grid per feature; ``grid[0]`` has shape (n_grid,).
    average : ndarray of shape (n_grid,) or (n_grid_0, n_grid_1)
        The average effect on the explained output.
    individual : ndarray of shape (n_rows, n_grid) or None
        ICE curves, one per row, where the method has them.
    categorical : bool
        Whether the grid holds category values rather than numbers.
    extra : dict
        Method-specific arrays (e.g. ALE bin counts), JSON-able. A curve of
        a feature with missing values has ``extra["missing"]`` (float): the
        effect of the feature being missing, on the curve's scale (PDP/ICE:
        average output with the feature set to NaN; ALE: centred effect of
        making it missing; EBM: interpret's missing-bin score); ICE adds
        ``extra["missing_individual"]`` of shape (n_rows,). A two-feature
        curve with missing values in either feature has
        ``extra["missing_axes"]`` (two bool: which feature has a "missing"
        entry) and ``extra["with_missing"]`` of shape
        (n_grid_0 + m_0, n_grid_1 + m_1), ``m = missing_axes``: the surface
        with a "missing" row / column at index 0 of each such axis (one
        feature EBM terms have it too, shape (n_grid + 1,)). Grids never
        hold NaN.
    """

    feature: Any
    kind: str
    grid: list
    average: np.ndarray
    individual: np.ndarray | None = None
    categorical: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def features(self) -> tuple:
        """The feature names as a tuple (one or two)."""
        return tuple(self.feature) if isinstance(self.feature, (list, tuple)) else (self.feature,)


@dataclass
class Rule:
    """An if-then rule (anchor) for one explained row.

    Attributes
    ----------
    row : int
        Index of the explained row in the dataset.
    predicates : list of str
        ``"feature op value"`` or ``"low < feature <= high"``.
    precision : float
        Share of samples satisfying the rule that keep the prediction.
    coverage : float
        Share of the data distribution the rule applies to.
    extra : dict
        Method-specific details (e.g. superpixel ids for images).
    """

    row: int
    predicates: list
    precision: float
    coverage: float
    extra: dict = field(default_factory=dict)


@dataclass
class Importance:
    """Global importance of one feature: its mean and spread."""

    feature: str
    mean: float
    std: float


@dataclass
class Explanation:
    """The result of one explainer run.

    Exactly one payload is filled, named by ``kind``:

    - ``"attribution"``: ``values`` of shape (n_rows, n_features) for tables
      or (n_rows, channels, height, width) for images, and ``base_values`` of
      shape (n_rows,);
    - ``"curve"``: ``curves``, a list of :class:`Curve`;
    - ``"rule"``: ``rules``, a list of :class:`Rule`;
    - ``"importance"``: ``importances``, a list of :class:`Importance`.

    Attributes
    ----------
    method : str
        Registry key of the method that computed it.
    kind : str
        One of ``"attribution"``, ``"curve"``, ``"rule"``, ``"importance"``.
    params : dict
        The validated parameters used.
    rows : list of int
        Dataset rows explained (empty for global methods over all rows).
    target : list of int or None
        Explained class per row (local) or a single-element list (global);
        None for regression.
    feature_names, output_names : list of str or None
    checks : dict of str to float
        Measured properties, e.g. ``completeness_gap``, ``additivity_gap``,
        ``fidelity``.
    compute_seconds : float
    cache : str
        ``"hit"`` or ``"miss"``.
    provenance : dict
        Package versions, model and dataset fingerprints, seed.
    model_id, model_format, dataset_id : str
    data : ndarray or None
        The explained inputs, parallel to ``values`` (for charts).
    """

    method: str
    kind: str
    params: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)
    target: list | None = None
    feature_names: list | None = None
    output_names: list | None = None
    values: np.ndarray | None = None
    base_values: np.ndarray | None = None
    data: np.ndarray | None = None
    curves: list = field(default_factory=list)
    rules: list = field(default_factory=list)
    importances: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)
    compute_seconds: float = 0.0
    cache: str = "miss"
    provenance: dict = field(default_factory=dict)
    model_id: str = ""
    model_format: str = ""
    dataset_id: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    def copy(self) -> "Explanation":
        """A deep copy: arrays, lists, dicts and the curves, rules and importances are new objects."""
        return _fresh(self)

    # ---- JSON (schema studio.explanation/1) ---------------------------------
    def to_dict(self) -> dict:
        """The JSON-able form in schema ``studio.explanation/1``."""
        out = {
            "schema": SCHEMA,
            "method": self.method,
            "params": _jsonable(self.params),
            "model": {"id": self.model_id, "format": self.model_format},
            "dataset": {"id": self.dataset_id},
            "rows": [int(r) for r in self.rows],
            "target": None if self.target is None else [_jsonable(t) for t in self.target],
            "kind": self.kind,
            "feature_names": self.feature_names,
            "output_names": self.output_names,
            "checks": _jsonable(self.checks),
            "compute_seconds": float(self.compute_seconds),
            "cache": self.cache,
            "provenance": _jsonable(self.provenance),
        }
        if self.kind == "attribution":
            out["values"] = _jsonable(self.values)
            out["base_values"] = _jsonable(self.base_values)
        elif self.kind == "curve":
            out["curves"] = [
                {
                    "feature": _jsonable(c.feature),
                    "kind": c.kind,
                    "grid": [_jsonable(g) for g in c.grid],
                    "average": _jsonable(c.average),
                    "individual": _jsonable(c.individual),
                    "categorical": c.categorical,
                    "extra": _jsonable(c.extra),
                }
                for c in self.curves
            ]
        elif self.kind == "rule":
            out["rules"] = [_jsonable(dataclasses.asdict(r)) for r in self.rules]
        else:
            out["importances"] = [_jsonable(dataclasses.asdict(i)) for i in self.importances]
        return out

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to a JSON string (NaN/inf written as null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Explanation":
        """Rebuild an Explanation from :meth:`to_dict` output."""
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        kw = dict(
            method=d["method"],
            kind=d["kind"],
            params=d.get("params") or {},
            rows=d.get("rows") or [],
            target=d.get("target"),
            feature_names=d.get("feature_names"),
            output_names=d.get("output_names"),
            checks=d.get("checks") or {},
            compute_seconds=d.get("compute_seconds", 0.0),
            cache=d.get("cache", "miss"),
            provenance=d.get("provenance") or {},
            model_id=d["model"]["id"],
            model_format=d["model"].get("format", ""),
            dataset_id=d["dataset"]["id"],
        )
        if d["kind"] == "attribution":
            kw["values"] = _array(d.get("values"))
            kw["base_values"] = _array(d.get("base_values"))
        elif d["kind"] == "curve":
            kw["curves"] = [
                Curve(
                    feature=tuple(c["feature"]) if isinstance(c["feature"], list) else c["feature"],
                    kind=c["kind"],
                    grid=[_array(g) for g in c["grid"]],
                    average=_array(c["average"]),
                    individual=_array(c.get("individual")),
                    categorical=c.get("categorical", False),
                    extra=c.get("extra") or {},
                )
                for c in d["curves"]
            ]
        elif d["kind"] == "rule":
            kw["rules"] = [Rule(**r) for r in d["rules"]]
        else:
            kw["importances"] = [Importance(**i) for i in d["importances"]]
        return cls(**kw)

    # ---- binary form for the cache (arrays kept exact) ----------------------
    def to_bytes(self) -> bytes:
        """Lossless binary form: an ``.npz`` with the arrays and a JSON header.

        Loaded with ``allow_pickle=False``, so a tampered cache entry can
        never run code.
        """
        arrays: dict[str, np.ndarray] = {}

        def stash(name, value):
            if value is None:
                return None
            key = f"a{len(arrays)}"
            arrays[key] = np.asarray(value)
            return {"__array__": key}

        header = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("values", "base_values", "data", "curves", "rules", "importances")
        }
        header = _jsonable(header)
        header["values"] = stash("values", self.values)
        header["base_values"] = stash("base_values", self.base_values)
        header["data"] = stash("data", _numeric_or_none(self.data))
        header["curves"] = [
            {
                "feature": _jsonable(c.feature),
                "kind": c.kind,
                "grid": [stash("g", g) for g in c.grid],
                "average": stash("avg", c.average),
                "individual": stash("ind", c.individual),
                "categorical": c.categorical,
                "extra": _jsonable(c.extra),
            }
            for c in self.curves
        ]
        header["rules"] = [_jsonable(dataclasses.asdict(r)) for r in self.rules]
        header["importances"] = [_jsonable(dataclasses.asdict(i)) for i in self.importances]
        buf = io.BytesIO()
        np.savez(buf, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes, max_bytes: int | None = None) -> "Explanation":
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on a corrupt blob.

        Parameters
        ----------
        blob : bytes
            An ``.npz`` as written by :meth:`to_bytes`.
        max_bytes : int, optional
            Bound on the decoded size (every array's declared bytes, and the
            archive's declared uncompressed size), checked from the zip
            directory and the ``.npy`` headers before any array is read.
            Default: :func:`max_result_bytes`. A small blob that would
            inflate past it is refused with ``ValueError``.
        """
        check_npz(blob, max_result_bytes() if max_bytes is None else max_bytes)
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                header = json.loads(npz["__header__"].tobytes().decode())
                arrays = {k: npz[k] for k in npz.files if k != "__header__"}
        except Exception as exc:  # zipfile/json/KeyError: all mean corrupt
            raise ValueError(f"corrupt explanation blob: {exc}") from exc

        def unstash(v):
            return arrays[v["__array__"]] if isinstance(v, dict) and "__array__" in v else v

        curves = [
            Curve(
                feature=tuple(c["feature"]) if isinstance(c["feature"], list) else c["feature"],
                kind=c["kind"],
                grid=[unstash(g) for g in c["grid"]],
                average=unstash(c["average"]),
                individual=unstash(c["individual"]),
                categorical=c["categorical"],
                extra=c["extra"],
            )
            for c in header.pop("curves")
        ]
        rules = [Rule(**r) for r in header.pop("rules")]
        importances = [Importance(**i) for i in header.pop("importances")]
        for key in ("values", "base_values", "data"):
            header[key] = unstash(header[key])
        return cls(**header, curves=curves, rules=rules, importances=importances)

    # ---- convenience ---------------------------------------------------------
    def top_features(self, row: int = 0, k: int = 10) -> list[str]:
        """Names of the ``k`` features with the largest |attribution| for a row."""
        if self.kind != "attribution" or self.feature_names is None:
            raise ValueError("top_features needs a tabular attribution")
        order = np.argsort(-np.abs(np.asarray(self.values[row])))[:k]
        return [self.feature_names[i] for i in order]


def _numeric_or_none(x):
    if x is None:
        return None
    arr = np.asarray(x)
    return arr if arr.dtype.kind in "biuf" else None


def _array(v):
    if v is None:
        return None
    return np.asarray(v, dtype=float)


def _jsonable(v):
    """Convert numpy scalars/arrays and tuples into plain JSON values (NaN -> None)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "fc":
            return _jsonable(v.tolist())
        return v.tolist()
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if np.isfinite(f) else None
    return str(v)


def _fresh(value):
    """A deep copy of ``value`` made of arrays, containers, dataclasses and immutable scalars."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        if all(type(v) is str for v in value):  # names: the strings themselves are immutable
            return list(value)
        return [_fresh(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _fresh(getattr(value, f.name)) for f in dataclasses.fields(value)})
    return value
