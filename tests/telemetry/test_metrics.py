"""A worker's metrics: lanes' and Temporal's, scraped from its Prometheus endpoint and exported over OTLP."""

from __future__ import annotations

import asyncio
import secrets
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowFailureError

from lanes.dev.stack import WorkerProcess, free_port
from lanes.jobs import cancel_job, wait_for_phase
from lanes.settings import Settings
from tests.otlp_receiver import OtlpReceiver
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Series:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in series.items() if n == name and want <= ls)


async def scrape_until(url: str, ready: Callable[[Series], bool], *, timeout_s: float = 60) -> Series:
    """Scrape until ``ready`` holds: Temporal's metrics reach the endpoint on the exporter's next drain."""
    async with asyncio.timeout(timeout_s):
        while True:
            series = await asyncio.to_thread(scrape, url)
            if ready(series):
                return series
            await asyncio.sleep(0.2)


async def test_jobs_decisions_requests_tokens_and_lag_are_scraped_with_their_labels(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    receiver = OtlpReceiver().start()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # only the shutdown exports
    port = free_port()
    worker = WorkerProcess(
        settings, log_path=tmp_path / "worker.log", env={"LANES_PROMETHEUS_BIND": f"127.0.0.1:{port}"}
    )
    await worker.start()
    secret = f"prompt-{secrets.token_hex(8)}"
    try:
        jobs = {
            "background": ModelTaskInput(job_type="public_research", input=secret),
            "stateless": ModelTaskInput(job_type="support_analysis", data_class="confidential", input=secret),
            "denied": ModelTaskInput(job_type="coding_analysis", data_class="restricted", input=secret),
            "cancelled": ModelTaskInput(
                job_type="public_research", input=secret, metadata={"emulator_duration": "120"}
            ),
        }
        handles = {
            name: await client.start_workflow(
                ModelTaskWorkflow.run,
                task,
                id=f"metrics-{name}-{uuid.uuid4()}",
                task_queue=settings.task_queue,
            )
            for name, task in jobs.items()
        }
        await wait_for_phase(handles["cancelled"], "running")
        await cancel_job(client, handles["cancelled"].id, reason="metrics")
        results = {}
        for name, handle in handles.items():
            try:
                results[name] = await handle.result()
            except WorkflowFailureError:
                assert name == "denied"
        url = f"http://127.0.0.1:{port}/metrics"
        series = await scrape_until(
            url,
            lambda s: (
                value(s, "lanes_jobs_total") == 4 and value(s, "temporal_workflow_completed_total") >= 3
            ),
        )
    finally:
        await worker.stop()
        receiver.stop()

    assert (
        value(series, "lanes_jobs_total", lane="background", outcome="completed", job_type="public_research")
        == 1
    )
    assert (
        value(series, "lanes_jobs_total", lane="background", outcome="cancelled", job_type="public_research")
        == 1
    )
    assert (
        value(series, "lanes_jobs_total", lane="stateless", outcome="completed", job_type="support_analysis")
        == 1
    )
    assert value(series, "lanes_jobs_total", lane="denied", outcome="denied", job_type="coding_analysis") == 1
    for name in ("background", "stateless"):
        assert value(series, "lanes_decisions_total", rule=results[name].rule, lane=name) >= 1
    assert value(series, "lanes_decisions_total", lane="denied") == 1
    assert value(series, "lanes_provider_requests_total", endpoint="POST /v1/responses", status="200") >= 3
    assert value(series, "lanes_provider_requests_total", endpoint="POST /v1/responses/{id}/cancel") >= 1
    usage = results["background"].usage
    assert usage is not None
    assert usage.output_tokens > 0
    # The cancelled response is billed for what it produced before the cancel, and counted too.
    cancelled_usage = results["cancelled"].usage
    cancelled_tokens = cancelled_usage.output_tokens if cancelled_usage else 0
    background_tokens = value(series, "lanes_tokens_total", lane="background", token_type="output")
    assert background_tokens == usage.output_tokens + cancelled_tokens
    assert value(series, "lanes_tokens_total", lane="stateless", token_type="input") > 0
    assert value(series, "lanes_completion_lag_seconds_count", lane="background") == 1
    assert value(series, "lanes_completion_lag_seconds_count", lane="stateless") == 0
    # Temporal's SDK metrics come through the same endpoint.
    assert value(series, "temporal_workflow_completed_total") >= 3
    # No text in any label.
    assert not [labels for (_, labels) in series for _, v in labels if secret in v]
    # The same instruments went over OTLP, exported when the worker shut down.
    assert {
        "lanes.jobs",
        "lanes.decisions",
        "lanes.provider.requests",
        "lanes.tokens",
        "lanes.completion.lag",
    } <= receiver.metric_names
