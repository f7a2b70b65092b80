"""The state directory of the embedded stack (``lanes dev``, ``lanes demo``): made and cleared by lanes only.

``lanes demo`` starts from an empty directory every run, so it clears the one it is given. A path is
whatever the user typed (``--state-dir .`` is one typo away from ``--state-dir .lanes``), so lanes
clears only a directory that it made itself, and proves it by a marker file it wrote there::

    D/.lanes-state      "lanes state directory, made by `lanes demo` ... safe to delete"

The rules, checked before anything is written or removed:

* the path is resolved first; the working directory, the project, the home directory and any parent
  of them (``/`` included) are refused whatever they contain;
* a symbolic link is refused (its target is somewhere the user did not name);
* a directory that does not exist is made (``0700``) and marked; an empty one is marked;
* a non-empty directory without the marker is refused, untouched: lanes did not make it;
* clearing a marked directory removes its contents (never the directory, never the marker), through a
  descriptor of the directory opened without following links, so an entry swapped for a symlink
  meanwhile is removed as a link, not followed.

``lanes dev`` keeps its history across runs, so it never clears; it applies the same rules to the
directory it writes its database, logs and keys into.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from lanes.cli.render import CliError

__all__ = ["MARKER", "PROJECT_ROOT", "StateDirError", "claim_state_dir"]

MARKER = ".lanes-state"
"""Name of the marker file lanes writes into every state directory it makes."""

_MARKER_HEAD = "lanes state directory"
"""First words of the marker's first line: a file of that name with other content is not lanes'."""

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout (or installed tree) lanes runs from: never a state directory, nor any parent of it."""


class StateDirError(CliError):
    """A ``--state-dir`` that lanes will not use: the message names the flag, the path and the fix."""


def _marker_text(made_by: str) -> str:
    return (
        f"{_MARKER_HEAD}, made by `{made_by}` on {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC.\n"
        "It holds an embedded stack's Temporal database, logs and local encryption key: safe to delete.\n"
        f"lanes clears or reuses only a directory that holds this file ({MARKER}); "
        "do not copy it elsewhere.\n"
    )


def _protected() -> list[Path]:
    """Directories that are never a state directory, nor any of their parents."""
    places = [Path.cwd().resolve(), PROJECT_ROOT]
    with contextlib.suppress(RuntimeError):  # no home directory (a bare container user)
        places.append(Path.home().resolve())
    return places


def _refuse(path: Path, why: str, fix: str) -> StateDirError:
    return StateDirError(f"--state-dir {path}: {why}; {fix}")


def _has_marker(dir_fd: int) -> bool:
    try:
        fd = os.open(MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return os.read(fd, len(_MARKER_HEAD)).decode("utf-8", "replace") == _MARKER_HEAD
    finally:
        os.close(fd)


def _write_marker(dir_fd: int, made_by: str) -> None:
    fd = os.open(MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    try:
        os.write(fd, _marker_text(made_by).encode())
    finally:
        os.close(fd)


def _clear(dir_fd: int) -> None:
    """Remove every entry of the directory but the marker, without following any link."""
    with os.scandir(dir_fd) as entries:
        names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_dir in names:
        if name == MARKER:
            continue
        if is_dir:
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)


def claim_state_dir(path: Path, *, made_by: str, clear: bool = False) -> Path:
    """Make ``path`` lanes' state directory (or check that it is one), cleared if ``clear``.

    Args:
        path: The ``--state-dir`` as given.
        made_by: The command, for the marker (``lanes demo``).
        clear: Remove the directory's contents (``lanes demo`` starts fresh each run).

    Returns:
        ``path``, unchanged: callers keep showing the path the user typed.

    Raises:
        StateDirError: The path is protected, a symbolic link, not a directory, or a non-empty directory
            without lanes' marker; nothing was written or removed.
    """
    if path.is_symlink():
        raise _refuse(
            path,
            f"is a symbolic link (to {os.readlink(path)}); lanes does not follow it",
            "give the real directory, or a new path",
        )
    real = path.resolve()
    for place in _protected():
        if real == place or real in place.parents:
            what = "the working directory, the project, the home directory or a parent of one"
            raise _refuse(path, f"is {what}", "give a directory of its own, e.g. .lanes/demo")
    if not real.exists():
        real.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made meanwhile: checked below like any other
            real.mkdir(mode=0o700)
    try:
        dir_fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except NotADirectoryError:
        raise _refuse(path, "is not a directory", "give a directory, or a new path") from None
    except OSError as exc:
        raise _refuse(path, f"cannot be opened ({exc.strerror})", "give another directory") from None
    try:
        if not _has_marker(dir_fd):
            with os.scandir(dir_fd) as entries:
                occupied = next(entries, None) is not None
            if occupied:
                raise _refuse(
                    path,
                    f"is not empty and has no {MARKER} marker, so lanes did not make it and will not "
                    f"{'clear' if clear else 'write into'} it",
                    "give a new or empty directory (or remove this one yourself if it holds nothing "
                    "you need)",
                )
            _write_marker(dir_fd, made_by)
        elif clear:
            try:
                _clear(dir_fd)
            except OSError as exc:
                raise _refuse(
                    path, f"cannot be cleared ({exc.strerror}: {exc.filename})", "remove it yourself"
                ) from None
    finally:
        os.close(dir_fd)
    return path
