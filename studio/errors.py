"""The one error type the studio raises for anything a user can fix."""


class StudioError(ValueError):
    """A problem with the user's input, said in words the user can act on.

    Every loader, explainer and the CLI raise this type (and only this type)
    for bad input; the message says what is wrong and what to do instead.
    The CLI prints it as one ``error:`` line, the app with ``st.error``.
    """
