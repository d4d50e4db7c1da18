"""Train the tabular sample models on scikit-learn's breast cancer data.

Writes
------
sample_data/breast_cancer.csv   the whole dataset, label column ``target``
                                (0 = malignant, 1 = benign), 30 named features
models/tabular_gbt.skops        GradientBoostingClassifier (skops)
models/tabular_gbt.card.json
models/tabular_mlp.pt           torch MLP with standardisation inside (TorchScript)
models/tabular_mlp.card.json
models/tabular_mlp.onnx         the same MLP exported to ONNX (uses tabular_mlp.card.json)
models/metrics.json             held-out accuracy of each model (updated)

Run from the repository root: ``python models/train_tabular.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 0


def load_table():
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "target"})
    return frame, list(bunch.feature_names), [str(n) for n in bunch.target_names]


def record(name: str, accuracy: float) -> None:
    path = ROOT / "models" / "metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics[name] = {"held_out_accuracy": round(float(accuracy), 4)}
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(f"{name}: held-out accuracy {accuracy:.4f}")


def main() -> None:
    import skops.io as sio
    import torch
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from torch import nn

    frame, features, classes = load_table()
    (ROOT / "sample_data").mkdir(exist_ok=True)
    frame.to_csv(ROOT / "sample_data" / "breast_cancer.csv", index=False, float_format="%.6g")
    # re-read so the models see exactly the CSV's (rounded) values
    import pandas as pd

    frame = pd.read_csv(ROOT / "sample_data" / "breast_cancer.csv")
    x, y = frame[features], frame["target"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)

    gbt = GradientBoostingClassifier(n_estimators=60, max_depth=3, learning_rate=0.1, random_state=SEED)
    gbt.fit(x_train, y_train)
    sio.dump(gbt, ROOT / "models" / "tabular_gbt.skops")
    acc = gbt.score(x_test, y_test)
    record("tabular_gbt", acc)
    card = {
        "task": "classification", "class_names": classes,
        "description": f"Gradient-boosted trees on the breast cancer data; held-out accuracy {acc:.3f}.",
    }
    (ROOT / "models" / "tabular_gbt.card.json").write_text(json.dumps(card, indent=2) + "\n")

    torch.manual_seed(SEED)
    xt = torch.tensor(x_train.to_numpy(), dtype=torch.float32)
    yt = torch.tensor(y_train, dtype=torch.long)
    mean, std = xt.mean(0), xt.std(0)

    class Standardise(nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, x):
            return (x - self.mean) / self.std

    net = nn.Sequential(
        Standardise(mean, std), nn.Linear(len(features), 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 2)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.tensor(x_test.to_numpy(), dtype=torch.float32)).argmax(1).numpy()
    acc = float((pred == y_test).mean())
    record("tabular_mlp", acc)
    torch.jit.script(net).save(str(ROOT / "models" / "tabular_mlp.pt"))
    card = {
        "task": "classification", "class_names": classes, "feature_names": features, "outputs": "logits",
        "description": f"Torch MLP (standardisation inside) on the breast cancer data; held-out accuracy {acc:.3f}.",
    }
    (ROOT / "models" / "tabular_mlp.card.json").write_text(json.dumps(card, indent=2) + "\n")
    torch.onnx.export(
        net, (xt[:2],), str(ROOT / "models" / "tabular_mlp.onnx"), input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}}, dynamo=False,
    )


if __name__ == "__main__":
    main()
