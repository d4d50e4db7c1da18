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


def onnx_mlp_files(folder) -> dict:
    """A held-out torch MLP for the breast cancer table (30 features, 2 classes), written by ``torch.onnx.export``.

    torch 2.14 keeps the weights beside the graph: returns {"onnx": path, "data": path (``<name>.onnx.data``),
    "zip": path of a .zip holding both, "module": the torch module}.
    """
    import zipfile

    import torch

    torch.manual_seed(7)
    net = torch.nn.Sequential(
        torch.nn.BatchNorm1d(30), torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)
    ).eval()
    with torch.no_grad():  # standardise the table's scale inside the network, as a trained model would
        net[0].running_mean.copy_(torch.linspace(0, 800, 30))
        net[0].running_var.copy_(torch.linspace(1, 2e5, 30))
    path = folder / "cancer_mlp.onnx"
    torch.onnx.export(net, (torch.zeros(2, 30),), str(path), dynamic_shapes=({0: "batch"},))
    data = folder / "cancer_mlp.onnx.data"
    assert data.stat().st_size > 0, "torch.onnx.export kept the weights inside; the test needs external data"
    archive = folder / "cancer_mlp.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(path, path.name)
        zf.write(data, data.name)
    return {"onnx": path, "data": data, "zip": archive, "module": net}
