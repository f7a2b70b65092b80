"""Spans leave the process on every exit path, although every entry point ends with ``os._exit``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from lanes.dev.stack import WorkerProcess
from lanes.settings import Settings
from tests.otlp_receiver import OtlpReceiver
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow

WORKER_SPANS = {
    "RunWorkflow:ModelTaskWorkflow",
    "StartActivity:evaluate_policy",
    "RunActivity:evaluate_policy",
    "lanes.decision",
    "StartActivity:create_stateless_response",
    "RunActivity:create_stateless_response",
}
"""What the worker exports for a stateless job (the StartWorkflow span is the client's)."""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def otlp_env(monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver) -> None:
    """Export OTLP/HTTP to the receiver, and never on the batch timer: only a shutdown exports."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")


async def test_a_worker_stopped_by_sigterm_right_after_a_job_exports_every_span_of_it(
    client: Client,
    settings: Settings,
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    otlp_env(monkeypatch, receiver)
    worker = WorkerProcess(settings, log_path=tmp_path / "worker.log")
    await worker.start()
    try:
        workflow_id = f"flush-{uuid.uuid4()}"
        task = ModelTaskInput(job_type="support_analysis", data_class="confidential", input="flush me")
        handle = await client.start_workflow(
            ModelTaskWorkflow.run, task, id=workflow_id, task_queue=settings.task_queue
        )
        await handle.result()
    finally:
        await worker.stop()  # SIGTERM, and wait for the process to exit
    names = {span.name for span in receiver.trace_of(workflow_id) if span.service == "lanes-worker"}
    assert names >= WORKER_SPANS, (tmp_path / "worker.log").read_text()[-2000:]
