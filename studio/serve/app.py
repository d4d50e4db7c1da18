"""``create_app``: the FastAPI application over the studio's verbs."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio.errors import StudioError, last_line

TITLE = "Model Inspection Studio API"
DESCRIPTION = (
    "Upload a model and a dataset, list the methods that can explain them, run explain and assess jobs and fetch "
    "their results as `studio.explanation/1` and `studio.assessment/1` documents (docs/result-schema.md, "
    "docs/quality.md). Every request but `/v1/health` and this document carries `Authorization: Bearer <token>`. "
    "Models run only in the studio's sandbox. Errors are `{\"error\": \"one sentence\"}` with a 4xx status. "
    "See docs/api.md."
)


def create_app(token, limits=None, folder=None) -> FastAPI:
    """The studio's HTTP API as a FastAPI application (run it with uvicorn).

    Parameters
    ----------
    token : str or sequence of str
        The bearer token(s) the API accepts. Each token has its own uploads
        and jobs, invisible to the others.
    limits : Limits, optional
        Upload sizes, job bounds and loaded models; default
        :class:`studio.serve.Limits` (the studio's loader limits from the
        environment).
    folder : str or Path, optional
        Where the server's private temporary folder is made (default: the
        system's temporary folder). It is deleted when the app shuts down.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    StudioError
        No token, or a token under 16 characters.
    """
    from studio import __version__
    from studio.serve import routes
    from studio.serve.schemas import Health
    from studio.serve.state import Limits, State

    tokens = [token] if isinstance(token, str) else list(token or [])
    if not tokens:
        raise StudioError("the API needs a token; pass token='...' (python -m studio serve makes one)")
    for t in tokens:
        if not isinstance(t, str) or len(t) < 16 or not t.isascii() or not t.isprintable() or " " in t:
            raise StudioError("a token must be at least 16 printable ASCII characters without spaces")
    limits = limits or Limits()

    @asynccontextmanager
    async def lifespan(app):
        app.state.studio = State(tokens, limits, folder)
        try:
            yield
        finally:
            app.state.studio.close()

    app = FastAPI(title=TITLE, version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    for router in (routes.models, routes.datasets, routes.methods, routes.jobs):
        app.include_router(router)

    @app.get("/v1/health", response_model=Health, tags=["health"], summary="The server answers (no token needed)")
    def health():
        return {"status": "ok", "version": __version__}

    def error(status: int, message: str, headers=None) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(message).split())[:2000]}, status_code=status, headers=headers)

    @app.exception_handler(routes.ApiError)
    async def api_error(request: Request, exc: routes.ApiError):
        return error(exc.status, str(exc), {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(StudioError)
    async def studio_error(request: Request, exc: StudioError):
        from studio.serve.jobs import Busy

        return error(429 if isinstance(exc, Busy) else 422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        missing = unknown_id_sentence(exc.errors())
        if missing:  # a malformed id in the path names no upload or job: 404, like a well-formed unknown one
            return error(404, missing)
        return error(422, validation_sentence(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and str(exc.detail) == "There was an error parsing the body":
            # FastAPI's answer to a JSON body it cannot even decode: an invalid body, like any other (422)
            return error(422, "the request body is not valid JSON (UTF-8); send a JSON object as the schema in "
                              "/openapi.json shows")
        text = {404: "no such path; the API's paths are listed in /openapi.json",
                405: f"{request.method} is not allowed on {request.url.path}; see /openapi.json"}.get(
            exc.status_code, str(exc.detail))
        return error(exc.status_code, text, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug: still one sentence, never a traceback
        return error(500, f"unexpected {type(exc).__name__}: {last_line(exc)}; report it with the request")

    return app


def unknown_id_sentence(errors) -> str | None:
    """For a malformed id in the URL path (``/v1/jobs/{job_id}``, ...): the 404 sentence, else None."""
    for e in errors:
        loc = tuple(e.get("loc", ()))
        if len(loc) == 2 and loc[0] == "path" and str(loc[1]).endswith("_id"):
            what = str(loc[1])[: -len("_id")]
            prefix = {"model": "m", "dataset": "d", "job": "j"}.get(what, "?")
            value = " ".join(str(e.get("input", "")).split())[:40]
            return (f"no {what} {value!r} for this token ({what} ids look like {prefix}- and 16 hex digits); "
                    f"list them with GET /v1/{what}s")
    return None


def validation_sentence(errors) -> str:
    """FastAPI's list of validation errors as one sentence naming the first."""
    if not errors:
        return "the request is not valid; see /openapi.json"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON; send a JSON object as /openapi.json describes"
    if kind == "missing":
        return f"{where or 'a field'} is missing; see /openapi.json"
    if kind == "extra_forbidden":
        return f"{where} is not a field of this request; see /openapi.json"
    msg = str(first.get("msg", "is not valid"))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'the request'}: {msg[:300]}{more}; see /openapi.json"
