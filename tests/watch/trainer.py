"""A real training loop that embeds the Watcher: a tiny CNN on scikit-learn's 8x8 digits.

Run by tests/watch and the browser test as a subprocess::

    python tests/watch/trainer.py --log run.jsonl [--lr 0.05] [--sleep 0.0] [--max-seconds 60]

It prints the Watcher's line (address and token), registers ``stop`` and ``lr``,
and writes its own log, one JSON line per batch: epoch, step, loss, lr and the
L2 norm of each layer's gradients (computed here, independently of the agent),
and a last line ``{"end": ..., "stopped": bool}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> int:
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from studio.watch import Watcher

    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=10_000)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep after each batch")
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--name", default="digits-cnn")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    model = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(1, 8, 3, padding=1), relu1=nn.ReLU(), flat=nn.Flatten(),
        fc1=nn.Linear(8 * 64, 32), relu2=nn.ReLU(), fc2=nn.Linear(32, 10)))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    stop = threading.Event()
    log_file = open(args.log, "w", encoding="utf-8")
    lock = threading.Lock()  # the lr setter writes from the agent's thread
    state = {"step": 0}

    def write(record):
        with lock:
            log_file.write(json.dumps(record) + "\n")

    def set_lr(value):
        value = float(value)
        if not 0 < value < 10:
            raise ValueError("lr must lie in (0, 10)")
        for group in opt.param_groups:
            group["lr"] = value
        write({"lr_set": value, "at_step": state["step"]})

    w = Watcher(args.name)                                                     # line 1 of the embedding
    w.command("stop", stop.set)
    w.param("lr", lambda: opt.param_groups[0]["lr"], set_lr)
    gen = torch.Generator().manual_seed(0)
    start = time.monotonic()
    epoch = 0
    for epoch in range(args.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            out = model(x[b])
            losses = nn.functional.cross_entropy(out, y[b], reduction="none")
            loss = losses.mean()
            opt.zero_grad()
            loss.backward()
            lr = opt.param_groups[0]["lr"]
            w.observe("batch", loss=loss.item(), losses=losses.detach(), model=model, inputs=x[b],  # line 2
                      outputs=out.detach(), targets=y[b], step=state["step"], lr=lr)
            grads = {name: float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(p.grad.detach()) for p in m.parameters(recurse=False)])))
                for name, m in model.named_modules() if list(m.parameters(recurse=False))}
            opt.step()
            write({"epoch": epoch, "step": state["step"], "loss": loss.item(), "lr": lr, "grad": grads})
            state["step"] += 1
            if stop.is_set():
                break
            if args.sleep:
                time.sleep(args.sleep)
        w.end_window("epoch")
        with lock:
            log_file.flush()
        if stop.is_set() or time.monotonic() - start > args.max_seconds:
            break
    write({"end": epoch, "stopped": stop.is_set()})
    log_file.close()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
