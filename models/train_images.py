"""Train the image sample model on scikit-learn's digits.

The 8x8 digits are upsampled to 32x32 grayscale. The test split ships as
``sample_data/digits.zip`` (class folders ``0`` .. ``9`` of PNG files).

Writes
------
sample_data/digits.zip            held-out digits as PNGs in class folders
models/image_cnn.pt               small CNN (TorchScript)
models/image_cnn.card.json
models/image_cnn_state.pt         the same weights as a state dict
models/image_cnn_state.card.json  names architecture ``studio.small_cnn``
models/metrics.json               held-out accuracy (updated)

Run from the repository root: ``python models/train_images.py``.

``python models/train_images.py --watch [--epochs N]`` trains the same CNN with
the live-training agent embedded (``studio.watch.Watcher``: it prints an
address and a token for the app's Live page) and writes nothing: a run to
watch, stop early or retune (commands ``stop`` and ``lr``).
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED = 0
SIZE = 32
MEAN, STD = [0.2], [0.3]


def digits_32():
    """Digits as float32 (n, 1, 32, 32) in [0, 1] and labels (n,)."""
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32)[:, None]
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    # quantise like a PNG so training sees what the zip holds
    x = (x.clamp(0, 1) * 255).round() / 255
    return x.numpy(), bunch.target


def main(argv=None) -> None:
    import argparse
    import threading

    import torch
    from PIL import Image
    from sklearn.model_selection import train_test_split
    from torch import nn

    from studio.models.architectures import STUDIO_ARCHITECTURES
    from train_tabular import record

    ap = argparse.ArgumentParser(description="Train the image sample model.")
    ap.add_argument("--watch", action="store_true", help="embed studio.watch's agent and write nothing")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args(argv)
    x, y = digits_32()
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=SEED, stratify=y)
    torch.manual_seed(SEED)
    net = STUDIO_ARCHITECTURES["studio.small_cnn"](in_channels=1, num_classes=10, width=16)
    xt = (torch.tensor(x[idx_train]) - MEAN[0]) / STD[0]
    yt = torch.tensor(y[idx_train])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(SEED)
    watcher, stop, step = None, threading.Event(), 0
    if args.watch:
        from studio.watch import Watcher

        watcher = Watcher("image_cnn")
        watcher.command("stop", stop.set)
        watcher.param("lr", lambda: opt.param_groups[0]["lr"],
                      lambda v: [g.update(lr=float(v)) for g in opt.param_groups])
    for epoch in range(args.epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            opt.zero_grad()
            if watcher is None:
                nn.functional.cross_entropy(net(xt[b]), yt[b]).backward()
            else:
                out = net(xt[b])
                losses = nn.functional.cross_entropy(out, yt[b], reduction="none")
                losses.mean().backward()
                watcher.observe("batch", loss=losses.mean(), losses=losses.detach(), model=net, inputs=xt[b],
                                outputs=out.detach(), targets=yt[b], step=step, epoch=epoch)
            opt.step()
            step += 1
            if stop.is_set():
                break
        if watcher is not None:
            watcher.end_window("epoch")
        if stop.is_set():
            break
    net.eval()
    with torch.no_grad():
        pred = net((torch.tensor(x[idx_test]) - MEAN[0]) / STD[0]).argmax(1).numpy()
    acc = float((pred == y[idx_test]).mean())
    if watcher is not None:
        watcher.close()
        print(f"held-out accuracy {acc:.3f} after {epoch + 1} epoch(s); nothing written (--watch)")
        return
    record("image_cnn", acc)

    torch.jit.script(net).save(str(ROOT / "models" / "image_cnn.pt"))
    torch.save(net.state_dict(), ROOT / "models" / "image_cnn_state.pt")
    classes = [str(i) for i in range(10)]
    card = {
        "task": "classification", "class_names": classes, "input_size": [1, SIZE, SIZE], "mean": MEAN, "std": STD,
        "outputs": "logits", "description": f"Small CNN on 32x32 digits; held-out accuracy {acc:.3f}.",
    }
    (ROOT / "models" / "image_cnn.card.json").write_text(json.dumps(card, indent=2) + "\n")
    card_state = dict(card, architecture="studio.small_cnn", architecture_args={"in_channels": 1, "width": 16})
    (ROOT / "models" / "image_cnn_state.card.json").write_text(json.dumps(card_state, indent=2) + "\n")

    with zipfile.ZipFile(ROOT / "sample_data" / "digits.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for n, i in enumerate(sorted(idx_test)):
            img = Image.fromarray((x[i, 0] * 255).round().astype(np.uint8), mode="L")
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            zf.writestr(f"{y[i]}/digit_{i:04d}.png", buf.getvalue())


if __name__ == "__main__":
    main()
