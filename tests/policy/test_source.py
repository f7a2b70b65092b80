import logging
import os
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from pydantic import ValidationError

from policy import (
    Lane,
    PolicyFileError,
    PolicyQuery,
    PolicySource,
    PolicySourceStatus,
    default_policy_path,
    evaluate,
    load_policy,
)
from policy.source import KILL_SWITCH_ENV

DEFAULT = default_policy_path().read_text()


def _write(path: Path, text: str, *, tick: int) -> None:
    path.write_text(text)
    # Filesystems with coarse mtimes could hide a rewrite within the same tick; force a distinct one.
    os.utime(path, ns=(tick * 10**9, tick * 10**9))


def test_default_source_serves_the_shipped_policy():
    source = PolicySource()
    assert source.path == str(default_policy_path())
    assert source.current().digest == load_policy().digest


def test_loads_once_and_reloads_when_the_file_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "policy.toml"
    _write(path, DEFAULT, tick=1)
    source = PolicySource(path)
    first = source.current()
    assert source.current() is first  # unchanged file: no reparse
    _write(path, DEFAULT.replace("background_enabled = true", "background_enabled = false"), tick=2)
    with caplog.at_level(logging.INFO, logger="lanes.policy"):
        second = source.current()
    assert second is not first
    assert second.document.organisation.background_enabled is False
    assert second.digest != first.digest
    assert "reloaded" in caplog.text


def test_keeps_the_last_good_policy_when_the_file_breaks(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "policy.toml"
    _write(path, DEFAULT, tick=1)
    source = PolicySource(str(path))
    good = source.current()
    secret = "zdr_only = 'do-not-log-this-value'"
    _write(path, DEFAULT.replace("zdr_only = false", secret), tick=2)
    with caplog.at_level(logging.WARNING, logger="lanes.policy"):
        assert source.current() is good
        assert source.current() is good
    # Loud once: one ERROR for this version of the file (not one per decision), naming file and key path.
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    message = caplog.records[-1].getMessage()
    assert f"policy file {path} is refused since " in message
    assert "(1 error: organisation.zdr_only)" in message
    assert good.digest in message
    assert "do-not-log-this-value" not in caplog.text
    status = source.status()
    assert (status.version, status.digest, status.refused_error) == (
        good.version,
        good.digest,
        "1 error: organisation.zdr_only",
    )
    assert status.refused_since is not None
    since = status.refused_since
    caplog.clear()
    _write(path, DEFAULT.replace("zdr_only = false", "zdr_only = 'still-broken'"), tick=3)
    with caplog.at_level(logging.WARNING, logger="lanes.policy"):
        source.current()
        source.current()
    assert [r.levelno for r in caplog.records] == [logging.ERROR]  # changed again: reported again, once
    assert source.status().refused_since == since  # refused since the first broken version
    _write(path, DEFAULT.replace("zdr_only = false", "zdr_only = true"), tick=4)
    caplog.clear()
    assert source.current().document.organisation.zdr_only is True
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (source.status().refused_error, source.status().refused_since) == (None, None)


def test_keeps_serving_when_the_file_disappears(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "policy.toml"
    _write(path, DEFAULT, tick=1)
    source = PolicySource(path)
    good = source.current()
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="lanes.policy"):
        assert source.current() is good
    assert "cannot read policy file" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR
    assert source.status().refused_error is not None


def test_first_load_failure_raises(tmp_path: Path):
    with pytest.raises(PolicyFileError, match="cannot read policy file"):
        PolicySource(tmp_path / "missing.toml").current()
    path = tmp_path / "bad.toml"
    path.write_text("policy_version = ")
    with pytest.raises(PolicyFileError, match="invalid TOML"):
        PolicySource(path).current()


def test_status_before_the_first_load(tmp_path: Path):
    status = PolicySource(tmp_path / "p.toml").status()
    assert status == PolicySourceStatus(
        path=str(tmp_path / "p.toml"),
        version=None,
        digest=None,
        refused_error=None,
        refused_since=None,
        kill_switch=None,
    )
    with pytest.raises(ValidationError):
        status.version = "x"  # type: ignore[misc]


def test_refused_decisions_are_counted(tmp_path: Path):
    reader = InMemoryMetricReader()
    path = tmp_path / "policy.toml"
    _write(path, DEFAULT, tick=1)
    source = PolicySource(path, meter_provider=MeterProvider(metric_readers=[reader]))
    source.current()
    _write(path, "policy_version = \n", tick=2)
    for _ in range(3):
        source.current()
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert metric.name == "lanes.policy.refused_decisions"
    (point,) = metric.data.data_points
    assert isinstance(point, NumberDataPoint)
    assert point.value == 3
    assert point.attributes == {"lanes.policy.file": str(path)}


BROKEN = DEFAULT.replace("background_enabled = true", "background_enabled = flase")


@pytest.mark.parametrize("how", ["env-false", "env-typo", "sentinel"])
def test_the_kill_switch_outside_the_file_beats_a_broken_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
):
    monkeypatch.delenv(KILL_SWITCH_ENV, raising=False)
    path = tmp_path / "policy.toml"
    _write(path, DEFAULT, tick=1)
    source = PolicySource(path)
    query = PolicyQuery(job_type="public_research", data_class="public")
    good = source.current()
    assert evaluate(good, query).lane is Lane.BACKGROUND
    # The operator's edit to switch background off is broken: the last good policy (background on) stays.
    _write(path, BROKEN, tick=2)
    assert evaluate(source.current(), query).lane is Lane.BACKGROUND
    if how == "sentinel":
        Path(source.kill_switch_file).touch()
        origin = f"file {tmp_path / 'policy.toml.background-disabled'}"
    else:
        value = "false" if how == "env-false" else "flase"
        monkeypatch.setenv(KILL_SWITCH_ENV, value)
        origin = f"environment LANES_BACKGROUND_ENABLED={value!r}"
    policy = source.current()
    assert source.current() is policy  # no recompiling per call
    assert (policy.digest, policy.background_off) == (good.digest, origin)
    d = evaluate(policy, query)
    assert (d.lane, d.rule) == (Lane.STATELESS, "stateless.kill-switch-override")
    assert d.reasons[-1] == f"The background lane is switched off by the emergency kill switch ({origin})."
    assert evaluate(policy, PolicyQuery(job_type="coding_analysis")).rule == "denied.fallback-deny"
    assert source.status().kill_switch == origin
    # Off again: the policy in force decides as before.
    monkeypatch.setenv(KILL_SWITCH_ENV, "true")
    Path(source.kill_switch_file).unlink(missing_ok=True)
    assert source.current() is good
    assert source.status().kill_switch is None


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "on", "", " true "])
def test_kill_switch_env_values_that_leave_background_on(monkeypatch: pytest.MonkeyPatch, value: str):
    monkeypatch.setenv(KILL_SWITCH_ENV, value)
    source = PolicySource()
    assert source.current().background_off is None
