"""A Facets-style overview of a dataset: per-feature statistics and flags.

Statistics use every row (pandas is fast enough for millions of cells);
only the charts drawn from them are aggregated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SKEW_LIMIT = 2.0
"""|skewness| above which a feature is flagged as heavily skewed."""
IMBALANCE_RATIO = 0.2
"""Smallest class count / largest class count below which labels are flagged as imbalanced."""


@dataclass
class Flag:
    """One thing a reviewer should look at."""

    kind: str  # "missing" | "constant" | "skew" | "imbalance"
    subject: str  # feature name or "label"
    message: str


@dataclass
class Profile:
    """The overview of one dataset.

    Attributes
    ----------
    features : pandas.DataFrame
        Tables: one row per feature with columns feature, type, count,
        missing, distinct, min, mean, max, skew. Images: per-channel stats.
    classes : pandas.DataFrame
        Columns class, count, share (empty without labels).
    flags : list of Flag
    """

    features: object
    classes: object
    flags: list = field(default_factory=list)
    n_rows: int = 0


def class_counts(y):
    """Label counts as a frame with columns class, count, share (sorted by class)."""
    import pandas as pd

    if y is None:
        return pd.DataFrame(columns=["class", "count", "share"])
    s = pd.Series(np.asarray(y).ravel()).astype(str)
    counts = s.value_counts().sort_index()
    frame = pd.DataFrame({"class": counts.index.astype(str), "count": counts.to_numpy()})
    frame["share"] = frame["count"] / max(len(s), 1)
    return frame


def _imbalance_flag(classes) -> list:
    if len(classes) < 2:
        return []
    lo, hi = int(classes["count"].min()), int(classes["count"].max())
    if hi and lo / hi < IMBALANCE_RATIO:
        small = classes.loc[classes["count"].idxmin(), "class"]
        return [Flag("imbalance", "label", f"class {small} has {lo} rows against {hi} for the largest class "
                                            f"(ratio {lo / hi:.2f} < {IMBALANCE_RATIO})")]
    return []


def profile_table(data) -> Profile:
    """Per-feature statistics and flags of a tabular Dataset."""
    import pandas as pd

    frame = data.frame if data.frame is not None else pd.DataFrame(data.x, columns=data.feature_names)
    records, flags = [], []
    n = len(frame)
    for name in frame.columns:
        col = frame[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        missing = int(col.isna().sum())
        distinct = int(col.nunique(dropna=True))
        rec = {"feature": str(name), "type": "numeric" if numeric else "categorical", "count": n - missing,
               "missing": missing, "distinct": distinct, "min": np.nan, "mean": np.nan, "max": np.nan, "skew": np.nan}
        if numeric and n - missing > 0:
            arr = col.to_numpy(dtype=float)
            arr = arr[np.isfinite(arr)]
            if len(arr):
                rec.update(min=float(arr.min()), mean=float(arr.mean()), max=float(arr.max()), skew=_skew(arr))
        records.append(rec)
        flags += _column_flags(rec, n)
    classes = class_counts(data.y)
    flags += _imbalance_flag(classes)
    features = pd.DataFrame.from_records(records, columns=list(records[0]) if records else None)
    return Profile(features=features, classes=classes, flags=flags, n_rows=n)


def _column_flags(rec: dict, n: int) -> list:
    """Missing, constant and skew flags of one column's statistics (``rec``: feature, missing, distinct, skew)."""
    name, missing, out = rec["feature"], rec["missing"], []
    if missing:
        out.append(Flag("missing", name, f"{name}: {missing} missing value(s) ({missing / max(n, 1):.1%})"))
    if rec["distinct"] <= 1:
        out.append(Flag("constant", name, f"{name}: constant (one distinct value)"))
    elif np.isfinite(rec["skew"]) and abs(rec["skew"]) > SKEW_LIMIT:
        out.append(Flag("skew", name, f"{name}: heavily skewed (skewness {rec['skew']:.2f})"))
    return out


def profile_large(data) -> Profile:
    """:func:`profile_table` of a DuckDB-backed table (:mod:`studio.data.large`), over every row of the file.

    The statistics come from :meth:`studio.data.large.LargeTable.summary`
    (SQL; ``distinct`` estimated) and the label counts from SQL as well;
    only the features and the label of ``data`` are listed.
    """
    table = data.large
    summary = table.summary()
    features = summary[summary["feature"].isin(list(data.feature_names))].reset_index(drop=True)
    flags = [f for rec in features.to_dict("records") for f in _column_flags(rec, table.n_rows)]
    classes = table.class_counts(data.label) if data.label and data.class_names is not None else class_counts(None)
    flags += _imbalance_flag(classes)
    return Profile(features=features, classes=classes, flags=flags, n_rows=table.n_rows)


def _skew(arr: np.ndarray) -> float:
    """Sample skewness (Fisher-Pearson, biased), 0 for a constant array."""
    mu = arr.mean()
    sd = arr.std()
    if sd == 0 or not np.isfinite(sd):
        return 0.0
    return float(np.mean(((arr - mu) / sd) ** 3))


def profile_images(data) -> Profile:
    """Per-channel statistics, image size and flags of an image Dataset."""
    import pandas as pd

    x = data.x  # (n, C, H, W)
    n, c, h, w = x.shape
    records = []
    for ch in range(c):
        v = x[:, ch]  # (n, H, W)
        records.append({"channel": ch, "height": h, "width": w, "min": float(v.min()), "mean": float(v.mean()),
                        "std": float(v.std()), "max": float(v.max())})
    flags = []
    per_image_std = x.reshape(n, -1).std(axis=1)  # (n,)
    blank = int((per_image_std == 0).sum())
    if blank:
        flags.append(Flag("constant", "images", f"{blank} image(s) are a single flat colour"))
    classes = class_counts(None if data.y is None else _image_labels(data))
    flags += _imbalance_flag(classes)
    return Profile(features=pd.DataFrame.from_records(records), classes=classes, flags=flags, n_rows=n)


def _image_labels(data):
    y = np.asarray(data.y)
    if data.class_names and y.dtype.kind in "iu" and y.size and y.max() < len(data.class_names):
        return np.asarray(data.class_names, dtype=object)[y]
    return y


def profile(data) -> Profile:
    """:func:`profile_table` or :func:`profile_images` by the data kind."""
    if data.kind == "image":
        return profile_images(data)
    return profile_large(data) if getattr(data, "large", None) is not None else profile_table(data)


def samples_per_class(data, k: int = 6, seed: int = 0) -> dict:
    """Up to ``k`` row indices per class (sorted by class name), for a sample grid."""
    if data.y is None:
        rng = np.random.default_rng(seed)
        return {"(all)": sorted(rng.choice(len(data), min(k, len(data)), replace=False).tolist())}
    labels = np.asarray(_image_labels(data) if data.kind == "image" else data.y).astype(str)
    rng = np.random.default_rng(seed)
    out = {}
    for cls in sorted(set(labels.tolist())):
        idx = np.nonzero(labels == cls)[0]
        out[cls] = sorted(rng.choice(idx, min(k, len(idx)), replace=False).tolist())
    return out
