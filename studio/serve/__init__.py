"""The studio's HTTP API: FastAPI over the same verbs (``python -m studio serve``).

>>> from studio.serve import create_app, Limits
>>> app = create_app(token="a-long-random-token", limits=Limits(workers=2))   # run with uvicorn

Upload a model (loaded in the sandbox, as ``studio.load_model`` does by
default) and a dataset, list methods, submit explain and assess jobs, poll
them, fetch results as ``studio.explanation/1`` / ``studio.assessment/1``.
Every request carries a bearer token; each token's uploads live in its own
private temporary folder, deleted when the server stops. docs/api.md shows
the endpoints; docs/openapi.json is the committed OpenAPI document.
"""

from studio.serve.app import create_app
from studio.serve.run import is_loopback, openapi_document, serve
from studio.serve.state import Limits

__all__ = ["Limits", "create_app", "is_loopback", "openapi_document", "serve"]
