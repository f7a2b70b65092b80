import logging

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from lanes.errors import TelemetryConfigError
from lanes.telemetry import PAYLOAD_LOGGERS, exporter_from_env, quiet_payload_loggers


def test_exporter_defaults_to_none_and_honours_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert exporter_from_env() is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert isinstance(exporter_from_env(), ConsoleSpanExporter)


def test_otlp_exporter_is_available_with_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    exporter = exporter_from_env()
    assert type(exporter).__name__ == "OTLPSpanExporter"


def test_unknown_exporter_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    with pytest.raises(TelemetryConfigError, match=r"OTEL_TRACES_EXPORTER='jaeger'.*otlp, console or none"):
        exporter_from_env()


def test_payload_loggers_stay_at_info_even_when_debug_is_asked() -> None:
    logging.getLogger("temporalio").setLevel(logging.DEBUG)
    quiet_payload_loggers()
    for name in PAYLOAD_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO
        assert not logging.getLogger(f"{name}.worker").isEnabledFor(logging.DEBUG)


def test_shutdown_telemetry_shuts_every_registered_provider_down_once_and_survives_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lanes.telemetry
    from lanes.telemetry import register_for_shutdown, shutdown_telemetry

    monkeypatch.setattr(lanes.telemetry, "_INSTALLED", [])  # not the session's provider

    calls: list[str] = []

    class Provider:
        def __init__(self, name: str, *, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def shutdown(self) -> None:
            calls.append(self.name)
            if self.fail:
                raise RuntimeError("collector unreachable")

    register_for_shutdown(Provider("tracer"))
    register_for_shutdown(Provider("meter", fail=True))
    shutdown_telemetry()
    shutdown_telemetry()
    assert calls == ["meter", "tracer"]


def test_the_sampler_drops_traces_that_start_with_a_query_and_keeps_queries_inside_a_trace() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from lanes.telemetry import sampler

    default = sampler()
    for name in ("QueryWorkflow:status", "HandleQuery:status"):
        assert default.should_sample(None, 1, name).decision == Decision.DROP
        assert sampler(trace_queries=True).should_sample(None, 1, name).decision == Decision.RECORD_AND_SAMPLE
    assert (
        default.should_sample(None, 1, "StartWorkflow:ModelTaskWorkflow").decision
        == Decision.RECORD_AND_SAMPLE
    )
    parent = SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    inside = trace.set_span_in_context(NonRecordingSpan(parent))
    assert default.should_sample(inside, 1, "HandleQuery:status").decision == Decision.RECORD_AND_SAMPLE
