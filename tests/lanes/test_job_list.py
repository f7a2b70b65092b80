"""``list_jobs`` and ``lanes list``: the audit question from one visibility query, and clear errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError

from lanes.errors import JobListError
from lanes.jobs import JobSummary, jobs_query, list_jobs, parse_since, start_job
from lanes.settings import Settings
from tests.cli_runner import lanes
from workflows.model_task import ModelTaskInput


async def list_until(
    client: Client, ready: Callable[[list[JobSummary]], bool], *, timeout_s: float = 60, **filters: object
) -> list[JobSummary]:
    """List until ``ready`` holds: dev-server visibility is eventually consistent."""
    async with asyncio.timeout(timeout_s):
        while True:
            jobs = await list_jobs(client, **filters)  # type: ignore[arg-type]
            if ready(jobs):
                return jobs
            await asyncio.sleep(0.2)


def test_since_takes_minutes_hours_days_weeks_and_names_the_fix_otherwise() -> None:
    assert parse_since("30m") == timedelta(minutes=30)
    assert parse_since("24h") == timedelta(hours=24)
    assert parse_since("7d") == timedelta(days=7)
    assert parse_since("2w") == timedelta(weeks=2)
    for bad in ("", "24", "h", "0h", "1y", "-1d", "yesterday"):
        with pytest.raises(JobListError, match=r"since: .* use a number and a unit: 30m, 24h, 7d or 2w"):
            parse_since(bad)


def test_the_query_ands_lanes_search_attributes() -> None:
    query = jobs_query(
        lane="background", job_type="public_research", outcome="cancelled",
        started_after=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
    )  # fmt: skip
    assert query == (
        "WorkflowType = 'ModelTaskWorkflow' AND LanesLane = 'background' AND LanesJobType = 'public_research'"
        " AND LanesOutcome = 'cancelled' AND StartTime >= '2026-11-29T12:00:00Z'"
    )
    with pytest.raises(
        JobListError, match=r"lane: unknown lane 'stored'; choose background, stateless, denied"
    ):
        jobs_query(lane="stored")
    with pytest.raises(JobListError, match=r"outcome: unknown outcome 'ok'"):
        jobs_query(outcome="ok")
    with pytest.raises(JobListError, match=r"job type: .* is not a job type name"):
        jobs_query(job_type="x' OR WorkflowType != '")


async def test_which_jobs_used_stored_provider_state_and_why(
    client: Client, worker: str, settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    tasks = {
        "background": ModelTaskInput(job_type="public_research", input="audit"),
        "stateless": ModelTaskInput(job_type="support_analysis", data_class="confidential", input="audit"),
        "denied": ModelTaskInput(job_type="coding_analysis", data_class="restricted", input="audit"),
    }
    handles = {
        lane: await start_job(client, task, workflow_id=f"list-{lane}-{tag}", task_queue=worker)
        for lane, task in tasks.items()
    }
    results = {}
    for lane, handle in handles.items():
        try:
            results[lane] = await handle.result()
        except WorkflowFailureError:
            assert lane == "denied"
    ours = {handle.id for handle in handles.values()}

    def all_ended(jobs: list[JobSummary]) -> bool:
        return {j.workflow_id for j in jobs if j.outcome} >= ours

    everything = await list_until(client, all_ended, since=timedelta(hours=1))
    by_id = {job.workflow_id: job for job in everything if job.workflow_id in ours}
    background = by_id[handles["background"].id]
    assert background.lane == "background"
    assert background.rule == results["background"].rule
    assert background.policy_digest == results["background"].decision.policy_digest
    assert background.policy_version == results["background"].decision.policy_version
    assert background.job_type == "public_research"
    assert background.outcome == "completed"
    assert background.trace_id is not None
    assert by_id[handles["denied"].id].outcome == "denied"

    stored = await list_until(
        client, lambda jobs: handles["background"].id in {j.workflow_id for j in jobs},
        lane="background", since=timedelta(days=7),
    )  # fmt: skip
    assert {job.lane for job in stored} == {"background"}
    assert not {handles["stateless"].id, handles["denied"].id} & {job.workflow_id for job in stored}

    env = settings.environment()
    code, out, err = await lanes("list", "--lane", "background", "--since", "7d", "--json", env=env)
    assert code == 0, err
    listed = {job["workflow_id"]: job for job in json.loads(out)["jobs"]}
    assert listed[handles["background"].id]["rule"] == background.rule
    assert {job["lane"] for job in listed.values()} == {"background"}
    code, out, err = await lanes("list", "--job-type", "coding_analysis", "--outcome", "denied", env=env)
    assert code == 0, err
    [header, *rows] = out.splitlines()
    assert header.split()[:3] == ["workflow", "id", "started"]
    [row] = [r for r in rows if r.startswith(handles["denied"].id)]
    assert " denied " in f" {row} "
    assert f" {by_id[handles['denied'].id].rule} " in f" {row} "


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "yesterday"],
            "lanes list: --since: 'yesterday' is not a duration; use a number and a unit",
        ),
        (
            ["--lane", "stored"],
            "lanes list: --lane: unknown lane 'stored'; choose background, stateless, denied",
        ),
        (["--job-type", "a b"], "lanes list: --job-type: 'a b' is not a job type name"),
        (["--outcome", "ok"], "lanes list: --outcome: unknown outcome 'ok'; choose completed"),
    ],
)
async def test_lanes_list_rejects_a_bad_filter_with_exit_2_before_connecting(
    args: list[str], message: str
) -> None:
    code, out, err = await lanes("list", *args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert code == 2
    assert out == ""
    assert err.startswith(message), err
