"""Live training view after TensorWatch: ask a running training process new questions without restarting it.

In the training script (two lines, plus a window marker)::

    from studio.watch import Watcher
    w = Watcher("my-run")                                   # prints address and token
    ...
    w.observe("batch", loss=loss, model=model, step=step)   # after backward()
    w.end_window("epoch")

Anywhere on the same machine::

    c = studio.watch.connect(address, token)
    c.open_stream("batch", "scalar", {"name": "loss"}, reduce="mean", until="epoch")
    for v in c: print(v.step, v.value)

See docs/watch.md for the message format and the security model.
"""

from studio.watch.agent import Watcher
from studio.watch.client import Client, WindowValue, connect
from studio.watch.stored import Recorder, Replay, mlflow_runs, replay, stored_runs, tensorboard_runs
from studio.watch.streams import EXTRACTORS, REDUCERS, Extractor, Param, Reducer

__all__ = [
           "EXTRACTORS",
           "REDUCERS",
           "Client",
           "Extractor",
           "Param",
           "Recorder",
           "Reducer",
           "Replay",
           "Watcher",
           "WindowValue",
           "connect",
           "mlflow_runs",
           "replay",
           "stored_runs",
           "tensorboard_runs",
]
