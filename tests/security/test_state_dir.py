"""Item 2 of issue 20: ``lanes demo --state-dir D`` cleared D with ``shutil.rmtree``, whatever D was.

Every test runs the real ``lanes`` CLI in a subprocess against real directories under ``tmp_path``. A
refused directory is refused before anything starts, so no Temporal server is needed (``TEMPORAL_ADDRESS``
points at a port nothing listens on).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lanes.dev.stack import free_port
from lanes.dev.state_dir import MARKER, PROJECT_ROOT, StateDirError, claim_state_dir
from tests.cli_runner import LANES

ENV = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}


async def run_lanes(*args: str, cwd: Path) -> tuple[int, str, str]:
    """``lanes ARGS`` from ``cwd`` (a state directory is relative to where the user stands)."""
    root = Path(__file__).resolve().parents[2]
    process = await asyncio.create_subprocess_exec(
        *LANES,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **ENV, "PYTHONPATH": str(root)},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def user_files(path: Path) -> dict[str, str]:
    (path / "src").mkdir(parents=True)
    (path / "src" / "main.py").write_text("print('my work')\n")
    (path / "notes.txt").write_text("do not delete\n")
    return tree(path)


@pytest.mark.parametrize("command", ["demo", "dev"])
async def test_a_non_empty_directory_lanes_did_not_make_is_refused_and_survives(
    tmp_path: Path, command: str
) -> None:
    work = tmp_path / "work"
    before = user_files(work)
    code, out, err = await run_lanes(command, "--state-dir", str(work), cwd=tmp_path)
    assert code == 2, err
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"lanes {command}: --state-dir {work}: is not empty and has no {MARKER} marker")
    assert "give a new or empty directory" in line
    assert tree(work) == before
    assert not (work / MARKER).exists()


async def test_the_working_directory_and_its_parents_are_refused(tmp_path: Path) -> None:
    # Only paths under tmp_path go through `lanes demo`: on a regression, the demo would clear them.
    cwd = tmp_path / "project" / "sub"
    before = user_files(cwd)
    for given in (".", "..", str(tmp_path / "project")):
        code, _, err = await run_lanes("demo", "--state-dir", given, cwd=cwd)
        assert code == 2, (given, err)
        assert f"--state-dir {given}: is the working directory, the project" in err, err
    assert tree(cwd) == before


@pytest.mark.parametrize("given", ["/", "~", "PROJECT"])
def test_the_root_the_home_and_the_project_are_refused_even_if_marked(given: str) -> None:
    # clear=False: the check comes first either way, and a regression must not empty these for real.
    path = PROJECT_ROOT if given == "PROJECT" else Path(given).expanduser()
    with pytest.raises(StateDirError, match="is the working directory, the project, the home directory"):
        claim_state_dir(path, made_by="test")
    assert not (path / MARKER).exists()


async def test_a_symlink_is_refused_and_its_target_survives(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    before = user_files(target)
    link = tmp_path / "state"
    link.symlink_to(target)
    code, _, err = await run_lanes("demo", "--state-dir", "state", cwd=tmp_path)
    assert code == 2, err
    assert f"--state-dir state: is a symbolic link (to {target})" in err
    assert tree(target) == before
    # A link to a directory lanes marked is refused too: lanes clears the directory it was given.
    marked = tmp_path / "marked"
    claim_state_dir(marked, made_by="test")
    (marked / "temporal.db").write_text("db")
    (tmp_path / "to-marked").symlink_to(marked)
    code, _, err = await run_lanes("demo", "--state-dir", "to-marked", cwd=tmp_path)
    assert code == 2, err
    assert (marked / "temporal.db").read_text() == "db"


def test_a_marked_directory_is_cleared_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    claim_state_dir(state, made_by="lanes demo")
    marker = (state / MARKER).read_text()
    assert marker.startswith("lanes state directory, made by `lanes demo`")
    assert "safe to delete" in marker
    assert state.stat().st_mode & 0o777 == 0o700
    (state / "temporal.db").write_text("old history")
    (state / "blobs" / "ab").mkdir(parents=True)
    (state / "blobs" / "ab" / "blob").write_text("x")
    outside = tmp_path / "outside.txt"
    outside.write_text("not lanes'")
    (state / "link").symlink_to(outside)  # a link inside is removed as a link, never followed
    claim_state_dir(state, made_by="lanes demo", clear=True)
    assert sorted(p.name for p in state.iterdir()) == [MARKER]
    assert (state / MARKER).read_text() == marker
    assert outside.read_text() == "not lanes'"
    # Reused without clearing (lanes dev keeps its history).
    (state / "temporal.db").write_text("history")
    claim_state_dir(state, made_by="lanes dev")
    assert (state / "temporal.db").read_text() == "history"


def test_an_empty_directory_is_marked_and_a_file_or_a_fake_marker_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    claim_state_dir(empty, made_by="lanes dev")
    assert (empty / MARKER).is_file()
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(StateDirError, match="is not a directory"):
        claim_state_dir(file, made_by="lanes demo", clear=True)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / MARKER).write_text("anything\n")
    (fake / "keep").write_text("keep")
    with pytest.raises(StateDirError, match=r"has no \.lanes-state marker"):
        claim_state_dir(fake, made_by="lanes demo", clear=True)
    assert (fake / "keep").read_text() == "keep"
