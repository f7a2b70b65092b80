"""The wheel: ``lanes`` and the packages a worker runs, no generic ``client``/``cli``/``worker`` module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long(15)
def test_the_wheel_installs_lanes_whose_public_names_import(tmp_path: Path) -> None:
    build = subprocess.run(
        # pip's isolated build takes setuptools from the index, as `make` does for the checkout.
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("lanes-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    tops = {top for top in tops if not top.endswith(".dist-info")}
    assert tops == {"lanes", "workflows", "activities", "policy", "responses_emulator"}
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    # The installed copy first on the path (the checkout's editable install stays behind it).
    probe = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import lanes; "
        "assert lanes.__file__.startswith(sys.path[0]), lanes.__file__; "
        "print(sorted(lanes.__all__) == lanes.__all__, lanes.LanesClient.__module__, lanes.run.__module__)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "lanes.client", "lanes.program"]
