"""The container health check: the worker refreshes its health file while it runs and removes it on stop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lanes.dev.stack import WorkerProcess
from lanes.settings import Settings
from lanes.worker.health import healthy

ROOT = Path(__file__).resolve().parents[2]


async def health_check(path: Path) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lanes.worker.health",
        cwd=ROOT,
        env={**os.environ, "LANES_WORKER_HEALTH_FILE": str(path)},
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


def test_healthy_means_recently_touched(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    assert not healthy(path)
    path.touch()
    mtime = path.stat().st_mtime
    assert healthy(path, max_age_s=60, now=mtime + 59)
    assert not healthy(path, max_age_s=60, now=mtime + 61)


async def test_worker_keeps_the_health_file_while_running(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "alive"
    worker = WorkerProcess(
        settings, log_path=tmp_path / "worker.log", env={"LANES_WORKER_HEALTH_FILE": str(path)}
    )
    assert await health_check(path) == 1
    await worker.start()
    try:
        assert path.exists()
        assert await health_check(path) == 0
    finally:
        await worker.stop()
    assert not path.exists()
    assert await health_check(path) == 1
