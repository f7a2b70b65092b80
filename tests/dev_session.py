"""A real ``lanes dev`` in a fresh directory, and the CLI run beside it as a newcomer's second shell does.

The stack runs on free loopback ports (the README's ports may be taken on a shared machine), and every
command runs with no ``TEMPORAL_*``, ``LANES_*`` or ``OPENAI_*`` variable set: the CLI finds the stack
through ``.lanes/dev/env`` in its working directory, nothing else. Shared by the README's session
(``tests/test_readme.py``) and the web UI's check (``tests/lanes/dev/test_ui.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lanes.dev.stack import free_port
from lanes.dev_env import env_file, read_dev_env

LANES = [sys.executable, "-m", "lanes"]

READY_TIMEOUT_S = 180
"""How long ``lanes dev`` may take to start on a loaded machine: a bound on a hang, not a wait."""

LAST_BANNER_LINE = "Ctrl-C stops everything."
"""The last line ``lanes dev`` prints once ready. Its stdout is a file here, so the banner is block
buffered and reaches the file only with this line's flush, after the env file is written: a test that
reads the banner (the UI's URL, the codec's) waits for this line, not only for the env file."""


def clean_env() -> dict[str, str]:
    """This process's environment without anything that would point a client somewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LANES_", "OPENAI_"))}


async def run(command: list[str], cwd: Path, timeout_s: float = 120) -> tuple[int, str, str]:
    """Run ``command`` in ``cwd`` with :func:`clean_env`; return its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass(frozen=True)
class DevSession:
    """A running ``lanes dev``: the directory it runs in and what it printed once ready."""

    directory: Path
    banner: str


@asynccontextmanager
async def lanes_dev(directory: Path, *options: str) -> AsyncIterator[DevSession]:
    """``lanes dev OPTIONS`` in ``directory`` on free Temporal and emulator ports, until the block ends.

    Yields once its env file is written and its banner printed; then stops it with SIGTERM, as Ctrl-C
    would, and checks that it removed its env file (a stale one would point the next shell at nothing).
    Its output is in ``directory/lanes-dev.out``.
    """
    output = directory / "lanes-dev.out"
    env_path = env_file(directory / ".lanes/dev")
    command = [*LANES, "dev", "--port", str(free_port()), "--emulator-port", str(free_port()), *options]
    with output.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=directory, env=clean_env(), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while not (read_dev_env(env_path) and LAST_BANNER_LINE in output.read_text()):
                    assert process.returncode is None, output.read_text()
                    await asyncio.sleep(0.2)
            yield DevSession(directory, output.read_text())
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 60)
    assert not env_path.exists(), "lanes dev left its env file behind"


@pytest.fixture
async def dev_stack(tmp_path: Path) -> AsyncIterator[Path]:
    """``lanes dev`` in ``tmp_path`` on free ports (no UI); yields the directory once it is ready.
    A test module imports it (``from tests.dev_session import dev_stack``) to use it.
    """
    async with lanes_dev(tmp_path, "--no-ui", "--duration", "15") as session:
        yield session.directory
