"""Attributing the emulator's ledger and completion times to benchmark jobs."""

from typing import Any

import pytest

from bench.job_record import JobRecord, attribute_requests, endpoint
from responses_emulator import Completion, LedgerEntry


def _entry(method: str, path: str, **fields: Any) -> LedgerEntry:
    return LedgerEntry(method=method, path=path, status_code=200, at=fields.pop("at", 100.0), **fields)


def test_endpoints_are_named_from_method_and_path():
    assert endpoint(_entry("POST", "/v1/responses")) == "create"
    assert endpoint(_entry("GET", "/v1/responses/resp_1")) == "retrieve"
    assert endpoint(_entry("GET", "/v1/responses/resp_1", stream=True)) == "stream"
    assert endpoint(_entry("POST", "/v1/responses/resp_1/cancel")) == "cancel"
    assert endpoint(_entry("DELETE", "/v1/responses/resp_1")) == "delete"
    assert endpoint(_entry("GET", "/v1/models")) == "other"


def test_requests_generations_and_provider_end_per_job():
    job = JobRecord(contender="naive poll", job_id="j1", phase="p", duration_s=10, submitted_at=99.0)
    other = JobRecord(contender="sync call", job_id="j2", phase="p", duration_s=10, submitted_at=99.0)
    tag = {"bench_job": "j1"}
    ledger = [
        _entry("POST", "/v1/responses", metadata=tag, response_id="resp_a", generated=True, at=100.0),
        _entry("GET", "/v1/responses/resp_a", response_id="resp_a", at=102.0),
        _entry("GET", "/v1/responses/resp_a", response_id="resp_a", at=104.0),
        # A regenerated job: its second response's requests count too, and its end decides.
        _entry("POST", "/v1/responses", metadata=tag, response_id="resp_b", generated=True, at=105.0),
        _entry("GET", "/v1/responses/resp_b", stream=True, response_id="resp_b", at=106.0),
        _entry("GET", "/v1/responses/resp_other", response_id="resp_other", at=106.0),
    ]
    completions = [
        Completion(
            response_id="resp_a",
            metadata=tag,
            background=True,
            created_at=100.0,
            status="completed",
            ended_at=110.0,
        ),
        Completion(
            response_id="resp_b",
            metadata=tag,
            background=True,
            created_at=105.0,
            status="completed",
            ended_at=115.0,
        ),
    ]
    job.detected_at = 115.5
    attribute_requests([job, other], ledger, completions)
    assert job.requests == {"create": 2, "retrieve": 2, "stream": 1}
    assert job.request_total == 5
    assert job.generations == 2
    assert job.first_create_at == 100.0
    assert job.provider_ended_at == 115.0
    assert job.lag_s == 0.5
    assert job.submit_to_create_s == 1.0
    assert other.requests == {}
    assert other.lag_s is None


def test_simulated_jobs_report_no_lag():
    job = JobRecord(
        contender="lanes stream",
        job_id="j",
        phase="p",
        duration_s=1200,
        simulated=True,
        submitted_at=0,
        detected_at=5.0,
        provider_ended_at=1201.0,
        first_create_at=1.0,
    )
    assert job.lag_s is None
    assert job.submit_to_create_s is None


def test_acted_lag_runs_to_the_workflows_next_task_or_to_detection_in_older_records():
    job = JobRecord(
        contender="lanes webhook",
        job_id="j",
        phase="p",
        duration_s=10,
        submitted_at=0,
        detected_at=110.01,
        provider_ended_at=110.0,
    )
    assert job.acted_lag_s == pytest.approx(0.01)  # recorded before acted_at existed
    job.acted_at = 120.0  # the signal waited for a live worker
    assert job.lag_s == pytest.approx(0.01)
    assert job.acted_lag_s == pytest.approx(10.0)
    job.simulated = True
    assert job.acted_lag_s is None
