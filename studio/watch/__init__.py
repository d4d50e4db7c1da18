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
from studio.watch.client import Client, Recorder, Replay, WindowValue, connect, replay
from studio.watch.streams import EXTRACTORS, REDUCERS, Extractor, Param, Reducer

__all__ = ["Watcher", "Client", "connect", "replay", "Replay", "Recorder", "WindowValue", "EXTRACTORS", "REDUCERS",
           "Extractor", "Param", "Reducer"]
