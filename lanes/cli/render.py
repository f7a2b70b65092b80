"""Exit codes, errors and output shared by every ``lanes`` command.

One convention for all commands: exit 0 on success, 1 when the job failed, was denied or ended
incomplete (or a policy file is invalid, or a ``lanes doctor`` check failed), 2 on bad input (the message
names the field and the fix), 3 while a job still runs. ``--json`` prints exactly one JSON object on
stdout; errors go to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from lanes.errors import ConfigurationError, InvalidJobError, JobListError, JobNotFoundError
from lanes.submission import policy_file_message
from policy import PolicyFileError

P = ParamSpec("P")

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_RUNNING = 3


class CliError(Exception):
    """A user-facing error: printed to stderr after the command's name; the process exits with ``code``."""

    def __init__(self, message: str, *, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
"""C0 controls but tab and newline, DEL, C1 controls, Unicode line separators and bidi overrides."""
_UNSAFE_LINE = re.compile(f"[\t\n{_UNSAFE}]")
_UNSAFE_TEXT = re.compile(f"[{_UNSAFE}]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def printable(value: object, *, multiline: bool = False) -> str:
    r"""``value`` as text that is safe to print on a terminal: control characters shown as escapes.

    Reasons, ids, error messages and output text come from whoever can cancel a job, from the model or
    from the provider; printed raw, ``\x1b[2J`` clears the reader's screen, ``\x1b]0;...\x07`` retitles
    the window, ``\r`` or a newline forges a line. Every field the CLI prints passes here: ESC and
    every other C0 control, DEL and the C1 controls (``\x9b`` is a one-byte CSI), the Unicode line
    separators and bidi overrides are shown as Python escapes (``\x1b``, ``\u202e``). ``multiline``
    keeps newlines and tabs, for output text (``\r\n`` becomes a newline). ``--json`` output needs
    none of this: JSON escapes every control character.
    """
    text = str(value)
    if multiline:
        return _UNSAFE_TEXT.sub(_escape, text.replace("\r\n", "\n"))
    return _UNSAFE_LINE.sub(_escape, text)


def print_json(value: BaseModel | dict[str, Any]) -> None:
    """Print one JSON object on one line of stdout."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    print(json.dumps(data, sort_keys=True, default=str))


def fields(rows: Iterable[tuple[str, object]], *, file: Any = None) -> None:
    """Print ``name  value`` lines with aligned values (:func:`printable`); ``None`` prints as ``-``."""
    for name, value in rows:
        print(f"{name:17} {'-' if value is None else printable(value)}", file=file)


def table(rows: Sequence[Sequence[str]]) -> str:
    """A borderless table (first row is the header) as text, columns two spaces apart.

    Every cell passes :func:`printable`: job ids, rules and outcomes come from search attributes.
    """
    grid = Table(box=None, show_header=True, header_style=None, pad_edge=False, padding=(0, 1))
    for header in rows[0]:
        grid.add_column(header, no_wrap=True)
    for row in rows[1:]:
        grid.add_row(*(printable(cell) for cell in row))
    console = Console(width=10_000, no_color=True, highlight=False, force_terminal=False)
    with console.capture() as captured:
        console.print(grid)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def translate_errors(command: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Decorate ``command`` (``lanes submit``...): a user's error is one stderr line and an exit code.

    A closed pipe ends the command quietly.

    :class:`CliError` exits with its code; an invalid policy file exits 1 in one line (``lanes policy
    check`` lists every problem); every :class:`~lanes.errors.ConfigurationError` (an unreachable server,
    a missing provider configuration, malformed keys, a payload this client cannot decrypt, ...), an
    unknown workflow id and a refused submission or filter exit 2. A closed stdout (``lanes ... | head``)
    ends the command quietly.
    """

    def decorate(func: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                func(*args, **kwargs)
            except CliError as exc:
                print(f"{command}: {printable(exc)}", file=sys.stderr)
                raise typer.Exit(exc.code) from None
            except PolicyFileError as exc:
                print(f"{command}: {printable(policy_file_message(exc))}", file=sys.stderr)
                raise typer.Exit(EXIT_JOB_FAILED) from None
            except (ConfigurationError, JobNotFoundError, JobListError, InvalidJobError) as exc:
                print(f"{command}: {printable(exc)}", file=sys.stderr)
                raise typer.Exit(EXIT_USAGE) from None
            except BrokenPipeError:
                # The reader went away: later writes and the final flush go nowhere instead of raising.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(EXIT_OK) from None

        return wrapper

    return decorate
