"""ResponsesActivities against the in-process Responses emulator: the drops and faults of the background lane.

Each test runs the real activities in ``temporalio.testing.ActivityEnvironment`` with the real ``openai`` SDK
(``max_retries=0``) over ``httpx2.MockTransport(emulator.handle)``. Most use a ``ManualClock``, so a resume
window, a retention window or a response's whole lifetime is crossed without sleeping; the few that need a
stream to pace itself (drops while the response is still generating) use the real clock with short
durations. Where Temporal would retry an activity, a test runs the next attempt itself, with the heartbeat
details the previous attempt left, exactly as a worker would receive them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import openai
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.decision_tags import DecisionTags
from activities.failures import FailureType
from activities.poll_schedule import JITTER, elapsed_interval_s, nominal_interval_s
from activities.responses import (
    AwaitBackgroundInput,
    AwaitBackgroundResult,
    AwaitProgress,
    CancelBackgroundInput,
    CheckBackgroundInput,
    ResponsesActivities,
    StartBackgroundInput,
    StartBackgroundResult,
    StreamMode,
)
from responses_emulator import Emulator, EmulatorConfig, LedgerEntry, ManualClock, ShiftedClock
from responses_emulator.testing import control
from responses_emulator.testing import wait_until as until

PROMPT = "prompt-marker-okapi-71 survey the public sources"
INSTRUCTIONS = "instructions-marker-narwhal-33"
MODEL = "gpt-5-mini"
TAGS = DecisionTags(
    lane="background",
    rule="test-rule",
    job_type="public_research",
    data_class="public",
    policy_version="test",
    policy_digest="0" * 64,
)
PROGRESS_KEYS = set(AwaitProgress.model_fields)
"""Everything a heartbeat of the await activity may carry: counts, positions and the response id."""

Handler = Callable[[httpx2.Request], Coroutine[None, None, httpx2.Response]]


@dataclasses.dataclass
class Rig:
    """One emulator, an SDK client on it, the activities under test and every heartbeat they sent."""

    emulator: Emulator
    clock: ManualClock | None
    provider: openai.AsyncOpenAI
    activities: ResponsesActivities
    heartbeats: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def env(
        self,
        *,
        workflow_id: str | None = None,
        run_id: str | None = None,
        attempt: int = 1,
        details: list[Any] | None = None,
        heartbeat_timeout_s: float = 3.0,
        scheduled_s_ago: float = 0.0,
    ) -> ActivityEnvironment:
        """An activity environment as a worker would set it up for one attempt."""
        env = ActivityEnvironment()
        scheduled = datetime.now(UTC) - timedelta(seconds=scheduled_s_ago)
        env.info = dataclasses.replace(
            ActivityEnvironment.default_info(),
            scheduled_time=scheduled,
            current_attempt_scheduled_time=scheduled,
            workflow_id=workflow_id or f"wf-{uuid.uuid4()}",
            workflow_run_id=run_id or str(uuid.uuid4()),
            activity_id="1",
            attempt=attempt,
            heartbeat_details=details or [],
            heartbeat_timeout=timedelta(seconds=heartbeat_timeout_s),
        )
        env.on_heartbeat = self._record
        return env

    def _record(self, *details: Any) -> None:
        if details:
            self.heartbeats.append(details[0])

    def advance(self, seconds: float) -> None:
        assert self.clock is not None, "this rig runs on the real clock"
        self.clock.advance(seconds)

    async def start(
        self,
        *,
        stream: bool,
        metadata: Mapping[str, str] | None = None,
        max_output_tokens: int | None = None,
        env: ActivityEnvironment | None = None,
    ) -> StartBackgroundResult:
        return await (env or self.env()).run(
            self.activities.start_background_response,
            start_input(stream=stream, metadata=metadata, max_output_tokens=max_output_tokens),
        )

    async def follow(
        self,
        started: StartBackgroundResult,
        *,
        mode: StreamMode,
        env: ActivityEnvironment | None = None,
        poll_interval_cap_s: float = 0.2,
        queued_timeout_s: float = 600.0,
    ) -> AwaitBackgroundResult:
        return await (env or self.env()).run(
            self.activities.await_background_response,
            AwaitBackgroundInput(
                tags=TAGS,
                response_id=started.response_id,
                mode=mode,
                cursor=started.cursor,
                poll_interval_cap_s=poll_interval_cap_s,
                queued_timeout_s=queued_timeout_s,
            ),
        )

    async def check(
        self,
        started: StartBackgroundResult,
        *,
        attempt: int = 1,
        scheduled_s_ago: float = 0.0,
        poll_interval_cap_s: float = 30.0,
        queued_timeout_s: float = 600.0,
    ) -> AwaitBackgroundResult:
        """One attempt of the poll-mode follower, as Temporal's retry number ``attempt`` would run it."""
        return await self.env(attempt=attempt, scheduled_s_ago=scheduled_s_ago).run(
            self.activities.check_background_response,
            CheckBackgroundInput(
                tags=TAGS,
                response_id=started.response_id,
                poll_interval_cap_s=poll_interval_cap_s,
                queued_timeout_s=queued_timeout_s,
            ),
        )

    def background_creates(self) -> list[LedgerEntry]:
        """Creates of the activities under test (the tests' own reference calls are foreground)."""
        return [e for e in self.emulator.ledger.creates() if e.background]

    def generations(self) -> list[LedgerEntry]:
        """Background generations started: what a real account would be billed for."""
        return [e for e in self.emulator.ledger.generations() if e.background]

    def requests(self, response_id: str) -> list[LedgerEntry]:
        return self.emulator.ledger.for_response(response_id)

    def stream_reads(self, response_id: str) -> list[LedgerEntry]:
        return [e for e in self.requests(response_id) if e.method == "GET" and e.stream]

    def polls(self, response_id: str) -> list[LedgerEntry]:
        return [e for e in self.requests(response_id) if e.method == "GET" and not e.stream]


def start_input(
    *, stream: bool, metadata: Mapping[str, str] | None = None, max_output_tokens: int | None = None
) -> StartBackgroundInput:
    return StartBackgroundInput(
        tags=TAGS,
        model=MODEL,
        input=PROMPT,
        instructions=INSTRUCTIONS,
        max_output_tokens=max_output_tokens,
        metadata=dict(metadata or {}),
        stream=stream,
    )


def make_rig(
    config: EmulatorConfig,
    *,
    manual: bool = True,
    handler: Callable[[Emulator, ManualClock | None], Handler] | None = None,
    headers: Mapping[str, str] | None = None,
    shifted: ShiftedClock | None = None,
) -> Rig:
    clock = ManualClock() if manual and shifted is None else None
    emulator = Emulator(config, clock=shifted or clock)
    transport = httpx2.MockTransport(handler(emulator, clock) if handler else emulator.handle)
    provider = openai.AsyncOpenAI(
        api_key="emulator",
        base_url="http://emulator.local/v1",
        http_client=httpx2.AsyncClient(transport=transport),
        max_retries=0,
        default_headers=dict(headers or {}),
    )
    return Rig(emulator=emulator, clock=clock, provider=provider, activities=ResponsesActivities(provider))


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    """Simulated time: 0.2 s queued, 3 s to the end, 40 tokens, resume window 300 s, retention 600 s."""
    made = make_rig(EmulatorConfig(duration_s=3.0, queued_s=0.2))
    yield made
    await made.provider.close()


@pytest_asyncio.fixture
async def live_rig() -> AsyncIterator[Rig]:
    """Real time, so that streams pace themselves and drops happen while the response is generating."""
    made = make_rig(EmulatorConfig(duration_s=1.5, queued_s=0.1, output_tokens=30), manual=False)
    yield made
    await made.provider.close()


async def undisturbed_text(rig: Rig) -> str:
    """The output of the same request with no fault: a synchronous call, which generates the same text."""
    response = await rig.provider.responses.create(
        model=MODEL,
        input=PROMPT,
        instructions=INSTRUCTIONS,
        store=False,
    )
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    return response.output_text


def assert_no_text(heartbeats: list[dict[str, Any]], *texts: str) -> None:
    """Heartbeats are counts and positions only: never the prompt, the instructions or the output."""
    assert heartbeats, "the activity heartbeated"
    dumped = json.dumps(heartbeats)
    for text in (PROMPT, INSTRUCTIONS, *texts):
        if text:
            assert text not in dumped
            assert text[:24] not in dumped
    for beat in heartbeats:
        assert set(beat) <= PROGRESS_KEYS, set(beat) - PROGRESS_KEYS


# --------------------------------------------------------------------------------------- resume


async def test_retry_resumes_the_stream_after_the_heartbeat_cursor_without_creating_again(rig: Rig) -> None:
    started = await rig.start(stream=True)
    assert started.cursor == 0
    rig.advance(10)
    previous = AwaitProgress(
        response_id=started.response_id,
        mode="stream",
        cursor=17,
        provider_status="in_progress",
        polls=2,
        reconnects=3,
        chars=70,
    )
    env = rig.env(attempt=2, details=[previous.model_dump(mode="json")])

    result = await rig.follow(started, mode="stream", env=env)

    assert result.status == "completed"
    assert result.mode == "stream"
    final = await rig.provider.responses.retrieve(started.response_id)
    assert result.output_text == final.output_text
    assert result.output_text == await undisturbed_text(rig)
    # The stream resumed after the heartbeat's cursor, not after the start's, and nothing was re-created.
    assert [e.starting_after for e in rig.stream_reads(started.response_id)] == [17]
    assert len(rig.background_creates()) == 1
    assert len(rig.generations()) == 1
    # Counters carry over from the previous attempt.
    assert result.reconnects >= 3
    assert result.polls >= 2
    assert rig.heartbeats[0]["cursor"] == 17
    assert rig.heartbeats[0]["attempt"] == 2


async def test_heartbeat_details_of_another_response_are_ignored(rig: Rig) -> None:
    started = await rig.start(stream=True)
    rig.advance(10)
    stale = AwaitProgress(response_id="resp_other", mode="poll", cursor=30, polls=9)
    result = await rig.follow(
        started, mode="stream", env=rig.env(attempt=3, details=[stale.model_dump(mode="json")])
    )
    assert result.status == "completed"
    assert result.mode == "stream"
    assert result.polls == 0
    assert [e.starting_after for e in rig.stream_reads(started.response_id)] == [started.cursor]


# --------------------------------------------------------------------------------------- drops


async def test_stream_dropped_every_few_events_completes_with_identical_output(live_rig: Rig) -> None:
    rig = live_rig
    metadata = {"emulator_fault": "drop_stream_after:5:100"}
    started = await rig.start(stream=True, metadata=metadata)

    result = await rig.follow(started, mode="stream", env=rig.env(heartbeat_timeout_s=0.3))

    assert result.status == "completed"
    assert result.reconnects >= 2
    assert result.output_text == await undisturbed_text(rig)
    assert result.output_text == (await rig.provider.responses.retrieve(started.response_id)).output_text
    # Every resume started after the last event received: strictly increasing cursors, never a replay.
    cursors = [e.starting_after or 0 for e in rig.stream_reads(started.response_id)]
    assert len(cursors) >= 2
    assert cursors[0] == started.cursor == 0
    # Every stream was cut after exactly 5 events and resumed right after the last one received.
    assert [b - a for a, b in itertools.pairwise(cursors)] == [5] * (len(cursors) - 1), cursors
    assert len(rig.generations()) == 1
    assert_no_text(rig.heartbeats, result.output_text)


async def test_one_dropped_stream_counts_one_reconnect(rig: Rig) -> None:
    # The create stream takes the first drop; the await activity's stream takes the second, after 5 events.
    started = await rig.start(stream=True, metadata={"emulator_fault": "drop_stream_after:5:2"})
    rig.advance(10)
    result = await rig.follow(started, mode="stream")
    assert result.status == "completed"
    # A failed connection is resumed after its cursor, and the resumed stream brings the terminal event:
    # no poll in between.
    assert [e.starting_after for e in rig.stream_reads(started.response_id)] == [0, 5]
    assert rig.polls(started.response_id) == []
    assert result.reconnects == 1


async def test_a_quiet_twenty_minute_stream_costs_two_requests() -> None:
    # One event a minute for twenty minutes, on a clock the test fast-forwards while the stream stays
    # open. Before, a stream silent for 10 s (or the queued timeout, here 0.5 s) was closed, polled and
    # re-opened: tens of requests for this job.
    rig = make_rig(EmulatorConfig(queued_s=0.5), shifted=ShiftedClock())
    try:
        started = await rig.start(stream=True, metadata=control(duration=1200, tokens=20))
        follow = asyncio.create_task(rig.follow(started, mode="stream", queued_timeout_s=0.5))
        rid = started.response_id
        await until(lambda: len(rig.stream_reads(rid)) == 1)  # the await activity's stream is open
        for _ in range(10):
            rig.emulator.advance(121)  # two events become due at once...
            await asyncio.sleep(0.6)  # ...then real silence longer than the old idle limit
            assert (len(rig.stream_reads(rid)), rig.polls(rid)) == (1, []), "the stream stayed open"
        result = await follow
    finally:
        await rig.provider.close()
    assert result.status == "completed"
    assert (result.reconnects, result.polls) == (0, 0)
    requests = rig.requests(started.response_id)
    assert [(e.method, e.stream) for e in requests] == [("POST", True), ("GET", True)], requests


@pytest.mark.parametrize("code", ["rate_limit_exceeded", "server_error"])
async def test_a_transient_error_event_mid_stream_resumes_after_the_cursor(rig: Rig, code: str) -> None:
    started = await rig.start(stream=True, metadata={"emulator_fault": f"stream_error:{code}:6"})
    rig.advance(10)
    result = await rig.follow(started, mode="stream")
    assert result.status == "completed"
    assert result.reconnects == 1
    reads = rig.stream_reads(started.response_id)
    assert len(reads) == 2
    assert reads[1].starting_after is not None
    assert reads[1].starting_after > (reads[0].starting_after or 0)
    assert result.output_text == await undisturbed_text(rig)
    assert len(rig.generations()) == 1


async def test_an_error_event_with_another_code_fails_the_attempt_for_good(rig: Rig) -> None:
    started = await rig.start(stream=True, metadata={"emulator_fault": "stream_error:invalid_prompt:6"})
    rig.advance(10)
    with pytest.raises(ApplicationError) as failure:
        await rig.follow(started, mode="stream")
    assert failure.value.type == FailureType.PROVIDER_ERROR
    assert failure.value.non_retryable
    assert "invalid_prompt" in failure.value.message


@pytest.mark.parametrize("cause", ["resume_window_expired", "created_without_stream"])
async def test_refused_stream_switches_to_polling_and_completes(rig: Rig, cause: str) -> None:
    started = await rig.start(stream=cause == "resume_window_expired", metadata=control(duration=1000))
    rig.advance(400 if cause == "resume_window_expired" else 10)  # past the 300 s resume window
    follow = asyncio.create_task(rig.follow(started, mode="stream", env=rig.env(heartbeat_timeout_s=0.15)))
    rid = started.response_id
    # Still generating: the activity polls until the end, then takes the result from the terminal object.
    await until(lambda: (len(rig.polls(rid)) >= 2 and rig.heartbeats[-1]["mode"] == "poll") or follow.done())
    assert not follow.done()
    rig.advance(1000)
    result = await asyncio.wait_for(follow, timeout=30)

    assert result.status == "completed"
    assert result.mode == "poll"
    assert result.polls >= 3
    assert result.output_text == await undisturbed_text(rig)
    refused = rig.stream_reads(rid)
    assert [e.status_code for e in refused] == [400]


async def test_poll_interval_follows_the_poll_count_under_the_cap_and_continues_after_a_retry(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[int, float]] = []

    def spy(polls: int, cap_s: float, **_: Any) -> float:
        asked.append((polls, cap_s))
        return 0.01

    monkeypatch.setattr("activities.responses.next_interval_s", spy)
    started = await rig.start(stream=False, metadata=control(duration=1000))
    rig.advance(1)
    first = rig.env(heartbeat_timeout_s=0.3)
    follow = asyncio.create_task(rig.follow(started, mode="poll", env=first, poll_interval_cap_s=12.5))
    await until(lambda: len(asked) >= 5 and any(b["polls"] >= 5 for b in rig.heartbeats))
    first.worker_shutdown()
    with pytest.raises(ApplicationError) as shutdown:
        await follow
    assert shutdown.value.type == FailureType.WORKER_SHUTDOWN
    # The interval is computed from the number of polls made so far, under the job type's cap.
    count = len(asked)
    assert [p for p, _ in asked] == list(range(1, count + 1))
    assert {c for _, c in asked} == {12.5}
    assert rig.heartbeats[-1]["polls"] == count  # heartbeated on the way out

    asked.clear()
    rig.advance(1000)  # past the end (1000 s after the create), inside the retention window
    second = rig.env(attempt=2, details=[rig.heartbeats[-1]])
    result = await rig.follow(started, mode="poll", env=second, poll_interval_cap_s=12.5)
    assert result.status == "completed"
    # The next attempt does not go back to the fastest interval: its poll count continues.
    assert result.polls == count + 1
    assert asked == []  # the first poll of the new attempt found it completed


# --------------------------------------------------------------------------------------- provider errors


async def test_rate_limited_create_is_retryable_after_the_providers_retry_after() -> None:
    rig = make_rig(EmulatorConfig(retry_after_s=7), headers={"X-Emulator-Fault": "http:429"})
    try:
        with pytest.raises(ApplicationError) as failure:
            await rig.start(stream=True)
    finally:
        await rig.provider.close()
    error = failure.value
    assert error.type == FailureType.PROVIDER_ERROR
    assert error.non_retryable is False
    assert error.next_retry_delay == timedelta(seconds=7)
    assert error.details[0]["status"] == 429
    assert rig.generations() == []


@pytest.mark.parametrize(("status", "delay"), [(500, None), (502, None), (503, timedelta(seconds=1))])
async def test_server_errors_on_create_are_retryable(status: int, delay: timedelta | None) -> None:
    rig = make_rig(EmulatorConfig(), headers={"X-Emulator-Fault": f"http:{status}"})
    try:
        with pytest.raises(ApplicationError) as failure:
            await rig.start(stream=False)
    finally:
        await rig.provider.close()
    assert failure.value.type == FailureType.PROVIDER_ERROR
    assert failure.value.non_retryable is False
    assert failure.value.next_retry_delay == delay
    assert failure.value.details[0]["status"] == status


async def test_invalid_create_is_not_retryable(rig: Rig) -> None:
    with pytest.raises(ApplicationError) as failure:
        await rig.start(stream=True, max_output_tokens=8)  # the API's minimum is 16
    error = failure.value
    assert error.type == FailureType.PROVIDER_ERROR
    assert error.non_retryable is True
    assert error.next_retry_delay is None
    assert error.details[0] == {"status": 400, "code": "integer_below_min_value"}
    assert rig.generations() == []


@pytest.mark.parametrize(
    ("mode", "fault", "status", "delay"),
    [
        ("stream", "http:503:3", 503, timedelta(seconds=1)),  # the emulator's Retry-After
        ("poll", "http:429:3", 429, timedelta(seconds=1)),
        ("poll", "http:500:3", 500, None),
        ("poll", "reset_mid_body:3", 0, None),  # the connection resets half-way through a poll's body
    ],
)
async def test_error_burst_while_awaiting_fails_retryably_then_resumes(
    rig: Rig, mode: StreamMode, fault: str, status: int, delay: timedelta | None
) -> None:
    started = await rig.start(stream=mode == "stream", metadata={"emulator_fault": fault})
    rig.advance(10)
    failures: list[ApplicationError] = []
    result: AwaitBackgroundResult | None = None
    for attempt in range(1, 6):  # what Temporal's retry policy does, with the last heartbeat each time
        details = [rig.heartbeats[-1]] if rig.heartbeats else []
        try:
            result = await rig.follow(started, mode=mode, env=rig.env(attempt=attempt, details=details))
            break
        except ApplicationError as error:
            failures.append(error)
    assert result is not None
    assert [(f.type, f.non_retryable, f.details[0]["status"]) for f in failures] == [
        (FailureType.PROVIDER_ERROR, False, status)
    ] * 3
    assert [f.next_retry_delay for f in failures] == [delay] * 3
    assert result.status == "completed"
    assert result.output_text == await undisturbed_text(rig)
    assert len(rig.generations()) == 1


async def test_create_stream_cut_before_its_first_event_is_retried_into_the_same_response(rig: Rig) -> None:
    env = rig.env()
    with pytest.raises(ApplicationError) as failure:
        await rig.start(stream=True, metadata={"emulator_fault": "drop_stream_after:0"}, env=env)
    assert failure.value.non_retryable is False
    assert failure.value.details[0]["code"] == "connection_error"

    started = await rig.start(stream=True, metadata={"emulator_fault": "drop_stream_after:0"}, env=env)
    assert started.cursor == 0
    assert [e.response_id for e in rig.background_creates()] == [started.response_id] * 2
    assert len(rig.generations()) == 1


# --------------------------------------------------------------------------------------- stuck, expired


@pytest.mark.parametrize("mode", ["stream", "poll"])
async def test_stuck_in_queued_is_cancelled_and_fails_with_stuck_queued(rig: Rig, mode: StreamMode) -> None:
    started = await rig.start(stream=mode == "stream", metadata={"emulator_fault": "stuck_queued"})
    rig.advance(3600)  # an hour of simulated queueing: nothing else would ever happen
    with pytest.raises(ApplicationError) as failure:
        await rig.follow(started, mode=mode, queued_timeout_s=0.3, poll_interval_cap_s=0.05)

    error = failure.value
    assert error.type == FailureType.STUCK_QUEUED
    assert error.non_retryable is True
    assert started.response_id in error.message
    assert error.details[0]["response_id"] == started.response_id
    cancels = [e for e in rig.requests(started.response_id) if e.path.endswith("/cancel")]
    assert [e.status_code for e in cancels] == [200]
    assert (await rig.provider.responses.retrieve(started.response_id)).status == "cancelled"


async def test_stuck_in_queued_timer_survives_a_retry(rig: Rig) -> None:
    started = await rig.start(stream=False, metadata={"emulator_fault": "stuck_queued"})
    previous = AwaitProgress(
        response_id=started.response_id,
        mode="poll",
        provider_status="queued",
        polls=40,
        queued_since=time.time() - 120,  # the previous attempt saw it queued two minutes ago
    )
    env = rig.env(attempt=2, details=[previous.model_dump(mode="json")])
    with pytest.raises(ApplicationError) as failure:
        await rig.follow(started, mode="poll", env=env, queued_timeout_s=60)
    assert failure.value.type == FailureType.STUCK_QUEUED
    assert len(rig.polls(started.response_id)) == 1  # no fresh 60 s wait after the retry
    assert (await rig.provider.responses.retrieve(started.response_id)).status == "cancelled"


async def test_stuck_in_queued_is_cancelled_even_when_the_first_cancel_fails() -> None:
    def cancel_fails_once(emulator: Emulator, clock: ManualClock | None) -> Handler:
        failed: list[str] = []

        async def handle(request: httpx2.Request) -> httpx2.Response:
            if request.url.path.endswith("/cancel") and not failed:
                failed.append(request.url.path)
                request.headers["X-Emulator-Fault"] = "http:503"
            return await emulator.handle(request)

        return handle

    rig = make_rig(EmulatorConfig(), handler=cancel_fails_once)
    try:
        started = await rig.start(stream=False, metadata={"emulator_fault": "stuck_queued"})
        last: ApplicationError | None = None
        for attempt in range(1, 6):  # Temporal's retries, each with the last heartbeat
            details = [rig.heartbeats[-1]] if rig.heartbeats else []
            env = rig.env(attempt=attempt, details=details)
            try:
                await rig.follow(
                    started, mode="poll", env=env, queued_timeout_s=0.3, poll_interval_cap_s=0.05
                )
            except ApplicationError as error:
                last = error
                if error.non_retryable:
                    break
        status = (await rig.provider.responses.retrieve(started.response_id)).status
    finally:
        await rig.provider.close()
    assert last is not None
    assert last.type == FailureType.STUCK_QUEUED
    assert status == "cancelled"


@pytest.mark.parametrize("mode", ["stream", "poll"])
async def test_result_past_retention_fails_with_result_expired_without_retrying(
    rig: Rig, mode: StreamMode
) -> None:
    started = await rig.start(stream=mode == "stream")
    rig.advance(3 + 600 + 1)  # completed at 3 s; retained for 600 s after that
    with pytest.raises(ApplicationError) as failure:
        await rig.follow(started, mode=mode)

    error = failure.value
    assert error.type == FailureType.RESULT_EXPIRED
    assert error.non_retryable is True
    assert error.details[0] == {"response_id": started.response_id}
    reads = [e for e in rig.requests(started.response_id) if e.method == "GET"]
    assert [e.status_code for e in reads] == [404]  # one look, no retry loop


# --------------------------------------------------------------------------------------- terminal states


@pytest.mark.parametrize("mode", ["stream", "poll"])
@pytest.mark.parametrize(
    ("fault", "max_output_tokens", "status", "reason", "code"),
    [
        (None, None, "completed", None, None),
        ("fail:rate_limit_exceeded", None, "failed", None, "rate_limit_exceeded"),
        ("fail:server_error", None, "failed", None, "server_error"),
        ("incomplete:max_output_tokens", None, "incomplete", "max_output_tokens", None),
        ("incomplete:content_filter", None, "incomplete", "content_filter", None),
        (None, 16, "incomplete", "max_output_tokens", None),
    ],
)
async def test_terminal_states_map_to_the_outcome(
    rig: Rig,
    mode: StreamMode,
    fault: str | None,
    max_output_tokens: int | None,
    status: str,
    reason: str | None,
    code: str | None,
) -> None:
    started = await rig.start(
        stream=mode == "stream", metadata=control(fault=fault), max_output_tokens=max_output_tokens
    )
    rig.advance(10)
    result = await rig.follow(started, mode=mode)

    final = await rig.provider.responses.retrieve(started.response_id)
    assert result.status == status == final.status
    assert result.incomplete_reason == reason
    assert result.error_code == code
    assert result.output_text == final.output_text
    assert result.usage is not None
    assert final.usage is not None
    assert result.usage.output_tokens == final.usage.output_tokens
    if status == "failed":
        assert result.output_text == ""
        assert result.error_message
    else:
        assert result.output_text
        assert result.error_message is None
    if max_output_tokens is not None:
        assert result.usage.output_tokens == max_output_tokens
    assert_no_text(rig.heartbeats, result.output_text)


# --------------------------------------------------------------------------------------- cancel


async def test_cancel_of_a_running_response_ends_cancelled_with_the_partial_output(rig: Rig) -> None:
    started = await rig.start(stream=True)
    rig.advance(1.5)  # about half of the tokens exist
    result = await rig.env().run(
        rig.activities.cancel_background_response,
        CancelBackgroundInput(tags=TAGS, response_id=started.response_id),
    )
    assert result.provider_status == "cancelled"
    assert result.outcome is not None
    assert result.outcome.status == "cancelled"
    full = await undisturbed_text(rig)
    assert result.outcome.output_text
    assert result.outcome.output_text != full
    assert full.startswith(result.outcome.output_text)

    # Following a cancelled response ends too: its stream stops without a terminal event, the look says so.
    rig.advance(10)
    followed = await rig.follow(started, mode="stream")
    assert followed.status == "cancelled"
    assert followed.output_text == result.outcome.output_text


async def test_cancel_that_loses_the_race_with_completion_keeps_the_completed_outcome() -> None:
    def racing(emulator: Emulator, clock: ManualClock | None) -> Handler:
        async def handle(request: httpx2.Request) -> httpx2.Response:
            response = await emulator.handle(request)
            if request.url.path.endswith("/cancel") and clock is not None:
                clock.advance(10)  # the generation finishes between the cancel and the re-read
            return response

        return handle

    rig = make_rig(EmulatorConfig(duration_s=3.0, queued_s=0.2), handler=racing)
    try:
        started = await rig.start(stream=False, metadata={"emulator_fault": "cancel_race"})
        rig.advance(1.5)
        result = await rig.env().run(
            rig.activities.cancel_background_response,
            CancelBackgroundInput(tags=TAGS, response_id=started.response_id),
        )
        full = await undisturbed_text(rig)
    finally:
        await rig.provider.close()
    assert [e.status_code for e in rig.requests(started.response_id) if e.path.endswith("/cancel")] == [200]
    assert result.provider_status == "completed"
    assert result.outcome is not None
    assert result.outcome.status == "completed"
    assert result.outcome.output_text == full


async def test_cancel_of_an_expired_response_reports_not_found(rig: Rig) -> None:
    started = await rig.start(stream=False)
    rig.advance(1000)
    result = await rig.env().run(
        rig.activities.cancel_background_response,
        CancelBackgroundInput(tags=TAGS, response_id=started.response_id),
    )
    assert result.provider_status == "not_found"
    assert result.outcome is None


# ------------------------------------------------------------------------------ idempotency, shutdown


@pytest.mark.parametrize("stream", [True, False])
async def test_a_retried_start_returns_the_same_response_and_generates_once(rig: Rig, stream: bool) -> None:
    env = rig.env()
    first = await rig.start(stream=stream, env=env)
    rig.advance(1)
    again = await rig.start(stream=stream, env=env)  # the same workflow and activity id: a retry

    assert again.response_id == first.response_id
    creates = rig.background_creates()
    assert len(creates) == 2
    assert creates[0].idempotency_key == creates[1].idempotency_key
    info = env.info
    assert creates[0].idempotency_key == f"lanes-{info.workflow_id}-{info.workflow_run_id}-{info.activity_id}"
    assert len(rig.generations()) == 1
    # Another job (another workflow id) is another generation.
    other = await rig.start(stream=stream)
    assert other.response_id != first.response_id
    assert len(rig.generations()) == 2


def gated_creates(
    entered: asyncio.Event, release: asyncio.Event, *, fail: bool
) -> Callable[[Emulator, Any], Handler]:
    """A handler that holds every create until ``release`` is set (telling ``entered`` when one arrives),
    then answers it normally, or with a 503 when ``fail``."""

    def make(emulator: Emulator, clock: ManualClock | None) -> Handler:
        async def handle(request: httpx2.Request) -> httpx2.Response:
            if request.method == "POST" and request.url.path == "/v1/responses":
                entered.set()
                await release.wait()
                if fail:
                    request.headers["X-Emulator-Fault"] = "http:503"
            return await emulator.handle(request)

        return handle

    return make


@pytest.mark.parametrize("fail", [False, True], ids=["reply", "failure"])
async def test_a_cancel_never_abandons_a_create_in_flight(fail: bool) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    rig = make_rig(EmulatorConfig(), handler=gated_creates(entered, release, fail=fail))
    try:
        env = rig.env(heartbeat_timeout_s=0.3)
        start = asyncio.create_task(
            env.run(rig.activities.start_background_response, start_input(stream=False))
        )
        await entered.wait()  # the create is at the provider
        env.cancel()
        for _ in range(10):
            await asyncio.sleep(0)
        assert not start.done(), "the activity waits for the reply instead of dropping the request"
        release.set()
        if fail:
            # The create failed after the cancel: the attempt reports the cancel, so none follows.
            with pytest.raises(asyncio.CancelledError):
                await start
            return
        started = await start
    finally:
        await rig.provider.close()
    # The reply arrived after the cancel: the id is returned so the workflow can cancel the response.
    assert started.response_id.startswith("resp_")
    assert len(rig.generations()) == 1


async def test_a_new_run_under_a_reused_workflow_id_generates_afresh(rig: Rig) -> None:
    # Before the run id was part of the key, the second run got the first run's response back.
    first = await rig.start(stream=False, env=rig.env(workflow_id="wf-reused", run_id="run-1"))
    second = await rig.start(stream=False, env=rig.env(workflow_id="wf-reused", run_id="run-2"))
    assert second.response_id != first.response_id
    assert len(rig.generations()) == 2


async def test_worker_shutdown_heartbeats_progress_and_fails_retryably(rig: Rig) -> None:
    started = await rig.start(stream=True, metadata=control(duration=200))
    rig.advance(100)  # about half of the tokens exist (inside the 300 s resume window)
    env = rig.env(heartbeat_timeout_s=0.3)
    follow = asyncio.create_task(rig.follow(started, mode="stream", env=env))
    await until(lambda: any(b["chars"] > 0 and b["polls"] >= 1 for b in rig.heartbeats))
    env.worker_shutdown()
    with pytest.raises(ApplicationError) as failure:
        await asyncio.wait_for(follow, timeout=30)

    error = failure.value
    assert error.type == FailureType.WORKER_SHUTDOWN
    assert error.non_retryable is False
    last = rig.heartbeats[-1]
    assert last["response_id"] == started.response_id
    assert last["provider_status"] == "in_progress"
    assert started.cursor == 0
    assert last["cursor"] > 0
    assert last["chars"] > 0
    assert last["polls"] >= 1

    # The next attempt, on another worker, resumes from that heartbeat.
    rig.advance(150)
    result = await rig.follow(started, mode="stream", env=rig.env(attempt=2, details=[last]))
    assert result.status == "completed"
    assert result.output_text == await undisturbed_text(rig)
    assert result.polls >= last["polls"]
    assert len(rig.generations()) == 1
    if last["mode"] == "stream":
        assert rig.stream_reads(started.response_id)[-1].starting_after == last["cursor"]
    assert_no_text(rig.heartbeats, result.output_text)


async def test_heartbeats_carry_progress_and_never_text(live_rig: Rig) -> None:
    rig = live_rig
    started = await rig.start(stream=True)
    result = await rig.follow(started, mode="stream", env=rig.env(heartbeat_timeout_s=0.15))

    assert result.status == "completed"
    assert len(rig.heartbeats) >= 3
    assert_no_text(rig.heartbeats, result.output_text)
    for beat in rig.heartbeats:
        assert beat["response_id"] == started.response_id
        assert beat["mode"] == "stream"
    cursors = [b["cursor"] for b in rig.heartbeats]
    chars = [b["chars"] for b in rig.heartbeats]
    assert cursors == sorted(cursors)
    assert chars == sorted(chars)
    assert chars[-1] > 0
    assert chars[-1] <= len(result.output_text)


# --------------------------------------------------------------------------------------- poll by retry


async def test_a_running_response_fails_the_check_benignly_with_the_next_poll_interval(rig: Rig) -> None:
    started = await rig.start(stream=False)
    for attempt in (1, 2, 7, 30):
        with pytest.raises(ApplicationError) as failure:
            await rig.check(started, attempt=attempt, poll_interval_cap_s=20.0)
        error = failure.value
        assert error.type == FailureType.NOT_YET
        assert error.non_retryable is False
        # Benign: not logged or traced as an error, since waiting is the normal case.
        assert error.category == ApplicationErrorCategory.BENIGN
        # The retry policy's pace is the poll schedule's: attempt n waits the interval after n polls.
        nominal = nominal_interval_s(attempt, 20.0)
        assert error.next_retry_delay is not None
        delay = error.next_retry_delay.total_seconds()
        assert nominal * (1 - JITTER) - 1e-6 <= delay <= min(nominal * (1 + JITTER), 20.0) + 1e-6
        assert PROMPT not in error.message
    # One GET per attempt, nothing else: no stream, no heartbeat state to resume.
    assert len(rig.polls(started.response_id)) == 4
    assert rig.stream_reads(started.response_id) == []
    assert rig.heartbeats == []


async def test_a_late_check_skips_the_fast_intervals_it_slept_through(rig: Rig) -> None:
    """A check that runs long after it was first scheduled (a backlog of checks on the poll queue, a
    worker restart) waits the interval an on-time schedule would have reached, not the second poll's."""
    started = await rig.start(stream=False)
    with pytest.raises(ApplicationError) as failure:
        await rig.check(started, attempt=2, scheduled_s_ago=60, poll_interval_cap_s=120.0)
    assert failure.value.type == FailureType.NOT_YET
    assert failure.value.next_retry_delay is not None
    delay = failure.value.next_retry_delay.total_seconds()
    reached = elapsed_interval_s(60, 120.0)
    assert reached > 10 * nominal_interval_s(2, 120.0)
    assert reached * (1 - JITTER) - 1e-6 <= delay <= 120.0


async def test_a_terminal_response_ends_the_check_with_its_outcome_and_poll_count(rig: Rig) -> None:
    started = await rig.start(stream=False)
    text = await undisturbed_text(rig)
    rig.advance(5)  # the response completed at 3 s
    result = await rig.check(started, attempt=9)
    assert (result.status, result.mode, result.polls, result.reconnects) == ("completed", "poll", 9, 0)
    assert result.output_text == text
    assert len(rig.polls(started.response_id)) == 1
    assert len(rig.generations()) == 1


async def test_a_check_after_the_queued_limit_cancels_and_fails_with_stuck_queued(rig: Rig) -> None:
    started = await rig.start(stream=False, metadata={"emulator_fault": "stuck_queued"})
    # Queued for less than the limit since the follower was scheduled: not yet.
    with pytest.raises(ApplicationError) as early:
        await rig.check(started, attempt=3, scheduled_s_ago=30, queued_timeout_s=60)
    assert early.value.type == FailureType.NOT_YET
    # Past the limit: the next look cancels it at the provider and gives up for good.
    with pytest.raises(ApplicationError) as failure:
        await rig.check(started, attempt=4, scheduled_s_ago=61, queued_timeout_s=60)
    assert failure.value.type == FailureType.STUCK_QUEUED
    assert failure.value.non_retryable is True
    assert (await rig.provider.responses.retrieve(started.response_id)).status == "cancelled"


async def test_a_check_past_retention_fails_with_result_expired(rig: Rig) -> None:
    started = await rig.start(stream=False)
    rig.advance(3 + 600 + 1)
    with pytest.raises(ApplicationError) as failure:
        await rig.check(started, attempt=5)
    assert failure.value.type == FailureType.RESULT_EXPIRED
    assert failure.value.non_retryable is True
