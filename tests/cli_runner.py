"""Run the ``lanes`` CLI as a user does, in a subprocess, without blocking the test's event loop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

LANES = [sys.executable, "-c", "from lanes.cli.main import main; main()"]
ROOT = Path(__file__).resolve().parents[1]


async def lanes(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout_s: float = 120
) -> tuple[int, str, str]:
    """Run ``lanes ARGS`` in the repository root; return its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *LANES,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
