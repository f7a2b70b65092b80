"""Helpers for tests that drive the emulator with the real ``openai`` SDK.

They live in the package (not in a test module) because tests run with ``--import-mode=importlib``
and cannot import one another; lanes' own integration tests use them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from typing import Protocol

import httpx2
import openai
from openai.types.responses import Response, ResponseStreamEvent, ResponseTextDeltaEvent

from responses_emulator.emulator import Emulator


class Served(Protocol):
    """Anything serving the emulator over HTTP (``lanes.dev.emulator_server.EmulatorServer``).

    A protocol rather than the class: the emulator package imports nothing of lanes.
    """

    @property
    def base_url(self) -> str:
        """The SDK's ``base_url`` for the served emulator, ending in ``/v1``."""
        ...


TERMINAL_STATUSES = frozenset({"completed", "failed", "incomplete", "cancelled"})
"""Statuses a poller stops at."""


def in_process_client(emulator: Emulator, *, max_retries: int = 0) -> openai.AsyncOpenAI:
    """Return an SDK client whose transport calls ``emulator.handle`` directly (no socket).

    Returns:
        The client; close it with ``await client.close()``.
    """
    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(emulator.handle))
    return openai.AsyncOpenAI(
        api_key="emulator",
        base_url="http://emulator.local/v1",
        http_client=http_client,
        max_retries=max_retries,
    )


def served_client(server: Served, *, max_retries: int = 0, timeout: float = 30.0) -> openai.AsyncOpenAI:
    """Return an SDK client talking to a served emulator over loopback HTTP.

    Returns:
        The client; close it with ``await client.close()``.
    """
    return openai.AsyncOpenAI(
        api_key="emulator", base_url=server.base_url, max_retries=max_retries, timeout=timeout
    )


def control(
    *, fault: str | None = None, duration: float | None = None, tokens: int | None = None
) -> dict[str, str]:
    """Build the ``metadata`` entries that steer one response (merge them into your own metadata).

    Returns:
        Metadata with ``emulator_fault``, ``emulator_duration`` and ``emulator_tokens`` as given.
    """
    metadata: dict[str, str] = {}
    if fault is not None:
        metadata["emulator_fault"] = fault
    if duration is not None:
        metadata["emulator_duration"] = repr(float(duration))
    if tokens is not None:
        metadata["emulator_tokens"] = str(tokens)
    return metadata


async def collect(stream: AsyncIterable[ResponseStreamEvent]) -> list[ResponseStreamEvent]:
    """Read a stream to its end.

    Returns:
        Every event, in order.
    """
    return [event async for event in stream]


def delta_text(events: list[ResponseStreamEvent]) -> str:
    """Return the concatenated ``response.output_text.delta`` payloads of ``events``."""
    return "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))


async def wait_for_terminal(
    client: openai.AsyncOpenAI, response_id: str, *, timeout_s: float = 30.0, interval_s: float = 0.05
) -> Response:
    """Poll ``retrieve`` until the response is terminal, as lanes' pollers do.

    Returns:
        The terminal response.

    Raises:
        TimeoutError: If it is still queued or in progress after ``timeout_s`` real seconds.
    """
    async with asyncio.timeout(timeout_s):
        while True:
            response = await client.responses.retrieve(response_id)
            if response.status in TERMINAL_STATUSES:
                return response
            await asyncio.sleep(interval_s)


def response_of(event: ResponseStreamEvent) -> Response:
    """Return the ``Response`` a lifecycle event carries (created, queued, in_progress, terminal).

    Raises:
        TypeError: If the event carries no response (a delta, a done event, ...).
    """
    response = getattr(event, "response", None)
    if not isinstance(response, Response):
        raise TypeError(f"{event.type} carries no response")
    return response


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 30.0, interval_s: float = 0.01
) -> None:
    """Wait until ``predicate()`` is true, e.g. ``lambda: emulator.held_create_replies == 3``.

    Tests wait on observed emulator state rather than sleeping a guessed duration, so they neither
    flake on a slow machine nor waste time on a fast one.

    Raises:
        TimeoutError: If it is still false after ``timeout_s`` real seconds.
    """
    async with asyncio.timeout(timeout_s):
        # Polling, not an Event: the predicate reads state (counters, other processes) that signals nothing.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(interval_s)
