"""The worker's metrics pipeline: one OpenTelemetry ``MeterProvider`` for lanes' metrics and Temporal's.

    pipeline = setup_metrics("lanes-worker", settings)   # before the first Temporal client
    async with pipeline.temporal_metrics():             # drains Temporal's SDK metrics into it
        ...                                             # shutdown_telemetry() exports the last values

Why one OpenTelemetry pipeline rather than Temporal's own ``PrometheusConfig`` or ``OpenTelemetryConfig``:
the Temporal core takes *one* of those, serves only its own metrics there, and cannot print to a console;
an OpenTelemetry ``MeterProvider`` takes several readers at once. So Temporal's core writes into a
:class:`~temporalio.runtime.MetricBuffer` that :class:`~temporalio.contrib.opentelemetry.MetricsExporter`
drains into the same provider as lanes' instruments (``lanes/worker/job_metrics.py``), and the readers are:

* ``OTEL_METRICS_EXPORTER``: ``otlp`` (OTLP/HTTP, the ``lanes[otlp]`` extra, endpoint from
  ``OTEL_EXPORTER_OTLP_ENDPOINT``, every ``OTEL_METRIC_EXPORT_INTERVAL`` ms), ``console``, or ``none``
  (the default, as for traces).
* ``LANES_PROMETHEUS_BIND=host:port``: a Prometheus scrape endpoint (``/metrics``), the convention
  Temporal operators expect (the ``lanes[prometheus]`` extra), served by lanes' bounded uvicorn runner on
  a thread of its own (:class:`PrometheusEndpoint`).

The provider is wrapped in :class:`~temporalio.contrib.opentelemetry.ReplaySafeMeterProvider`, so a
count recorded in workflow code (a job's end) is not recorded again when the workflow is replayed.
``OTEL_SDK_DISABLED=true`` turns metrics off as it turns tracing off. Labels are policy vocabulary,
endpoints and statuses only: never prompt or output text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from temporalio.contrib.opentelemetry import MetricsExporter, ReplaySafeMeterProvider
from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

from lanes.errors import TelemetryConfigError
from lanes.settings import Settings
from lanes.telemetry import register_for_shutdown, service_resource, tracing_disabled

if TYPE_CHECKING:
    from lanes.servers.uvicorn_server import ServerLimits

logger = logging.getLogger(__name__)

TEMPORAL_BUFFER_SIZE = 10_000
"""Updates the Temporal core may buffer between two drains (one a second) before it drops some."""


def readers_from_env() -> list[MetricReader]:
    """The periodic reader that ``OTEL_METRICS_EXPORTER`` names, if any.

    Raises:
        TelemetryConfigError: The exporter is unknown or its package is not installed.
    """
    name = os.environ.get("OTEL_METRICS_EXPORTER", "none").strip().lower()
    if name in ("", "none"):
        return []
    if name == "console":
        return [PeriodicExportingMetricReader(ConsoleMetricExporter())]
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        except ImportError as exc:
            raise TelemetryConfigError(
                "OTEL_METRICS_EXPORTER=otlp needs the OTLP exporter: pip install 'lanes[otlp]'"
            ) from exc
        return [PeriodicExportingMetricReader(OTLPMetricExporter())]
    raise TelemetryConfigError(
        f"OTEL_METRICS_EXPORTER={name!r} is not supported; use otlp, console or none (for a Prometheus "
        "scrape endpoint, set LANES_PROMETHEUS_BIND=host:port instead)"
    )


def prometheus_reader(bind: str, *, limits: ServerLimits | None = None) -> MetricReader:
    """A reader whose metrics :class:`PrometheusEndpoint` serves at ``bind`` (``host:port``) as ``/metrics``.

    The socket is bound here, so a busy address is a configuration error at start. ``limits`` bound the
    endpoint's clients (:data:`lanes.servers.uvicorn_server.DEFAULT_LIMITS` by default).

    Raises:
        TelemetryConfigError: The ``lanes[prometheus]`` extra is missing, or the address is in use.
    """
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import make_asgi_app
        from starlette.applications import Starlette
        from starlette.routing import Route

        from lanes.servers.uvicorn_server import DEFAULT_LIMITS
        from lanes.servers.uvicorn_server import bind as bind_socket
    except ImportError as exc:
        raise TelemetryConfigError(
            "LANES_PROMETHEUS_BIND needs the Prometheus exporter: pip install 'lanes[prometheus]'"
        ) from exc
    host, _, port = bind.rpartition(":")
    try:
        sock = bind_socket(host.strip("[]"), int(port))
    except OSError as exc:
        raise TelemetryConfigError(
            f"LANES_PROMETHEUS_BIND={bind}: cannot serve metrics there ({exc.strerror or exc}); "
            "choose a free port"
        ) from None
    reader = PrometheusMetricReader()
    app = Starlette(routes=[Route("/metrics", _ASGIEndpoint(make_asgi_app()), methods=["GET"])])
    endpoint = PrometheusEndpoint(app, sock, limits=limits or DEFAULT_LIMITS)
    endpoint.start()
    register_for_shutdown(endpoint)
    return reader


class _ASGIEndpoint:
    """An ASGI app as a Starlette route's endpoint (a plain function would be taken for a request handler)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class PrometheusEndpoint:
    """Serves the scrape endpoint through lanes' bounded uvicorn runner, in a daemon thread with its own loop.

    ``prometheus_client.start_http_server`` (what this replaces) started a thread per connection with no
    read timeout, so slow clients could pile up threads. The runner bounds them like every lanes server
    (:class:`lanes.servers.uvicorn_server.ServerLimits`). It runs on a thread of its own, not on the worker's
    event loop, because :func:`setup_metrics` is synchronous (it must run before the first Temporal client,
    and a busy address must fail the start there), and because a scrape renders every series in Python: on
    the worker's loop it would delay workflow and activity tasks, and a loaded worker would delay scrapes.

    Args:
        app: The ASGI app serving ``/metrics``.
        sock: A bound, listening socket (closed when the endpoint stops).
        limits: Bounds on its clients.
    """

    def __init__(self, app: Any, sock: socket.socket, *, limits: ServerLimits) -> None:
        self._app = app
        self._limits = limits
        self._socket = sock
        self._server: Any = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lanes-prometheus", daemon=True)

    def start(self) -> None:
        """Start serving; return once the endpoint accepts connections (or its thread failed)."""
        self._thread.start()
        self._started.wait(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception:
            logger.exception("the Prometheus endpoint stopped")
        finally:
            self._started.set()

    async def _serve(self) -> None:
        from lanes.servers.uvicorn_server import UvicornServer

        sock = self._socket

        class Server(UvicornServer):
            def _listen(self) -> socket.socket:
                return sock

        async with Server(self._app, limits=self._limits) as server:
            self._server = server
            self._started.set()
            await server.wait()

    def shutdown(self) -> None:
        """Stop serving and close the socket (:func:`lanes.telemetry.shutdown_telemetry` calls it)."""
        if self._server is not None:
            self._server.request_stop()
        self._thread.join(timeout=5)


@dataclass
class MetricsPipeline:
    """The installed meter provider, and the buffer through which Temporal's core writes into it."""

    provider: MeterProvider
    temporal_buffer: MetricBuffer
    prometheus_bind: str | None = None

    @contextlib.asynccontextmanager
    async def temporal_metrics(self) -> AsyncIterator[None]:
        """Drain Temporal's SDK metrics into the provider while the block runs (and once more at its end)."""
        async with MetricsExporter(self.temporal_buffer, self.provider, meter_name="temporalio"):
            yield


def setup_metrics(service_name: str, settings: Settings) -> MetricsPipeline | None:
    """Install the global meter provider and make Temporal's core record into it.

    Call it before the process creates its first Temporal client: the core's metrics go to the
    default :class:`~temporalio.runtime.Runtime`, which this sets.

    Args:
        service_name: ``service.name`` of the resource, unless ``OTEL_SERVICE_NAME`` is set.
        settings: ``prometheus_bind`` (``LANES_PROMETHEUS_BIND``).

    Returns:
        The pipeline, or ``None`` when no reader is configured (or ``OTEL_SDK_DISABLED`` is true):
        instruments then stay no-ops and Temporal's core keeps its default runtime.

    Raises:
        TelemetryConfigError: An exporter is unknown or not installed, or the scrape address is in use.
    """
    if tracing_disabled():
        return None
    readers = readers_from_env()
    if settings.prometheus_bind is not None:
        readers.append(prometheus_reader(settings.prometheus_bind))
    if not readers:
        return None
    provider = MeterProvider(metric_readers=readers, resource=service_resource(service_name))
    metrics.set_meter_provider(ReplaySafeMeterProvider(provider))
    register_for_shutdown(provider)
    buffer = MetricBuffer(TEMPORAL_BUFFER_SIZE, duration_format=MetricBufferDurationFormat.SECONDS)
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(metrics=buffer)), error_if_already_set=False)
    return MetricsPipeline(
        provider=provider, temporal_buffer=buffer, prometheus_bind=settings.prometheus_bind
    )
