"""Upload files that are not the samples: a LogisticRegression on the wine data, saved with skops, with a card.

One feature is renamed to an HTML payload so tests can check it shows as text everywhere.
"""

from __future__ import annotations

import io
import json

EVIL = "<img src=x onerror=alert(1)>"


def wine_files() -> dict:
    """{"model": bytes (.skops), "card": bytes (.json), "csv": bytes, "feature_names": list}."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wine = load_wine(as_frame=True)
    frame = wine.frame.copy()
    names = [str(c) for c in wine.feature_names]
    names[1] = EVIL  # malic_acid
    frame.columns = names + ["target"]
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame[names], frame["target"])
    class_names = [f"cultivar {c}" for c in wine.target_names]
    frame["target"] = np.asarray(class_names, dtype=object)[frame["target"].to_numpy()]
    buf = io.BytesIO()
    frame.to_csv(buf, index=False)
    card = {"task": "classification", "class_names": class_names, "feature_names": names,
            "description": "LogisticRegression on the UCI wine data (test upload)"}
    return {"model": sio.dumps(est), "card": json.dumps(card).encode(), "csv": buf.getvalue(), "feature_names": names}
