"""The settings of a running ``lanes dev`` stack, found by the CLI and :class:`lanes.LanesClient` alone.

``lanes dev`` writes ``.lanes/dev/env`` (mode 0600, in its state directory) once its stack answers, and
removes it when it stops: the Temporal address, the emulator's URL, the absolute path of the dev key file,
the codec server's URL and the UI origins it allows, and the stack's process id. A second shell in the
same directory then needs nothing exported: the CLI and ``LanesClient.connect()`` read the file for every
variable the environment does not set. A file whose process is gone is ignored, so a killed stack never
points a client at a dead address.

    eval "$(lanes dev env)"     # the same values as exports, for other tools (temporal, scripts)

What the environment sets always wins, and the file is read only when ``TEMPORAL_ADDRESS`` and
``TEMPORAL_PROFILE`` are both unset: a shell configured for another server is never redirected to the dev
stack. The file holds no secret (the emulator's placeholder key, and a *path* to the key file, which is
itself 0600).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

DEV_STATE_DIR = Path(".lanes/dev")
"""Where ``lanes dev`` keeps its state by default, relative to the directory it runs in."""

ENV_FILE_NAME = "env"
"""The file's name in the stack's state directory."""

PID_VARIABLE = "LANES_DEV_PID"
"""The stack's process id, so that a file left by a killed stack is recognised as stale."""

REDIRECTING = ("TEMPORAL_ADDRESS", "TEMPORAL_PROFILE")
"""Variables that say the shell is configured for a server: with either set, the file is not read."""

_MAX_BYTES = 16_384
"""A few hundred bytes in practice; anything larger is not lanes' file and is ignored."""


def env_file(state_dir: Path = DEV_STATE_DIR) -> Path:
    """The env file of the stack whose state directory is ``state_dir``."""
    return state_dir / ENV_FILE_NAME


def write_dev_env(path: Path, values: Mapping[str, str]) -> None:
    """Write ``values`` (and this process's id) to ``path`` as ``KEY=value`` lines, replacing it atomically.

    Created 0600 under a temporary name first, so a reader never sees half a file.
    """
    lines = [f"{key}={shlex.quote(value)}\n" for key, value in values.items()]
    lines.append(f"{PID_VARIABLE}={os.getpid()}\n")
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.writelines(lines)
    os.replace(temporary, path)


def remove_dev_env(path: Path) -> None:
    """Remove the file if this process wrote it (a newer stack's file is left alone)."""
    if read_dev_env(path, check_alive=False).get(PID_VARIABLE) == str(os.getpid()):
        path.unlink(missing_ok=True)


def _alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, but not ours to trust
        return False
    return True


def read_dev_env(path: Path, *, check_alive: bool = True) -> dict[str, str]:
    """The values in the file at ``path``; empty if missing, malformed, too large, stale or not trusted.

    Trusted means owned by this user and writable by no one else: a file planted in a shared directory
    must not redirect this user's jobs (and their prompts) to another server.

    Lines are ``KEY=value`` with the value shell-quoted, as :func:`write_dev_env` writes them. Only
    ``TEMPORAL_*``, ``LANES_*`` and ``OPENAI_*`` keys are taken: the file configures lanes, nothing else.
    """
    try:
        info = path.stat()
        # Another user's file, or one others may write, could point this client at their server.
        if info.st_uid != os.getuid() or info.st_mode & 0o022 or info.st_size > _MAX_BYTES:
            return {}
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or not key.startswith(("TEMPORAL_", "LANES_", "OPENAI_")) or not key.isidentifier():
            continue
        try:
            parts = shlex.split(raw)
        except ValueError:
            continue
        values[key] = parts[0] if parts else ""
    if check_alive and not _alive(values.get(PID_VARIABLE, "")):
        return {}
    return values


def dev_defaults(
    environ: Mapping[str, str] | None = None, *, state_dir: Path = DEV_STATE_DIR
) -> dict[str, str]:
    """The running dev stack's values for the variables ``environ`` leaves unset; empty when none applies.

    Nothing is taken when ``environ`` already points at a server (:data:`REDIRECTING`).
    """
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in REDIRECTING):
        return {}
    values = read_dev_env(env_file(state_dir))
    return {key: value for key, value in values.items() if key != PID_VARIABLE and key not in env}


def exports(values: Mapping[str, str]) -> str:
    """``values`` as ``export KEY=value`` lines a POSIX shell can ``eval``."""
    return "".join(
        f"export {key}={shlex.quote(value)}\n" for key, value in values.items() if key != PID_VARIABLE
    )
