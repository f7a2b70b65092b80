"""Item 5 of issue 20: a policy reload that raised anything but the loader's own errors took every
decision down (a 5,000-deep nested array: ``RecursionError`` in every ``evaluate_policy``).

``PolicySource`` notices a change by the file's mtime, size and inode: each swap below sets a distinct
mtime (``os.utime``), so the next ``current()`` reloads, with no sleep. The CLI half runs the real
``lanes`` in a subprocess.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from policy import Lane, PolicyFileError, PolicyQuery, PolicySource, default_policy_path, evaluate
from policy.loading import MAX_POLICY_BYTES, load_policy
from tests.cli_runner import lanes

GOOD = default_policy_path().read_text()
DEEP = GOOD + "\nnested = " + "[" * 5000 + "]" * 5000 + "\n"
"""A valid policy with one 5,000-deep array appended: the TOML parser recurses once per level."""

QUERY = PolicyQuery(job_type="public_research", data_class="public")


def swap(path: Path, text: str, *, tick: int) -> None:
    """Replace the file's content and give it a distinct mtime, as an operator's edit does."""
    path.write_text(text)
    os.utime(path, ns=(tick * 10**9, tick * 10**9))


def test_a_deep_nesting_reload_keeps_the_last_good_policy_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.toml"
    swap(path, GOOD, tick=1)
    source = PolicySource(path)
    good = source.current()
    swap(path, DEEP, tick=2)
    with caplog.at_level(logging.INFO, logger="lanes.policy"):
        for _ in range(50):  # fifty decisions
            policy = source.current()
            assert policy is good
            assert evaluate(policy, QUERY).lane is Lane.BACKGROUND
    (record,) = caplog.records  # once, not once per decision
    assert record.levelno == logging.ERROR
    assert record.exc_info is None  # one line, no traceback
    message = record.getMessage()
    assert f"policy file {path} is refused since " in message
    assert "invalid TOML: arrays or inline tables nested too deeply for the parser" in message
    assert good.digest in message
    status = source.status()
    assert status.digest == good.digest
    assert status.refused_error == (
        "1 error: invalid TOML: arrays or inline tables nested too deeply for the parser"
    )
    # Changed again (still broken): reported again, once.
    caplog.clear()
    swap(path, DEEP.replace("nested", "nested_again"), tick=3)
    with caplog.at_level(logging.INFO, logger="lanes.policy"):
        source.current()
        source.current()
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    # Fixed: accepted again, the refusal cleared.
    swap(path, GOOD.replace("background_enabled = true", "background_enabled = false"), tick=4)
    assert evaluate(source.current(), QUERY).lane is Lane.STATELESS
    assert source.status().refused_error is None


def test_a_first_load_that_fails_still_refuses_to_decide(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    swap(path, DEEP, tick=1)
    with pytest.raises(PolicyFileError, match="nested too deeply"):
        PolicySource(path).current()


def test_a_policy_over_the_size_bound_or_not_a_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    swap(big, GOOD + "#" * MAX_POLICY_BYTES + "\n", tick=1)
    with pytest.raises(PolicyFileError, match="the policy file is over 1024 KiB"):
        load_policy(big)
    fifo = tmp_path / "policy.fifo"
    os.mkfifo(fifo)  # no writer: an open that blocked would hang the worker's every reload
    with pytest.raises(PolicyFileError, match=r"not a regular file"):
        load_policy(fifo)
    # A reload that finds either keeps the last good policy.
    path = tmp_path / "policy.toml"
    swap(path, GOOD, tick=1)
    source = PolicySource(path)
    good = source.current()
    swap(path, GOOD + "#" * MAX_POLICY_BYTES + "\n", tick=2)
    assert source.current() is good
    refused = source.status().refused_error
    assert refused == (
        "1 error: the policy file is over 1024 KiB, the most a policy may be (a policy is a few KB)"
    )


@pytest.mark.parametrize("command", ["check", "status", "submit"])
async def test_the_cli_reports_a_deep_policy_as_invalid_in_one_line(tmp_path: Path, command: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(DEEP)
    args = {
        "check": ("policy", "check", str(path)),
        "status": ("policy", "status", "--policy", str(path)),
        "submit": ("submit", "--job-type", "public_research", "--input", "x"),
    }[command]
    code, out, err = await lanes(*args, env={"LANES_POLICY": str(path)})
    assert code == 1, err
    assert out == ""
    (line,) = err.splitlines()
    assert "nested too deeply for the parser" in line
    assert str(path) in line
