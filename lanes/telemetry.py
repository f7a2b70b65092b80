"""OpenTelemetry setup, kept out of every other module.

Workflows and activities only use ``opentelemetry.trace`` to add spans and attributes; which provider and
exporter receive them is decided here, once per process, from the standard ``OTEL_*`` variables:

* ``OTEL_SDK_DISABLED=true`` turns tracing off.
* ``OTEL_TRACES_EXPORTER`` is ``otlp`` (needs the ``lanes[otlp]`` extra; endpoint from
  ``OTEL_EXPORTER_OTLP_ENDPOINT``), ``console``, or ``none`` (the default: spans are created, so the
  decision is still propagated, but not exported).
* ``OTEL_SERVICE_NAME`` overrides the service name.

A status query is not a job's story: a trace that would *start* with a query (``QueryWorkflow:*`` in a
client, ``HandleQuery:*`` in a worker) is dropped by :class:`QueryRootSampler`, so ``lanes status`` and a
client polling a job's phase do not fill the trace list with one-span traces. A query made inside a traced
operation stays in that trace (the sampler is parent-based), and ``LANES_TRACE_QUERIES=true`` keeps all.

The provider comes from :func:`temporalio.contrib.opentelemetry.create_tracer_provider`, which is
replay-safe: a workflow replayed on another worker does not emit its spans a second time.

Every entry point ends with ``os._exit`` (the Temporal core's threads can abort CPython's finalisation),
which skips ``atexit``: the batch processor's last spans would be lost. Entry points therefore call
:func:`end_process`, which flushes and shuts the installed providers down first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes
from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider, create_tracer_provider

from lanes.errors import TelemetryConfigError


def exporter_from_env() -> SpanExporter | None:
    """The span exporter that ``OTEL_TRACES_EXPORTER`` names, or ``None`` for ``none``.

    Raises:
        TelemetryConfigError: The exporter is unknown or its package is not installed.
    """
    name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if name in ("", "none"):
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise TelemetryConfigError(
                "OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install 'lanes[otlp]'"
            ) from exc
        return OTLPSpanExporter()
    raise TelemetryConfigError(f"OTEL_TRACES_EXPORTER={name!r} is not supported; use otlp, console or none")


def tracing_disabled() -> bool:
    """Whether ``OTEL_SDK_DISABLED`` turns OpenTelemetry off."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def traces_exported() -> bool:
    """Whether this process would send its spans anywhere (``OTEL_TRACES_EXPORTER`` is not ``none``).

    A client that exports nothing should start no trace either: the worker's ``RunWorkflow`` span would
    then be the child of a span no backend ever receives, and trace lists that show root spans only
    (Phoenix's) would not list the job at all.
    """
    name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    return not tracing_disabled() and name not in ("", "none")


QUERY_SPAN_PREFIXES = ("QueryWorkflow:", "HandleQuery:")
"""Names of the Temporal plugin's query spans: the client's call and the worker's handler."""


class QueryRootSampler(Sampler):
    """Drop a trace whose first span is a query; sample every other root span.

    Used as the root sampler of a :class:`~opentelemetry.sdk.trace.sampling.ParentBased` sampler, so it
    decides only for spans without a parent: a query inside a traced operation follows its parent, and
    the worker's ``HandleQuery`` span follows the client's decision carried in the query's headers (a
    dropped client span propagates "not sampled"). It depends on the span's name alone, so it is as
    deterministic in workflow code as the span ids are.
    """

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """See base class."""
        if name.startswith(QUERY_SPAN_PREFIXES):
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        """See base class."""
        return "QueryRootSampler"


def sampler(*, trace_queries: bool = False) -> Sampler:
    """The sampler of every lanes process: parent-based, dropping query-rooted traces unless asked not to.

    Args:
        trace_queries: Keep traces that start with a query (``LANES_TRACE_QUERIES``).
    """
    return ParentBased(ALWAYS_ON if trace_queries else QueryRootSampler())


def setup_tracing(
    service_name: str, *, processors: tuple[SpanProcessor, ...] = (), trace_queries: bool = False
) -> ReplaySafeTracerProvider | None:
    """Install the global tracer provider for this process.

    Args:
        service_name: ``service.name`` of the resource, unless ``OTEL_SERVICE_NAME`` is set.
        processors: Extra span processors, for tests that capture spans in memory.
        trace_queries: Keep traces that start with a status query (see :class:`QueryRootSampler`).

    Returns:
        The installed provider, or ``None`` when ``OTEL_SDK_DISABLED`` is true.

    Raises:
        TelemetryConfigError: The exporter named in ``OTEL_TRACES_EXPORTER`` is unknown or not installed.
    """
    if tracing_disabled():
        return None
    provider = create_tracer_provider(
        sampler=sampler(trace_queries=trace_queries), resource=service_resource(service_name)
    )
    exporter = exporter_from_env()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    with _INSTALLED_LOCK:
        _INSTALLED.append(provider)
    return provider


def service_resource(service_name: str) -> Resource:
    """The resource of this process's spans and metrics: ``service.name``, ``OTEL_SERVICE_NAME`` first."""
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})


class Shutdownable(Protocol):
    """What :func:`shutdown_telemetry` needs of a provider (tracer or meter)."""

    def shutdown(self) -> object:
        """Flush and stop exporting."""
        ...


_INSTALLED: list[Shutdownable] = []
_INSTALLED_LOCK = threading.Lock()


def register_for_shutdown(provider: Shutdownable) -> None:
    """Have :func:`shutdown_telemetry` shut ``provider`` down too (a meter provider, say)."""
    with _INSTALLED_LOCK:
        _INSTALLED.append(provider)


def shutdown_telemetry() -> None:
    """Flush and shut down every provider this process installed; safe to call more than once.

    Call it before ``os._exit`` on every exit path: a ``BatchSpanProcessor`` exports every five seconds,
    so without it the spans of the last seconds (a job that just ended) never leave the process. A
    provider that fails to shut down (an unreachable collector) is logged and skipped, never raised:
    telemetry must not change an exit code.
    """
    with _INSTALLED_LOCK:
        providers = list(reversed(_INSTALLED))
        _INSTALLED.clear()
    for provider in providers:
        try:
            provider.shutdown()
        except Exception:
            logging.getLogger(__name__).warning("telemetry shutdown failed", exc_info=True)


def end_process(code: int) -> NoReturn:
    """End an entry point's process with ``code``: telemetry exported, output flushed, no finalisation.

    The Temporal core's threads can abort CPython's finalisation (a crash after the work is done, and a
    changed exit code), so every lanes entry point leaves through ``os._exit``, which also skips
    ``atexit``: this is the one place that does what ``atexit`` would have done first.
    """
    shutdown_telemetry()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


PAYLOAD_LOGGERS = ("temporalio", "openai", "httpx2", "httpcore2", "uvicorn.access")
"""Libraries whose DEBUG records contain payloads: the Temporal SDK logs whole activity completions (with
output text) and a failed workflow's failure (with the provider's message), the OpenAI SDK logs request
options (the prompt) and the HTTP stack logs request traces. lanes never lets them log below INFO.

What they log at INFO and above holds no job text: a refused payload is reported without its values
(``lanes/plugin.py``), and a provider error's string form leaves out the provider's message
(``activities/errors.py``); ``tests/security/test_logs.py`` runs every lane at DEBUG to hold it so."""


def configure_logging(level: int | str = logging.INFO) -> None:
    """Configure process logging so that no prompt or output text can reach a log, whatever ``level``.

    Called once by an entry point (``worker.py``, ``lanes webhooks``), which owns the process's logging:
    handlers installed before it are replaced, so lanes' level and format apply. The OpenAI SDK installs
    one at import when ``OPENAI_LOG`` is set, and without ``force`` it silently kept ``LANES_LOG_LEVEL``
    from taking effect.

    Args:
        level: The root level, e.g. from ``LANES_LOG_LEVEL``. DEBUG applies to lanes' own modules; the
            payload-logging libraries in :data:`PAYLOAD_LOGGERS` stay at INFO or above, even if they set
            their own level lower (``OPENAI_LOG=debug`` does).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger().setLevel(level)
    quiet_payload_loggers()


def quiet_payload_loggers() -> None:
    """Raise the libraries of :data:`PAYLOAD_LOGGERS` to at least INFO."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (0) inherits the root's level, which may be DEBUG
            logger.setLevel(logging.INFO)
