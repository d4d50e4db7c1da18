"""The one error type the studio raises for anything a user can fix."""


class StudioError(ValueError):
    """A problem with the user's input, said in words the user can act on.

    Every loader, explainer and the CLI raise this type (and only this type)
    for bad input; the message says what is wrong and what to do instead.
    The CLI prints it as one ``error:`` line, the app with ``st.error``.
    """


def last_line(exc: BaseException, limit: int = 200) -> str:
    """The last non-empty line of an exception's message, for a one-line StudioError.

    TorchScript and some C++ libraries put their own traceback first and the
    actual reason last.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:limit]
