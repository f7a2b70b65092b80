"""A liveness file for container health checks: the worker touches it while its event loop runs.

    LANES_WORKER_HEALTH_FILE=/tmp/lanes-worker.alive python worker.py
    # exit 0 if the file was touched within LANES_WORKER_HEALTH_MAX_AGE_S:
    python -m lanes.worker.health

A worker has no port to probe; a file refreshed by a task on the worker's own event loop proves that loop
is not blocked (every activity shares it), which is what a stuck worker loses first. The worker removes
the file on shutdown, so a stopped worker is unhealthy at once.

The path comes from the environment, so the worker treats it as a name that may already be taken: it
removes only a file it made itself. At start it creates the file with ``O_CREAT | O_EXCL | O_NOFOLLOW``
and writes :data:`MARKER` into it. A file already there is taken over only if it is a regular file
whose content is that marker: a worker killed by ``SIGKILL`` or the OOM killer leaves its file behind,
and ``docker restart`` keeps ``/tmp``, so refusing lanes' own stale file would keep a restarted worker
down for good. Anything else there (a file with other content, a symbolic link, a directory) is refused
with one line naming ``LANES_WORKER_HEALTH_FILE``, and left as it was. The file is refreshed through its
open descriptor (a path swapped for a link is never followed), and removed on stop only if the path
still names that same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from lanes.errors import HealthFileError

__all__ = ["MARKER", "HealthFile", "healthy", "keep_alive", "main"]

TOUCH_INTERVAL_S = 10.0
"""How often the worker refreshes the file."""

DEFAULT_MAX_AGE_S = 60.0
"""Age beyond which the check fails (six missed refreshes)."""

ENV = "LANES_WORKER_HEALTH_FILE"

MARKER = b"lanes worker health file: refreshed while a lanes worker runs, removed when it stops\n"
"""The whole content of a health file lanes made; the only content a worker takes over."""


def _refuse(path: Path, why: str) -> HealthFileError:
    return HealthFileError(
        f"{ENV}={path}: {why}; the worker creates this file and removes it on stop, so point it at a path "
        "nothing else uses (e.g. /tmp/lanes-worker.alive)"
    )


class HealthFile:
    """A health file this worker created (or took over from a dead lanes worker), open until released."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)

    @classmethod
    def claim(cls, path: Path) -> HealthFile:
        """Create ``path``, or take over a file a lanes worker left behind.

        Raises:
            HealthFileError: Something else is at ``path``, or it cannot be created; nothing was changed.
        """
        flags = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return cls(path, cls._take_over(path))
        except OSError as exc:
            raise _refuse(path, f"cannot be created ({exc.strerror})") from None
        try:
            os.write(fd, MARKER)
        except OSError as exc:
            os.close(fd)
            raise _refuse(path, f"cannot be written ({exc.strerror})") from None
        return cls(path, fd)

    @staticmethod
    def _take_over(path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refuse(path, "is a symbolic link") from None
            raise _refuse(path, f"exists and cannot be opened ({exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _refuse(path, "exists and is not a regular file")
            if os.read(fd, len(MARKER) + 1) != MARKER:
                raise _refuse(path, "exists and was not made by a lanes worker")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def touch(self) -> None:
        """Set the file's modification time to now, through the descriptor."""
        if self._fd is not None:
            os.utime(self._fd)

    def release(self) -> None:
        """Remove the file if the path still names it (not a file put there since); close it."""
        if self._fd is None:
            return
        try:
            with contextlib.suppress(OSError):  # gone already, or not removable: nothing left to clean
                info = os.lstat(self.path)
                if (info.st_dev, info.st_ino) == self._identity:
                    os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    async def refresh(self, *, interval_s: float = TOUCH_INTERVAL_S) -> None:
        """Touch the file now and every ``interval_s`` until cancelled; release it then."""
        try:
            while True:
                await asyncio.to_thread(self.touch)
                await asyncio.sleep(interval_s)
        finally:
            self.release()


def keep_alive(path: Path, *, interval_s: float = TOUCH_INTERVAL_S) -> Coroutine[Any, Any, None]:
    """Claim ``path`` now; return the coroutine that refreshes it until cancelled and removes it then.

    The claim happens in this call, not when the coroutine first runs, so a path the worker must not
    use stops the worker before it reports ready instead of leaving it up without a health file.

    Raises:
        HealthFileError: ``path`` is taken by something that is not lanes' health file.
    """
    return HealthFile.claim(path).refresh(interval_s=interval_s)


def healthy(path: Path, *, max_age_s: float = DEFAULT_MAX_AGE_S, now: float | None = None) -> bool:
    """Whether ``path`` exists and was touched within ``max_age_s``."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age <= max_age_s


def main() -> int:
    """``python -m lanes.worker.health``: 0 healthy, 1 not (the reason on stderr)."""
    name = os.environ.get(ENV)
    if not name:
        print(f"lanes health: {ENV} is not set", file=sys.stderr)
        return 1
    max_age = float(os.environ.get("LANES_WORKER_HEALTH_MAX_AGE_S", DEFAULT_MAX_AGE_S))
    if healthy(Path(name), max_age_s=max_age):
        return 0
    print(f"lanes health: {name} missing or older than {max_age:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
