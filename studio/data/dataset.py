"""The Dataset type: a table or a stack of images, with labels."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from studio.errors import StudioError, last_line


def limit(name: str, default: int) -> int:
    """A size limit, overridable by the environment variable ``name``."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise StudioError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _runs_on(model, x, finite: bool = False) -> bool:
    """Whether ``model.output(x)`` works (and, with ``finite``, gives finite numbers)."""
    try:
        out = model.output(x)
    except MemoryError:
        raise
    except Exception:
        return False
    return bool(np.isfinite(out).all()) if finite else True


@dataclass
class Dataset:
    """A loaded dataset.

    Attributes
    ----------
    kind : {"tabular", "image"}
    x : ndarray
        Tables: shape (n_rows, n_features), float64 when every feature is
        numeric, else object. Images: float32 of shape (n, C, H, W) in [0, 1].
    y : ndarray of shape (n_rows,) or None
        Labels as given in the file (class folder index for images).
    feature_names : list of str
        Tables: column names. Images: ``["pixel"]`` is not used; None.
    label : str or None
        Name of the label column.
    class_names : list of str or None
        Distinct labels as text (image folders, or the label column's values).
    categorical : list of str
        Names of non-numeric features.
    frame : pandas.DataFrame or None
        Tables: the features as loaded (same order as ``feature_names``).
    names : list of str or None
        Images: file names inside the folder or archive.
    name : str
        File name, for display.
    notes : list of str
        What loading or aligning changed, in words for the Data page (e.g.
        grey images converted to RGB); empty when nothing was changed.
    large : studio.data.large.LargeTable or None
        A table of millions of rows served by DuckDB: the arrays above are
        then its stated uniform sample, and ``large`` answers over every row.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray | None = None
    feature_names: list | None = None
    label: str | None = None
    class_names: list | None = None
    categorical: list = field(default_factory=list)
    frame: object = None
    names: list | None = None
    name: str = "data"
    notes: list = field(default_factory=list)
    large: object = field(default=None, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, repr=False)
    _checked_for: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        """One line: name, kind, size and label (the frame and arrays are not printed)."""
        if self.kind == "image":
            c, h, w = self.image_shape or (0, 0, 0)
            shape = f"{len(self)} images {c}x{h}x{w}"
        else:
            shape = f"{len(self)} rows x {self.n_features} features"
            if self.categorical:
                shape += f" ({len(self.categorical)} non-numeric)"
        label = f" label={self.label!r}" if self.label else ""
        classes = f" classes={len(self.class_names)}" if self.class_names else ""
        return f"<Dataset {self.name!r} {self.kind}: {shape}{label}{classes}>"

    @property
    def n_features(self) -> int | None:
        return None if self.feature_names is None else len(self.feature_names)

    @property
    def image_shape(self) -> tuple | None:
        """(C, H, W) for image datasets."""
        return tuple(self.x.shape[1:]) if self.kind == "image" else None

    @property
    def fingerprint(self) -> str:
        """sha256 over the feature names, inputs and labels."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(repr((self.kind, self.feature_names, self.label)).encode())
            if self.large is not None:  # the file's sha256 and the stated sample, not the sample's cells
                h.update(repr((self.large.fingerprint, self.large.sample_rows, self.large.seed)).encode())
            elif self.kind == "tabular" and self.frame is not None:
                import pandas as pd

                h.update(pd.util.hash_pandas_object(self.frame, index=False).to_numpy().tobytes())
            else:
                h.update(np.ascontiguousarray(self.x).tobytes())
            if self.y is not None:
                h.update(np.asarray(self.y).astype(str).astype("U").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @property
    def id(self) -> str:
        return self.fingerprint

    def numeric_x(self) -> np.ndarray:
        """Inputs as float (tables with categoricals raise StudioError)."""
        if self.x.dtype == object:
            raise StudioError(
                f"features {', '.join(self.categorical[:5])} are not numeric; this method needs numeric features"
            )
        return self.x

    def subset(self, rows) -> "Dataset":
        """A new Dataset with only ``rows`` (indices or a boolean mask)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.nonzero(rows)[0]
        return Dataset(
            kind=self.kind,
            x=self.x[rows],
            y=None if self.y is None else self.y[rows],
            feature_names=self.feature_names,
            label=self.label,
            class_names=self.class_names,
            categorical=list(self.categorical),
            frame=None if self.frame is None else self.frame.iloc[rows].reset_index(drop=True),
            names=None if self.names is None else [self.names[i] for i in rows],
            name=self.name,
            notes=list(self.notes),
        )

    def aligned_to(self, model) -> "Dataset":
        """This dataset checked against ``model`` and put in its feature order.

        Raises StudioError with what to fix when features, sizes or classes
        do not agree.
        """
        if model.kind is not None and model.kind != self.kind:
            raise StudioError(
                f"the model expects {model.kind} input but the dataset holds {self.kind} data; load a matching pair"
            )
        if self.kind == "image":
            want = model.input_size
            if want is not None and tuple(want[1:]) == self.image_shape[1:] and want[0] != self.image_shape[0]:
                from studio.data.images import convert_channels

                converted = convert_channels(self, int(want[0]))
                if converted is not None:
                    converted._check_images_for(model)
                    return converted
            if want is not None and tuple(want) != self.image_shape:
                raise StudioError(
                    f"the model expects images of {want[0]} channel(s) at {want[1]}x{want[2]} but the dataset has "
                    f"{self.image_shape[0]} channel(s) at {self.image_shape[1]}x{self.image_shape[2]}; resize the images or fix the card's input_size"
                )
            self._check_images_for(model)
            return self
        aligned = self._with_label_for(model)._aligned_columns(model)
        if self.large is not None and aligned is not self:  # the same file, now in the model's order
            aligned.large, aligned.notes = self.large, list(self.notes)
        aligned._check_values_for(model)
        return aligned

    def _with_label_for(self, model) -> "Dataset":
        """A table loaded without knowing the model: its label found by :func:`studio.data.tabular.label_column`.

        ``studio.load_dataset(path)`` alone cannot tell which column is the
        label when none is called target/label/y/class; with the model's
        feature names, the one column the model does not use is (as the CLI
        finds it).
        """
        if self.label is not None or self.frame is None or not model.feature_names:
            return self
        from studio.data.tabular import label_column, table_dataset

        label = label_column(list(self.feature_names), model.feature_names)
        if label is None:
            return self
        return table_dataset(self.frame, name=self.name, label=label)

    def _aligned_columns(self, model) -> "Dataset":
        names = model.feature_names
        n_model = getattr(model, "n_features", None)
        if names is None:
            if n_model is not None and n_model != self.n_features:
                raise StudioError(
                    f"the model takes {n_model} features but the dataset has {self.n_features} "
                    f"({', '.join(self.feature_names[:6])}{'...' if self.n_features > 6 else ''}); check the label column"
                )
            return self
        missing = [n for n in names if n not in self.feature_names]
        if missing:
            raise StudioError(
                f"the dataset lacks feature(s) the model needs: {', '.join(missing[:8])}"
                f"{' and more' if len(missing) > 8 else ''}; the dataset has {', '.join(self.feature_names[:8])}"
            )
        extra = [n for n in self.feature_names if n not in names]
        if extra:
            raise StudioError(
                f"the dataset has column(s) the model does not use: {', '.join(extra[:8])}; "
                "name the label column (--label) or drop the extra columns"
            )
        if list(names) == list(self.feature_names):
            return self
        frame = self.frame[list(names)]
        from studio.data.tabular import frame_to_x

        x, categorical = frame_to_x(frame)
        return Dataset(
            kind="tabular", x=x, y=self.y, feature_names=list(names), label=self.label,
            class_names=self.class_names, categorical=categorical, frame=frame, name=self.name,
        )

    def _check_images_for(self, model) -> None:
        """The model must run on these images and have an output for every class folder."""
        if self._checked_for == model.cache_id or len(self) == 0:
            return
        try:
            out = model.output(self.x[:1])
        except StudioError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            raise StudioError(
                f"the model could not run on these images ({last_line(exc)}); "
                "check the card's input_size against the images"
            ) from None
        if model.is_classifier and self.class_names and len(self.class_names) > out.shape[1]:
            raise StudioError(
                f"the dataset has {len(self.class_names)} classes but the model outputs {out.shape[1]}; "
                "check the card's class_names or the class folders"
            )
        self._checked_for = model.cache_id

    def _check_values_for(self, model) -> None:
        """Text in columns the model needs numeric, or missing values the model cannot take: StudioError.

        Datasets may hold NaN (HistGradientBoosting and many pipelines accept
        it); a model that fails on the rows with NaN, or returns non-finite
        outputs for them, is refused here naming the columns.
        """
        if self._checked_for == model.cache_id:
            return
        import pandas as pd

        if self.categorical and not _runs_on(model, self.x[: min(len(self), 8)]):
            parts = []
            for col in self.categorical[:5]:
                values = self.frame[col]
                numeric = pd.to_numeric(values, errors="coerce")
                bad = values[numeric.isna() & values.notna()]
                if len(bad):
                    parts.append(f"{col!r} (e.g. {str(bad.iloc[0])[:30]!r} in row {int(bad.index[0])})")
                else:
                    parts.append(repr(col))
            raise StudioError(
                f"column(s) {', '.join(parts)} hold non-numeric values but the model needs numbers there; "
                "fix or drop those cells, or encode the column as the model was trained"
            )
        if self.x.dtype == object:
            missing_mask = self.frame.isna().to_numpy()
        else:
            missing_mask = np.isnan(self.x)
        cols = np.nonzero(missing_mask.any(axis=0))[0]
        if cols.size:
            rows = np.nonzero(missing_mask.any(axis=1))[0][:8]
            if not _runs_on(model, self.x[rows], finite=True):
                names = [self.feature_names[i] for i in cols]
                raise StudioError(
                    f"column(s) {', '.join(map(repr, names[:8]))}{' and more' if len(names) > 8 else ''} have missing "
                    f"values ({int(missing_mask.any(axis=1).sum())} row(s)) and this model cannot take them; "
                    "fill or drop those rows, or use a model that handles missing values"
                )
        try:
            model.output(self.x[: min(len(self), 2)])
        except (StudioError, MemoryError):
            raise
        except Exception as exc:
            raise StudioError(
                f"the model could not run on this dataset's {self.n_features} feature columns ({last_line(exc)}); "
                "check that the model takes these columns (a card with feature_names says which)"
            ) from None
        self._checked_for = model.cache_id
