"""The layout's rules, checked on the source: names resolve here, imports run one way, no cycles.

Imports run ``policy`` <- ``activities`` <- ``workflows`` <- ``lanes`` <- ``bench`` (and ``worker.py``);
``responses_emulator`` stands beside ``policy`` and imports nothing of lanes. Every import counts, at
module level, inside functions and under ``TYPE_CHECKING``: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS = {
    "policy": 0,
    "responses_emulator": 0,
    "activities": 1,
    "workflows": 2,
    "lanes": 3,
    "worker": 4,
    "bench": 4,
}
"""Each top-level package's layer: a module may import only from its own layer or below (and never a
sibling of its own layer, see :func:`test_packages_import_one_way`)."""


def _modules() -> dict[str, Path]:
    modules = {"worker": ROOT / "worker.py"}
    for package in LAYERS:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that ``import name`` loads (its longest known prefix), or None if not ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str) -> Iterator[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from lanes.dev import stack` imports the module lanes.dev.stack.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield target


GRAPH = {module: sorted(set(_imports(module))) for module in MODULES}


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize(
    "name", ["lanes", "workflows", "activities", "policy", "responses_emulator", "worker"]
)
def test_package_resolves_inside_the_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_the_graph_sees_the_lazy_and_the_type_only_imports() -> None:
    # The checks below are only as good as the graph: these edges are made inside a function body
    # and under `if TYPE_CHECKING:` respectively, and must be in it.
    assert "lanes.dev.emulator_command" in GRAPH["lanes.cli.main"]
    assert "workflows.model_task_io" in GRAPH["workflows.job_span"]
    assert len(MODULES) > 80


def test_packages_import_one_way() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _top(target) != _top(module) and LAYERS[_top(target)] >= LAYERS[_top(module)]
    ]
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []


def test_no_module_cycle() -> None:
    # A package's __init__ re-exporting its modules is not a cycle with them: drop edges from a package
    # to its own submodules, which Python resolves by loading the submodule first.
    graph = {
        module: [t for t in targets if not t.startswith(f"{module}.")] for module, targets in GRAPH.items()
    }
    assert _cycles(graph) == []


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


def test_the_worker_entry_point_holds_no_logic() -> None:
    tree = ast.parse((ROOT / "worker.py").read_text())
    definitions = [
        n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    assert definitions == []


def test_client_code_imports_neither_the_cli_nor_the_dev_stack() -> None:
    # lanes' client modules are shared by the worker, the CLI and user code: importing either would
    # pull the command line (or the emulator) into every program that starts a job.
    for module, targets in GRAPH.items():
        front_end = module.split(".")[:2] in (["lanes", "cli"], ["lanes", "dev"], ["lanes", "__main__"])
        if front_end or _top(module) != "lanes":
            continue
        bad = [t for t in targets if t.split(".")[:2] in (["lanes", "cli"], ["lanes", "dev"])]
        assert not bad, f"{module} imports {bad}"
