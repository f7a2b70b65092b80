"""``lanes setup`` on a bare namespace, the worker's refusal to run without it, and Temporal Cloud's refusal.

The session's dev server registers the attributes at start, so these tests start a bare one of their own.
"""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from lanes.connect import connect
from lanes.dev.emulator_server import EmulatorServer
from lanes.dev.stack import DevServer, StackError, WorkerProcess
from lanes.settings import Settings
from lanes.setup import EXIT_REFUSED, manual_commands, missing_search_attributes, setup
from workflows import search_attributes

NAMES = [key.name for key in search_attributes.ALL]


@pytest_asyncio.fixture
async def bare_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = DevServer(state_dir=tmp_path / "bare", persistent=False, search_attributes=False)
    await server.start()
    yield server
    await server.stop()


async def run_lanes_setup(settings: Settings) -> tuple[int, str, str]:
    import asyncio
    import os

    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address or ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from lanes.cli.main import main; main()",
        "setup",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.long(10)
async def test_worker_refuses_a_bare_namespace_and_lanes_setup_fixes_it(
    bare_server: DevServer, emulator_server: EmulatorServer, tmp_path: Path
) -> None:
    settings = Settings(
        temporal_address=bare_server.address,
        task_queue=f"tq-{uuid.uuid4()}",
        openai_base_url=emulator_server.base_url,
        openai_api_key="emulator",
    )
    client = await connect(settings)
    assert await missing_search_attributes(client) == NAMES

    worker = WorkerProcess(settings, log_path=tmp_path / "worker.log")
    with pytest.raises(StackError, match="exited with 1"):
        await worker.start()
    log = worker.log_path.read_text().strip().splitlines()
    assert log == [
        f"lanes worker: namespace 'default' lacks the search attributes {', '.join(NAMES)}; "
        "run `lanes setup` (same TEMPORAL_* settings) once, then start the worker"
    ]

    code, out, err = await run_lanes_setup(settings)
    assert code == 0, err
    assert out.splitlines() == [f"registered search attribute {n} (Keyword) on default" for n in NAMES]
    assert await missing_search_attributes(client) == []

    code, out, err = await run_lanes_setup(settings)  # idempotent
    assert code == 0, err
    assert out.splitlines() == [f"search attribute {n} already registered on default" for n in NAMES]

    await worker.start()
    await worker.stop()


def refusing_client(status: RPCStatusCode, *, on: str) -> Client:
    """A client whose operator API refuses ``on`` (list or add), as Temporal Cloud does for API keys."""

    async def refuse(*_: Any, **__: Any) -> Any:
        raise RPCError("request unauthorized", status, b"")

    async def empty(*_: Any, **__: Any) -> Any:
        return SimpleNamespace(system_attributes={}, custom_attributes={})

    operator = SimpleNamespace(
        list_search_attributes=refuse if on == "list" else empty,
        add_search_attributes=refuse,
    )
    fake: Any = SimpleNamespace(namespace="lanes-prod.a1b2c", operator_service=operator)
    return fake  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("status", "on"),
    [
        (RPCStatusCode.PERMISSION_DENIED, "add"),
        (RPCStatusCode.UNIMPLEMENTED, "add"),
        (RPCStatusCode.PERMISSION_DENIED, "list"),
    ],
)
async def test_refused_registration_prints_the_commands_and_exits_2(status: RPCStatusCode, on: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert await setup(refusing_client(status, on=on), out=out, err=err) == EXIT_REFUSED
    text = err.getvalue()
    assert status.name in text
    attrs = " ".join(f"--search-attribute {n}=Keyword" for n in NAMES)
    assert f"  tcld namespace search-attributes add --namespace lanes-prod.a1b2c {attrs}\n" in text
    names = " ".join(f"--name {n} --type Keyword" for n in NAMES)
    assert f"  temporal operator search-attribute create --namespace lanes-prod.a1b2c {names}\n" in text
    assert out.getvalue() == ""


def test_manual_commands_name_every_attribute() -> None:
    cloud, cli = manual_commands("ns")
    assert all(name in cloud and name in cli for name in NAMES)
