"""``python -m studio serve``: start the API on uvicorn, loopback by default, with a per-start token."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import sys

from studio.errors import StudioError

DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def openapi_document() -> str:
    """The API's OpenAPI document as JSON text, exactly as committed in docs/openapi.json."""
    from studio.serve.app import create_app

    return json.dumps(create_app(token="x" * 16).openapi(), indent=2, sort_keys=True) + "\n"


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, allow_remote: bool = False,
          limits=None, log_level: str = "warning") -> None:
    """Run the API until interrupted (blocks).

    Parameters
    ----------
    host : str
        Address to bind; a non-loopback address needs ``allow_remote=True``.
    port : int
    token : str, optional
        The bearer token; default ``STUDIO_API_TOKEN``, else a random one made
        now and printed once.
    allow_remote : bool
        Bind a non-loopback address (other machines can then reach the API).
    limits : Limits, optional
    log_level : str
        uvicorn's log level.

    Raises
    ------
    StudioError
        A non-loopback host without ``allow_remote``, a short token, a port out of range.
    """
    import uvicorn

    from studio.sandbox import keep_spare
    from studio.serve.app import create_app

    if not is_loopback(host) and not allow_remote:
        raise StudioError(f"--host {host} is not a loopback address, so other machines could reach the API; "
                          "pass --allow-remote to bind it anyway (and put TLS in front of it)")
    if not 0 < int(port) < 65536:
        raise StudioError(f"--port must be between 1 and 65535, got {port}")
    given = token or os.environ.get("STUDIO_API_TOKEN")
    token = given or secrets.token_urlsafe(32)
    while not given and token.startswith("-"):  # a printed token pasted after --token must not read as an option
        token = secrets.token_urlsafe(32)
    app = create_app(token=token, limits=limits)
    shown = f"[{host}]" if ":" in host else host
    print(f"studio API on http://{shown}:{port} (OpenAPI document: /openapi.json; stop with Ctrl+C)", flush=True)
    if not is_loopback(host):
        print(f"warning: bound to {host}, reachable from other machines; the token travels in clear text "
              "unless a TLS proxy is in front", file=sys.stderr, flush=True)
    if not given:
        print(f"token: {token}", flush=True)
        print("send it as 'Authorization: Bearer <token>'; a new one is made at every start "
              "(--token or STUDIO_API_TOKEN to choose it)", flush=True)
    keep_spare(True)  # a started worker waits for the next model upload
    uvicorn.run(app, host=host, port=int(port), log_level=log_level, server_header=False, access_log=False)
