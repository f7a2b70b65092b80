import logging
import os
from pathlib import Path

import pytest

from policy import PolicyFileError, PolicySource, default_policy_path, load_policy

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
    (record,) = caplog.records  # warned once per broken version, not on every call
    assert record.levelno == logging.WARNING
    assert "invalid (1 errors)" in record.getMessage()
    assert good.digest in record.getMessage()
    assert "do-not-log-this-value" not in caplog.text
    _write(path, DEFAULT.replace("zdr_only = false", "zdr_only = true"), tick=3)
    assert source.current().document.organisation.zdr_only is True


def test_keeps_serving_when_the_file_disappears(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "policy.toml"
    _write(path, DEFAULT, tick=1)
    source = PolicySource(path)
    good = source.current()
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="lanes.policy"):
        assert source.current() is good
    assert "cannot be read" in caplog.text


def test_first_load_failure_raises(tmp_path: Path):
    with pytest.raises(PolicyFileError, match="cannot read policy file"):
        PolicySource(tmp_path / "missing.toml").current()
    path = tmp_path / "bad.toml"
    path.write_text("policy_version = ")
    with pytest.raises(PolicyFileError, match="invalid TOML"):
        PolicySource(path).current()
