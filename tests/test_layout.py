"""The flat layout's generic package names must resolve to this repository, not to a PyPI namesake."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "name", ["workflows", "activities", "policy", "client", "cli", "responses_emulator", "worker"]
)
def test_package_resolves_inside_the_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_policy_is_pure() -> None:
    # policy/ must not depend on Temporal, OpenAI or the network.
    for path in (ROOT / "policy").glob("*.py"):
        source = path.read_text()
        for banned in ("temporalio", "import openai", "httpx", "socket", "urllib"):
            assert banned not in source, f"{path.name} mentions {banned}"


def test_workflows_do_not_import_nondeterministic_modules_directly() -> None:
    for path in (ROOT / "workflows").glob("*.py"):
        lines = path.read_text().splitlines()
        top_level_imports = [line for line in lines if line.startswith(("import ", "from "))]
        for line in top_level_imports:
            for banned in ("os", "time", "random", "uuid", "openai", "httpx", "httpx2"):
                assert not line.startswith((f"import {banned}", f"from {banned} ", f"from {banned}.")), (
                    f"{path.name}: {line}"
                )


def test_client_imports_neither_the_cli_nor_the_worker() -> None:
    # client/ is shared by the worker, the CLI and user code: importing either would make a cycle.
    for path in (ROOT / "client").glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            for banned in ("cli", "worker"):
                assert not stripped.startswith((f"import {banned}", f"from {banned} ", f"from {banned}.")), (
                    f"{path.name}: {line}"
                )
