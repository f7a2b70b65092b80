"""One worker, two provider endpoints: two emulator processes stand for OpenAI and an internal server.

The example policy (``policy/examples/internal_endpoint.toml``) routes restricted data to the internal
endpoint and everything else to OpenAI. Every cell of its matrix runs as a real job, and both emulators'
ledgers (read over HTTP from their own processes) prove that each job's requests went to the endpoint its
decision names, and none to the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from activities.failures import FailureType
from lanes.connect import connect, endpoint_clients, openai_client
from lanes.errors import ProviderNotConfiguredError
from lanes.jobs import start_job, wait_for_outcome
from lanes.settings import Settings
from lanes.worker.serving import serving
from policy import Lane, load_policy
from policy.matrix import decision_matrix
from responses_emulator import Emulator
from responses_emulator.ledger import LedgerEntry
from workflows.model_task import ModelTaskInput

EXAMPLE = Path(__file__).resolve().parents[2] / "policy" / "examples" / "internal_endpoint.toml"
KEY_ENV = "INTERNAL_LLM_API_KEY"
INTERNAL_MODEL = "llama-3.3-70b-instruct"


@dataclass
class EmulatorProcess:
    """An emulator in a process of its own, as a separate provider would be; its ledger read over HTTP."""

    base_url: str
    admin_url: str
    port: int

    async def ledger(self) -> list[LedgerEntry]:
        async with httpx2.AsyncClient() as http:
            reply = await http.get(f"{self.admin_url}/ledger")
            reply.raise_for_status()
            return [LedgerEntry.model_validate(entry) for entry in reply.json()]


@contextlib.asynccontextmanager
async def emulator_process(*flags: str) -> AsyncIterator[EmulatorProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lanes",
        "emulator",
        "--port",
        "0",
        "--duration",
        "1",
        "--queued",
        "0.2",
        *flags,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode().strip()
        base_url = line.rsplit(" ", 1)[-1]
        assert base_url.startswith("http://"), line
        root = base_url.removesuffix("/v1")
        emulator = EmulatorProcess(base_url, f"{root}/_emulator", int(root.rsplit(":", 1)[-1]))
        async with asyncio.timeout(60), httpx2.AsyncClient() as http:
            # The line is printed once the socket is bound; wait until uvicorn answers on it.
            while True:
                with contextlib.suppress(httpx2.TransportError):
                    if (await http.get(f"{emulator.admin_url}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield emulator
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()


@pytest.fixture
async def endpoints(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Settings, EmulatorProcess, EmulatorProcess]]:
    """Settings whose policy routes restricted data to ``internal``, and the two emulators behind it."""
    # The internal server serves only its own model, as a real one would.
    internal_flags = ("--models", INTERNAL_MODEL)
    async with emulator_process() as openai_side, emulator_process(*internal_flags) as internal_side:
        policy = tmp_path / "policy.toml"
        policy.write_text(EXAMPLE.read_text().replace("http://llm.internal:8000/v1", internal_side.base_url))
        monkeypatch.setenv(KEY_ENV, "internal-key")
        mine = settings.model_copy(
            update={"openai_base_url": openai_side.base_url, "policy_path": str(policy)}
        )
        yield mine, openai_side, internal_side


def _touches(entry: LedgerEntry, workflow_id: str, response_ids: set[str]) -> bool:
    return entry.metadata.get("lanes_workflow_id") == workflow_id or entry.response_id in response_ids


async def test_each_job_goes_to_the_endpoint_its_decision_names_and_nowhere_else(
    endpoints: tuple[Settings, EmulatorProcess, EmulatorProcess], span_exporter: InMemorySpanExporter
) -> None:
    settings, openai_side, internal_side = endpoints
    by_name = {"openai": openai_side, "internal": internal_side}
    policy = load_policy(settings.policy_path)
    cells = [(job, cls) for job, row in decision_matrix(policy).items() for cls in row]
    client = await connect(settings)
    async with (
        endpoint_clients(settings, policy) as clients,
        serving(client, settings, clients),
    ):
        ids = {cell: f"endpoints-{cell[0]}-{cell[1]}-{uuid.uuid4().hex[:8]}" for cell in cells}
        for (job, cls), workflow_id in ids.items():
            task = ModelTaskInput(job_type=job, data_class=cls, input=f"route {job} {cls}")
            await start_job(client, task, workflow_id=workflow_id, task_queue=settings.task_queue)
        outcomes = {
            cell: await wait_for_outcome(client, workflow_id, timeout_s=120)
            for cell, workflow_id in ids.items()
        }
    ledgers = {name: await emulator.ledger() for name, emulator in by_name.items()}
    lanes: set[Lane] = set()
    for cell, outcome in outcomes.items():
        assert outcome.status == "completed", (cell, outcome.error_message)
        decision = outcome.decision
        assert decision is not None
        assert decision.endpoint is not None
        lanes.add(decision.lane)
        target = decision.endpoint.name
        assert target == ("internal" if cell[1] == "restricted" else "openai"), cell
        # The decision names where the data went: the worker filled in its client's host and port.
        assert (decision.endpoint.host, decision.endpoint.port) == ("127.0.0.1", by_name[target].port)
        workflow_id = ids[cell]
        mine = [e for e in ledgers[target] if e.metadata.get("lanes_workflow_id") == workflow_id]
        assert [e.model for e in mine if e.method == "POST"] == [
            decision.profile.model if decision.profile else None
        ]
        response_ids = {e.response_id for e in mine if e.response_id}
        assert response_ids, cell
        assert all(e.status_code == 200 for e in ledgers[target] if e.response_id in response_ids)
        for other, entries in ledgers.items():
            if other != target:
                assert not [e for e in entries if _touches(e, workflow_id, response_ids)], (cell, other)
        if target == "internal":
            assert [e.store for e in mine] == [False]
        spans = [
            s
            for s in span_exporter.get_finished_spans()
            if s.name.startswith("RunActivity:")
            and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
            and (s.attributes or {}).get("lanes.endpoint") is not None
        ]
        calling = [s for s in spans if not s.name.endswith("evaluate_policy")]
        assert calling, cell
        for span in spans:
            attributes = span.attributes or {}
            assert attributes["lanes.endpoint"] == target
            assert attributes["server.address"] == "127.0.0.1"
            assert attributes["server.port"] == by_name[target].port
    assert lanes == {Lane.BACKGROUND, Lane.STATELESS}


async def test_a_worker_without_the_endpoints_key_does_not_start(
    endpoints: tuple[Settings, EmulatorProcess, EmulatorProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _, _ = endpoints
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ProviderNotConfiguredError, match=f"environment variable {KEY_ENV}, which is not set"):
        endpoint_clients(settings, load_policy(settings.policy_path))


async def test_a_decision_for_an_endpoint_the_worker_lacks_fails_before_any_call(
    endpoints: tuple[Settings, EmulatorProcess, EmulatorProcess],
) -> None:
    # A worker built with the default endpoint only, as if the policy had gained "internal" after it
    # started: the restricted job is refused at its decision, and neither provider hears of it.
    settings, openai_side, internal_side = endpoints
    client = await connect(settings)
    workflow_id = f"endpoints-missing-{uuid.uuid4().hex[:8]}"
    async with openai_client(settings) as provider, serving(client, settings, provider):
        task = ModelTaskInput(job_type="quick_summary", data_class="restricted", input="never sent")
        await start_job(client, task, workflow_id=workflow_id, task_queue=settings.task_queue)
        outcome = await wait_for_outcome(client, workflow_id, timeout_s=60)
    assert outcome.status == "failed"
    assert outcome.error_type == FailureType.ENDPOINT_NOT_CONFIGURED
    assert "'internal'" in (outcome.error_message or "")
    for emulator in (openai_side, internal_side):
        assert not [e for e in await emulator.ledger() if e.metadata.get("lanes_workflow_id") == workflow_id]


# --- the default policy: restricted data reaches only the declared ZDR project ---------------------------

ZDR_KEY_ENV = "OPENAI_ZDR_API_KEY"


async def test_restricted_data_reaches_only_the_zdr_project_and_never_with_stored_state(
    client: Client, worker: str, emulator: Emulator
) -> None:
    # The session's emulator stands for both OpenAI projects of the default policy, told apart by key as
    # OpenAI tells them (tests/conftest.py gives the ZDR project its own placeholder key): every job type
    # with restricted data, sensitive_customer's confidential fallback, and a public background job.
    policy = load_policy()
    cells = [(job, "restricted") for job in sorted(policy.document.job_types)]
    cells += [("sensitive_customer", "confidential"), ("public_research", "public")]
    ids = {cell: f"zdr-{cell[0]}-{cell[1]}-{uuid.uuid4().hex[:8]}" for cell in cells}
    for (job, cls), workflow_id in ids.items():
        task = ModelTaskInput(job_type=job, data_class=cls, input=f"route {job} {cls}")
        await start_job(client, task, workflow_id=workflow_id, task_queue=worker)
    outcomes = {cell: await wait_for_outcome(client, wid, timeout_s=120) for cell, wid in ids.items()}
    entries = emulator.ledger.entries()
    reached_zdr = 0
    for cell, outcome in outcomes.items():
        mine = [e for e in entries if e.metadata.get("lanes_workflow_id") == ids[cell]]
        decision = outcome.decision
        assert decision is not None, cell
        if decision.lane is Lane.DENIED:
            assert outcome.status == "denied", cell
            assert not mine, cell  # nothing of a denied job reaches any project
            continue
        assert outcome.status == "completed", (cell, outcome.error_message)
        assert mine, cell
        if decision.endpoint_name == "openai-zdr":
            reached_zdr += 1
            assert decision.lane is Lane.STATELESS, cell
            assert [(e.zdr_project, e.store, bool(e.background)) for e in mine] == [(True, False, False)], (
                cell
            )
        else:
            assert cell == ("public_research", "public")
            assert {e.zdr_project for e in mine} == {False}
    # Every restricted cell that reaches a model reached the ZDR project, and the confidential fallback.
    assert reached_zdr == sum(1 for cell in cells if cell[1] != "public") - sum(
        1 for o in outcomes.values() if o.status == "denied"
    )
    # Over the whole session's ledger: the ZDR project was never asked to store or to run in background.
    assert not [e for e in entries if e.zdr_project and (e.store is not False or e.background)]


async def test_a_worker_without_the_zdr_projects_key_does_not_start(settings: Settings) -> None:
    # As in production: the default policy's ZDR project has a key variable of its own, named when unset.
    with pytest.raises(
        ProviderNotConfiguredError, match=f"environment variable {ZDR_KEY_ENV}, which is not set"
    ):
        endpoint_clients(settings, load_policy(), environ={})
