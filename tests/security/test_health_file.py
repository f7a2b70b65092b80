"""Issue 20, low: ``LANES_WORKER_HEALTH_FILE`` naming an existing file made the worker delete it on stop.

A real worker process (``lanes.dev.stack.WorkerProcess``) against the session's dev server; the unit tests at
the end drive :class:`lanes.worker.health.HealthFile` directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lanes.dev.stack import StackError, WorkerProcess
from lanes.errors import HealthFileError
from lanes.settings import Settings
from lanes.worker.health import MARKER, HealthFile


async def _run_worker(settings: Settings, tmp_path: Path, health: Path) -> str | None:
    """Start and stop a worker with ``health`` as its health file; the start-up failure, if any."""
    worker = WorkerProcess(
        settings, log_path=tmp_path / "worker.log", env={"LANES_WORKER_HEALTH_FILE": str(health)}
    )
    try:
        await worker.start()
    except StackError as exc:
        return str(exc)
    await worker.stop()
    return None


async def test_an_existing_file_is_refused_and_kept(settings: Settings, tmp_path: Path) -> None:
    health = tmp_path / "important.txt"
    health.write_text("the operator's own file\n")
    refused = await _run_worker(settings, tmp_path, health)
    assert health.read_text() == "the operator's own file\n"
    assert refused is not None
    assert f"LANES_WORKER_HEALTH_FILE={health}: exists and was not made by a lanes worker" in refused


async def test_a_symlink_is_refused_and_its_target_kept(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("elsewhere\n")
    health = tmp_path / "alive"
    health.symlink_to(target)
    refused = await _run_worker(settings, tmp_path, health)
    assert target.read_text() == "elsewhere\n"
    assert health.is_symlink()
    assert refused is not None
    assert f"LANES_WORKER_HEALTH_FILE={health}: is a symbolic link" in refused


async def test_a_file_a_killed_worker_left_is_taken_over_and_removed(
    settings: Settings, tmp_path: Path
) -> None:
    health = tmp_path / "alive"
    health.write_bytes(MARKER)  # what a worker killed by SIGKILL leaves behind
    assert await _run_worker(settings, tmp_path, health) is None
    assert not health.exists()


def test_release_removes_only_the_file_it_made(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    health = HealthFile.claim(path)
    assert path.read_bytes() == MARKER
    health.touch()
    # Replaced meanwhile by something else: that is not ours to remove.
    path.unlink()
    path.write_text("someone else's\n")
    health.release()
    assert path.read_text() == "someone else's\n"
    with pytest.raises(HealthFileError, match="exists and was not made by a lanes worker"):
        HealthFile.claim(path)
    directory = tmp_path / "dir"
    directory.mkdir()
    with pytest.raises(HealthFileError, match="cannot be opened"):
        HealthFile.claim(directory)
    assert directory.is_dir()
