"""The metrics pipeline's configuration and the labels of provider requests, without a server."""

from __future__ import annotations

import httpx2
import pytest
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from pydantic import ValidationError

from lanes.errors import TelemetryConfigError
from lanes.provider_metrics import endpoint
from lanes.settings import Settings
from lanes.worker.metrics import readers_from_env


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("POST", "http://127.0.0.1:8788/v1/responses", "POST /v1/responses"),
        ("GET", "https://api.openai.com/v1/responses/resp_68af1c2e?stream=true&starting_after=7",
         "GET /v1/responses/{id}"),
        ("POST", "http://h/v1/responses/resp_1/cancel", "POST /v1/responses/{id}/cancel"),
        ("DELETE", "http://h/v1/responses/resp_1", "DELETE /v1/responses/{id}"),
    ],
)  # fmt: skip
def test_an_endpoint_label_names_the_route_never_an_id_or_query(method: str, url: str, expected: str) -> None:
    assert endpoint(httpx2.Request(method, url)) == expected


def test_metrics_exporter_defaults_to_none_and_names_the_variable_when_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
    assert readers_from_env() == []
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    [reader] = readers_from_env()
    assert isinstance(reader, PeriodicExportingMetricReader)
    reader.shutdown()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    with pytest.raises(
        TelemetryConfigError, match=r"OTEL_METRICS_EXPORTER='prometheus'.*LANES_PROMETHEUS_BIND"
    ):
        readers_from_env()


@pytest.mark.parametrize("bind", ["9464", "localhost", "127.0.0.1:", "127.0.0.1:99999", ":9464"])
def test_a_bad_prometheus_bind_names_the_variable_and_an_example(bind: str) -> None:
    with pytest.raises(
        ValidationError, match=r"LANES_PROMETHEUS_BIND=.*expected HOST:PORT.*127\.0\.0\.1:9464"
    ):
        Settings(prometheus_bind=bind)


def test_a_prometheus_bind_may_be_any_interface() -> None:
    assert Settings(prometheus_bind="0.0.0.0:9464").prometheus_bind == "0.0.0.0:9464"
    assert Settings(prometheus_bind="[::1]:9464").prometheus_bind == "[::1]:9464"
