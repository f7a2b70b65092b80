"""The CLI traces with the worker's ``OTEL_*`` setup: one trace per job from ``lanes submit`` to the last
activity, a cancel linked to it, and no trace for a status query. Everything is read at an in-process
OTLP/HTTP receiver, as a collector would receive it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from lanes.dev.stack import WorkerProcess
from lanes.settings import Settings
from tests.cli_runner import lanes
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

SPAN_KIND_CLIENT = 3


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A receiver that the worker and every CLI process of the test export to (only at shutdown)."""
    receiver = OtlpReceiver().start()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    yield receiver
    receiver.stop()


@pytest_asyncio.fixture
async def worker_process(
    settings: Settings, receiver: OtlpReceiver, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    worker = WorkerProcess(settings, log_path=tmp_path / "worker.log")
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


def ancestry(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    """Names from ``span`` up to its trace's root (which must be in ``by_id``)."""
    names = [span.name]
    while span.parent_span_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


async def test_submit_starts_the_job_trace_and_status_makes_none(
    settings: Settings, receiver: OtlpReceiver, worker_process: WorkerProcess
) -> None:
    env = settings.environment()
    workflow_id = "cli-trace-submit"
    code, _, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "traced", "--id", workflow_id, "--wait",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = await lanes("status", workflow_id, env=env)
    assert code == 0, err
    await worker_process.stop()  # the worker's last spans leave at its shutdown

    spans = receiver.trace_of(workflow_id)
    assert len({s.trace_id for s in spans}) == 1, sorted({(s.trace_id, s.name) for s in spans})
    [root] = [s for s in spans if not s.parent_span_id]
    assert root.name == "lanes submit"
    assert root.service == "lanes-cli"
    assert root.kind == SPAN_KIND_CLIENT
    assert root.attributes["lanes.lane"] == "background"
    assert root.attributes["lanes.outcome"] == "completed"
    by_id = {s.span_id: s for s in spans}
    run = next(s for s in spans if s.name == "RunWorkflow:ModelTaskWorkflow")
    assert run.service == "lanes-worker"
    assert ancestry(run, by_id) == [
        "RunWorkflow:ModelTaskWorkflow",
        "StartWorkflow:ModelTaskWorkflow",
        "lanes submit",
    ]
    activities = {s.name for s in spans if s.name.startswith("RunActivity:")}
    assert {"RunActivity:evaluate_policy", "RunActivity:start_background_response",
            "RunActivity:await_background_response"} <= activities  # fmt: skip
    for span in spans:
        assert ancestry(span, by_id)[-1] == "lanes submit"
    # Neither the CLI's status query nor the worker's handler started a trace of its own.
    queries = [s.name for s in receiver.received() if "Query" in s.name]
    assert queries == []


@pytest.mark.long(10)
async def test_cancel_is_a_trace_linked_to_the_job_and_workflow_cancel_leaves_a_span(
    client: Client, settings: Settings, receiver: OtlpReceiver, worker_process: WorkerProcess
) -> None:
    env = settings.environment()
    ids = {}
    for via in ("signal", "workflow-cancel"):
        code, out, err = await lanes(
            "submit", "--job-type", "public_research", "--input", "long", "--metadata",
            "emulator_duration=120", env=env,
        )  # fmt: skip
        assert code == 0, err
        ids[via] = out.strip()
        handle = client.get_workflow_handle(ids[via])
        from lanes.jobs import wait_for_phase

        await wait_for_phase(handle, "running")
        flags = ["--workflow-cancel"] if via == "workflow-cancel" else []
        code, _, err = await lanes("cancel", ids[via], "--reason", "traced cancel", *flags, env=env)
        assert code == 0, err
        code, _, err = await lanes("result", ids[via], "--wait", env=env)
        assert code == 0, err
    await worker_process.stop()

    spans = receiver.received()
    for via, workflow_id in ids.items():
        [submit] = [
            s for s in spans if s.name == "lanes submit" and s.attributes["temporalWorkflowID"] == workflow_id
        ]
        [cancel] = [
            s for s in spans if s.name == "lanes cancel" and s.attributes["temporalWorkflowID"] == workflow_id
        ]
        assert cancel.attributes["lanes.cancel.via"] == via
        assert cancel.attributes["lanes.cancel.requested"] is True
        assert not cancel.parent_span_id
        assert cancel.trace_id != submit.trace_id
        assert cancel.links == [(submit.trace_id, submit.span_id)]
        run = next(
            s for s in spans if s.name == "RunWorkflow:ModelTaskWorkflow" and s.trace_id == submit.trace_id
        )
        assert run.attributes["lanes.outcome"] == "cancelled"
    # The signal (and the worker's handling of it) are children of the cancel span.
    signal_cancel = next(
        s for s in spans if s.name == "lanes cancel" and s.attributes["lanes.cancel.via"] == "signal"
    )
    in_cancel_trace = {s.name for s in spans if s.trace_id == signal_cancel.trace_id}
    assert {"lanes cancel", "SignalWorkflow:cancel", "HandleSignal:cancel"} <= in_cancel_trace
