"""The ``lanes`` command line: Typer commands that parse, call :mod:`client.jobs`, and render."""
