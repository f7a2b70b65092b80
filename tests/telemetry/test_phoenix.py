"""With Arize Phoenix (the ``lanes[phoenix]`` extra, or ``phoenix`` on PATH): each job of each lane is one
trace that Phoenix finds by its decision. Skipped where Phoenix is not installed; the default run proves
the same exporter path against the in-process OTLP receiver (``test_cli_trace.py``)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lanes.dev.phoenix import PROJECT, PhoenixServer, phoenix_cli
from lanes.dev.stack import WorkerProcess
from lanes.jobs import wait_for_phase
from lanes.settings import Settings
from tests.cli_runner import lanes

pytestmark = pytest.mark.skipif(
    phoenix_cli() is None, reason="Arize Phoenix is not installed (lanes[phoenix])"
)


def attribute(attributes: dict[str, Any], dotted: str) -> Any:
    """A dotted key from Phoenix's attributes, which it stores nested (``lanes.lane`` → lanes → lane)."""
    if dotted in attributes:
        return attributes[dotted]
    value: Any = attributes
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def spans(phoenix: PhoenixServer, **query: str | list[str]) -> list[dict[str, Any]]:
    url = f"{phoenix.url}/v1/projects/{PROJECT}/spans?{urllib.parse.urlencode(query, doseq=True)}&limit=1000"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return list(json.load(response)["data"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # the project exists once its first span is stored
            return []
        raise


async def spans_until(phoenix: PhoenixServer, count: int, **query: str | list[str]) -> list[dict[str, Any]]:
    """Query until at least ``count`` spans match: Phoenix stores what it receives asynchronously."""
    async with asyncio.timeout(120):
        while True:
            found = await asyncio.to_thread(spans, phoenix, **query)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.5)


@pytest.mark.timeout(600)
async def test_phoenix_finds_each_job_trace_by_its_decision(
    settings: Settings, client: Any, tmp_path: Path
) -> None:
    async with PhoenixServer(state_dir=tmp_path / "phoenix") as phoenix:
        env = {**settings.environment(), **phoenix.otlp_environment()}
        worker = WorkerProcess(settings, log_path=tmp_path / "worker.log", env=phoenix.otlp_environment())
        await worker.start()
        try:
            jobs = {
                "background": ["--job-type", "public_research"],
                "stateless": ["--job-type", "support_analysis", "--data-class", "confidential"],
                "denied": ["--job-type", "coding_analysis", "--data-class", "restricted"],
            }
            ids = {}
            for lane, flags in jobs.items():
                ids[lane] = f"phoenix-{lane}-{tmp_path.name}"
                code, _, err = await lanes(
                    "submit", *flags, "--input", "x", "--id", ids[lane], "--wait", env=env
                )
                assert code == (1 if lane == "denied" else 0), err
            ids["cancelled"] = f"phoenix-cancelled-{tmp_path.name}"
            code, _, err = await lanes(
                "submit", "--job-type", "public_research", "--input", "x",
                "--metadata", "emulator_duration=120", "--id", ids["cancelled"], env=env,
            )  # fmt: skip
            assert code == 0, err
            await wait_for_phase(client.get_workflow_handle(ids["cancelled"]), "running")
            code, _, err = await lanes("cancel", ids["cancelled"], "--reason", "phoenix", env=env)
            assert code == 0, err
            code, _, err = await lanes("result", ids["cancelled"], "--wait", env=env)
            assert code == 0, err
        finally:
            await worker.stop()

        for lane in ("background", "stateless", "denied"):
            roots = await spans_until(phoenix, 1, attribute=f"lanes.lane:{lane}", parent_id="null")
            [root] = [s for s in roots if attribute(s["attributes"], "temporalWorkflowID") == ids[lane]]
            assert root["name"] == "lanes submit"
            trace_id = root["context"]["trace_id"]
            in_trace = await spans_until(phoenix, 4, trace_id=trace_id)
            names = {s["name"] for s in in_trace}
            assert {"StartWorkflow:ModelTaskWorkflow", "RunWorkflow:ModelTaskWorkflow",
                    "RunActivity:evaluate_policy"} <= names  # fmt: skip
            if lane != "denied":
                model_call = next(
                    s for s in in_trace if attribute(s["attributes"], "gen_ai.usage.output_tokens")
                )
                assert attribute(model_call["attributes"], "gen_ai.request.model") or attribute(
                    model_call["attributes"], "gen_ai.response.model"
                )
        # Submitted without --wait, so the outcome is on the workflow's span (the Spans tab's filter).
        cancelled = await spans_until(
            phoenix, 1, attribute="lanes.outcome:cancelled", name="RunWorkflow:ModelTaskWorkflow"
        )
        assert ids["cancelled"] in {attribute(s["attributes"], "temporalWorkflowID") for s in cancelled}
        cancels = await spans_until(phoenix, 1, name="lanes cancel")
        assert ids["cancelled"] in {attribute(s["attributes"], "temporalWorkflowID") for s in cancels}
