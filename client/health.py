"""A liveness file for container health checks: the worker touches it while its event loop runs.

    LANES_WORKER_HEALTH_FILE=/tmp/lanes-worker.alive python worker.py
    python -m client.health          # exit 0 if the file was touched within LANES_WORKER_HEALTH_MAX_AGE_S

A worker has no port to probe; a file refreshed by a task on the worker's own event loop proves that loop
is not blocked (every activity shares it), which is what a stuck worker loses first. The worker removes
the file on shutdown, so a stopped worker is unhealthy at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

TOUCH_INTERVAL_S = 10.0
"""How often the worker refreshes the file."""

DEFAULT_MAX_AGE_S = 60.0
"""Age beyond which the check fails (six missed refreshes)."""


async def keep_alive(path: Path, *, interval_s: float = TOUCH_INTERVAL_S) -> None:
    """Touch ``path`` now and every ``interval_s`` until cancelled; remove it then."""
    try:
        while True:
            await asyncio.to_thread(path.touch)
            await asyncio.sleep(interval_s)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def healthy(path: Path, *, max_age_s: float = DEFAULT_MAX_AGE_S, now: float | None = None) -> bool:
    """Whether ``path`` exists and was touched within ``max_age_s``."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age <= max_age_s


def main() -> int:
    """``python -m client.health``: 0 healthy, 1 not (the reason on stderr)."""
    name = os.environ.get("LANES_WORKER_HEALTH_FILE")
    if not name:
        print("lanes health: LANES_WORKER_HEALTH_FILE is not set", file=sys.stderr)
        return 1
    max_age = float(os.environ.get("LANES_WORKER_HEALTH_MAX_AGE_S", DEFAULT_MAX_AGE_S))
    if healthy(Path(name), max_age_s=max_age):
        return 0
    print(f"lanes health: {name} missing or older than {max_age:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
