"""Isolation: untrusted models are loaded and run in a sandboxed worker process.

The studio's process (app server, CLI, API) never executes a model file that
is not explicitly trusted. :func:`studio.load_model` starts a worker under the
strongest launcher this machine offers (:mod:`studio.sandbox.launcher`:
bubblewrap, unshare + Landlock, or a plain process), sends it the file's bytes,
and returns a :class:`RemoteModel` whose predictions and explanations are
computed in the worker. The two sides exchange only data
(:mod:`studio.sandbox.protocol`: JSON, ``.npy`` arrays, ``Explanation.to_bytes``),
never pickles. A worker that crashes, hangs or runs out of memory is ended and
reported as one :class:`WorkerError`; the server and other models go on.

>>> import studio
>>> model = studio.load_model("models/image_cnn.pt")   # runs in the sandbox
>>> model.sandbox
'bubblewrap'
"""

from studio.sandbox.client import RemoteModel, WorkerError, keep_spare, open_model
from studio.sandbox.launcher import available_kinds, choose, describe, sentence
from studio.sandbox.protocol import ProtocolError

__all__ = ["RemoteModel", "WorkerError", "ProtocolError", "open_model", "keep_spare", "choose",
           "available_kinds", "describe", "sentence"]
