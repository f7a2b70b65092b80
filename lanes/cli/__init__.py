"""The ``lanes`` command line: Typer commands that parse, call :class:`lanes.LanesClient`, and render."""
