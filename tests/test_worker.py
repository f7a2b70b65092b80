"""``python worker.py`` as an operator starts it: configuration errors in one line, bugs with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "worker.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_log_level_is_one_line_naming_the_variable() -> None:
    done = run_worker({"LANES_LOG_LEVEL": "loud"})
    assert done.returncode == 1
    assert "LANES_LOG_LEVEL" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unexpected_error_keeps_its_traceback() -> None:
    # A bug (here: run() raising a plain error) must show where it happened, not one flattened line.
    code = (
        "import sys\nfrom lanes.worker import serving as worker\n"
        "async def broken(settings):\n"
        "    raise ZeroDivisionError('a bug deep in the worker')\n"
        "worker.run = broken\n"
        "sys.exit(worker.main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "ZeroDivisionError: a bug deep in the worker" in done.stderr
