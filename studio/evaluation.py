"""Model quality on a dataset: predictions table, metrics, subsets (after ActiVis).

Pure computation (no Streamlit); the Model page draws what these return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.errors import StudioError

OPS = ("==", "!=", "<", "<=", ">", ">=", "in")
"""``in`` takes a comma-separated list (``row in 3,17,42``; ``label in 3,5``): a subset picked on a chart."""


@dataclass(frozen=True)
class Condition:
    """``column op value``; column is a feature, ``label``, ``prediction``, ``confidence`` or ``correct``."""

    column: str
    op: str
    value: object

    def text(self) -> str:
        return f"{self.column} {self.op} {self.value}"


def predictions_frame(model, data, batch_size: int | None = None):
    """Every row's label, prediction, confidence and correctness.

    Parameters
    ----------
    model : Model
    data : Dataset
        Aligned to the model.

    Returns
    -------
    frame : pandas.DataFrame
        Columns row, label, prediction, confidence, correct (classifiers) or
        row, label, prediction, error (regression); tables add their features.
    output : ndarray of shape (n_rows, n_outputs)
        The model's output on every row.
    """
    import pandas as pd

    out = model.output(data.x, batch_size=batch_size)  # (n, n_outputs)
    frame = pd.DataFrame({"row": np.arange(len(data))})
    if model.is_classifier:
        pred = out.argmax(axis=1)
        names = model.class_names or [str(i) for i in range(out.shape[1])]
        frame["prediction"] = np.asarray(names, dtype=object)[pred]
        frame["confidence"] = out.max(axis=1)
        if data.y is not None:
            labels = label_names(model, data)
            frame.insert(1, "label", labels)
            frame["correct"] = frame["label"] == frame["prediction"]
    else:
        frame["prediction"] = out[:, 0]
        if data.y is not None:
            y = np.asarray(data.y, dtype=float)
            frame.insert(1, "label", y)
            frame["error"] = out[:, 0] - y
    if data.kind == "tabular" and data.frame is not None:
        feats = data.frame.reset_index(drop=True)
        clash = [c for c in feats.columns if c in frame.columns]
        frame = pd.concat([frame, feats.rename(columns={c: f"{c} (feature)" for c in clash})], axis=1)
    return frame, out


def label_names(model, data) -> np.ndarray:
    """The dataset labels as the model's class names (object array of str)."""
    from studio.explainers.importance import _label_space

    y = np.asarray(data.y)
    names = model.class_names or []
    if data.kind == "image" and data.class_names and y.dtype.kind in "iu":
        return np.asarray(data.class_names, dtype=object)[y].astype(str).astype(object)
    space = _label_space(model, y)  # label of each class index
    by_label = {str(v): names[i] if i < len(names) else str(v) for i, v in enumerate(space)}
    return np.asarray([by_label.get(str(v), str(v)) for v in y], dtype=object)


def metrics(frame, output: np.ndarray, model) -> dict:
    """Task metrics on the rows of ``frame`` (indices into ``output`` by ``frame.row``).

    Classification: accuracy, macro F1, ROC AUC (binary: positive class;
    multiclass: one-vs-rest macro; NaN when a class is absent).
    Regression: R^2, MAE, RMSE.
    """
    from sklearn import metrics as skm

    out = {"rows": int(len(frame))}
    if "label" not in frame or len(frame) == 0:
        return out
    if model.is_classifier:
        y, p = frame["label"].astype(str).to_numpy(), frame["prediction"].astype(str).to_numpy()
        out["accuracy"] = float(skm.accuracy_score(y, p))
        out["f1_macro"] = float(skm.f1_score(y, p, average="macro", zero_division=0))
        names = [str(c) for c in (model.class_names or range(output.shape[1]))]
        probs = output[frame["row"].to_numpy()]
        present = sorted(set(y))
        auc = float("nan")
        try:
            if len(names) == 2 and len(present) == 2:
                auc = skm.roc_auc_score((y == names[1]).astype(int), probs[:, 1])
            elif len(present) == len(names) > 2:
                onehot = (y[:, None] == np.asarray(names)[None, :]).astype(int)
                auc = skm.roc_auc_score(onehot, probs, average="macro", multi_class="ovr")
        except ValueError:
            pass
        out["roc_auc"] = float(auc)
    else:
        y, p = frame["label"].to_numpy(dtype=float), frame["prediction"].to_numpy(dtype=float)
        out["r2"] = float(skm.r2_score(y, p)) if len(y) > 1 else float("nan")
        out["mae"] = float(skm.mean_absolute_error(y, p))
        out["rmse"] = float(np.sqrt(skm.mean_squared_error(y, p)))
    return out


def confusion(frame, class_names) -> np.ndarray:
    """Confusion matrix (rows: true, columns: predicted) in ``class_names`` order."""
    from sklearn.metrics import confusion_matrix

    names = [str(c) for c in class_names]
    return confusion_matrix(frame["label"].astype(str), frame["prediction"].astype(str), labels=names)


def _canonical(value) -> str:
    """A cell or list item as text for ``in``: numbers without a trailing ``.0`` (``3`` matches ``3.0``)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def coerce_condition(kind: str, cond) -> tuple:
    """How ``cond`` tests a column of ``kind`` ("number", "bool" or "text") and the value it compares with.

    Returns ``("in", [items])`` or ``(kind, value)`` with the value as the
    column holds it; raises StudioError for an unknown operator or a value
    that does not suit the column. Shared by the pandas path
    (:func:`apply_conditions`) and the DuckDB path
    (:func:`studio.data.large.where_clause`), so both mean the same.
    """
    if cond.op not in OPS:
        raise StudioError(f"operator {cond.op!r} is not one of {', '.join(OPS)}")
    value = cond.value
    if cond.op == "in":
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        return "in", [v for v in items if str(v).strip()]
    if kind == "bool":
        return kind, str(value).strip().lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)
    if kind == "number":
        try:
            return kind, float(value)
        except (TypeError, ValueError):
            raise StudioError(f"{cond.column} is numeric; {value!r} is not a number") from None
    if cond.op not in ("==", "!="):
        raise StudioError(f"{cond.column} holds text; use == or != with it")
    return kind, str(value)


def column_kind(col) -> str:
    """"bool", "number" or "text" for a pandas column."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        return "bool"
    return "number" if pd.api.types.is_numeric_dtype(col) else "text"


def apply_conditions(frame, conditions) -> np.ndarray:
    """Boolean mask of the rows meeting every condition.

    Raises StudioError for an unknown column, operator or a value that does
    not suit the column.
    """
    mask = np.ones(len(frame), dtype=bool)
    for cond in conditions:
        if cond.column not in frame.columns:
            raise StudioError(f"no column {cond.column!r} to filter on; choose one of {', '.join(map(str, frame.columns[:10]))}")
        col = frame[cond.column]
        kind, value = coerce_condition(column_kind(col), cond)
        if kind == "in":
            wanted = {_canonical(v) for v in value}
            mask &= np.asarray([_canonical(v) in wanted for v in col], dtype=bool)
            continue
        if kind == "text":
            col = col.astype(str)
        ops = {"==": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__}
        mask &= ops[cond.op](value).to_numpy(dtype=bool)
    return mask
