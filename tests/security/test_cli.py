"""The ``lanes`` CLI's own edges (issue 20): bounded input (item 8) and terminal escapes in its output.

Every test runs the real CLI in a subprocess. Input that is refused is refused before anything starts:
``TEMPORAL_ADDRESS`` points at a port nothing listens on, so a test that got as far as connecting would
fail with a connection error instead of the message it expects.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from temporalio.client import Client

from activities.outcome import ProviderOutcome
from lanes.cli.input_file import MAX_INPUT_BYTES
from lanes.cli.render import printable
from lanes.dev.stack import free_port
from lanes.jobs import wait_for_status
from lanes.settings import Settings
from responses_emulator import Emulator
from tests.cli_runner import ROOT, lanes
from workflows.model_task import MAX_INPUT_CHARS, ProviderFinishedInput

NO_SERVER = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}

SUBMIT = ("submit", "--job-type", "public_research", "--data-class", "public")

MEMORY_LIMIT = 1024 * 1024 * 1024
"""Address space of the CLI under test: a read to the end of /dev/zero (the old behaviour) fails fast
with MemoryError instead of taking the shared machine's memory; a bounded read fits easily."""

CAPPED_LANES = [
    sys.executable,
    "-c",
    f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT})); "
    "from lanes.cli.main import main; main()",
]


async def lanes_with(
    *args: str, stdin: int | None = None, timeout_s: float = 60, pass_fds: tuple[int, ...] = ()
) -> tuple[int, str, str]:
    """``lanes ARGS`` with stdin from a file descriptor (``/dev/zero``, a pipe), its memory capped."""
    process = await asyncio.create_subprocess_exec(
        *CAPPED_LANES,
        *args,
        stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **NO_SERVER},
        pass_fds=pass_fds,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def test_input_file_dev_zero_is_refused_past_the_hard_limit() -> None:
    code, out, err = await lanes_with(*SUBMIT, "--input-file", "/dev/zero")
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "lanes submit: --input-file: /dev/zero is a character device, not a file; "
        "give a UTF-8 text file, or '-' for stdin"
    )


async def test_stdin_from_dev_zero_is_read_only_up_to_the_hard_limit() -> None:
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        code, out, err = await lanes_with(*SUBMIT, "--input-file", "-", stdin=fd)
    finally:
        os.close(fd)
    assert (code, out) == (2, "")
    assert one_line(err) == (
        f"lanes submit: --input-file: stdin is over {MAX_INPUT_BYTES:,} bytes, more than a prompt may hold "
        f"({MAX_INPUT_CHARS:,} characters at most, whatever the policy allows); shorten it or split the job"
    )


async def test_an_endless_pipe_is_cut_off_at_the_limit() -> None:
    # `yes` writes forever into a pipe that the CLI reads as the path /dev/stdin: one byte past the
    # limit it stops reading and exits, and `yes` ends on the closed pipe.
    read_end, write_end = os.pipe()
    writer = await asyncio.create_subprocess_exec("yes", "prompt", stdout=write_end)
    os.close(write_end)
    try:
        code, out, err = await lanes_with(*SUBMIT, "--input-file", "/dev/stdin", stdin=read_end)
    finally:
        os.close(read_end)
        await asyncio.wait_for(writer.wait(), timeout=60)
    assert (code, out) == (2, "")
    assert one_line(err).startswith(
        f"lanes submit: --input-file: /dev/stdin is over {MAX_INPUT_BYTES:,} bytes"
    )


async def test_a_file_over_the_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(MAX_INPUT_BYTES + 1)  # sparse: nothing is read, the size alone refuses it
    code, _, err = await lanes_with(*SUBMIT, "--input-file", str(big))
    assert code == 2
    assert one_line(err) == (
        f"lanes submit: --input-file: {big} is over {MAX_INPUT_BYTES:,} bytes, more than a prompt may hold "
        f"({MAX_INPUT_CHARS:,} characters at most, whatever the policy allows); shorten it or split the job"
    )
    # Under the byte bound but over the character limit: named in characters.
    chars = tmp_path / "chars.txt"
    chars.write_text("x" * (MAX_INPUT_CHARS + 1))
    code, _, err = await lanes_with(*SUBMIT, "--input-file", str(chars))
    assert code == 2
    assert (
        f"--input-file: {MAX_INPUT_CHARS + 1:,} characters, over the hard limit of {MAX_INPUT_CHARS:,}"
        in (one_line(err))
    )


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    code, _, err = await lanes_with(*SUBMIT, "--input-file", str(tmp_path))
    assert code == 2
    assert one_line(err) == (
        f"lanes submit: --input-file: {tmp_path} is a directory, not a file; "
        "give a UTF-8 text file, or '-' for stdin"
    )


async def test_a_fifo_without_a_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "prompt.fifo"
    os.mkfifo(fifo)
    code, _, err = await lanes_with(*SUBMIT, "--input-file", str(fifo), timeout_s=60)
    assert code == 2
    assert one_line(err) == (
        f"lanes submit: --input-file: {fifo} is a FIFO with no writer (or its writer wrote nothing); "
        "start the writer first, or give a file"
    )


async def test_a_pipe_with_a_writer_is_read() -> None:
    # `--input-file <(command)`: the path names a pipe whose writer is connected and writes when it
    # will; the CLI waits for its end. The job type is unknown, so the CLI stops after reading, at the
    # policy check: no server is needed, and the message proves the prompt was read.
    read_end, write_end = os.pipe()
    run = asyncio.ensure_future(
        lanes_with(
            "submit",
            "--job-type",
            "no_such_type",
            "--input-file",
            f"/dev/fd/{read_end}",
            pass_fds=(read_end,),
        )
    )
    os.write(write_end, b"a prompt through a pipe")
    os.close(write_end)
    try:
        code, _, err = await run
    finally:
        os.close(read_end)
    assert code == 2
    assert "--job-type: unknown job type 'no_such_type'" in one_line(err)


async def test_a_missing_file_is_named() -> None:
    code, _, err = await lanes_with(*SUBMIT, "--input-file", "/no/such/prompt.txt")
    assert code == 2
    assert one_line(err) == (
        "lanes submit: --input-file: cannot read /no/such/prompt.txt: no such file; "
        "give a UTF-8 text file, or '-' for stdin"
    )


# --- terminal escapes (issue 20, low): what a canceller or the provider writes is shown, not obeyed ----

HOSTILE = "\x1b[2J\x1b]0;PWNED\x07\x9b31m\r"
"""Clears the screen, retitles the window, a one-byte C1 CSI, a carriage return that overwrites."""
SHOWN = "\\x1b[2J\\x1b]0;PWNED\\x07\\x9b31m\\r"


def no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert not bad, bad


async def _held_job(client: Client, settings: Settings) -> tuple[str, str]:
    """A background job whose response the emulator holds open; its workflow id and response id."""
    code, out, err = await lanes(
        *SUBMIT, "--input", "x", "--metadata", "emulator_fault=hold", env=settings.environment()
    )
    assert code == 0, err
    workflow_id = out.strip()
    status = await wait_for_status(
        client.get_workflow_handle(workflow_id), lambda s: s.response_id is not None, timeout_s=60
    )
    assert status.response_id is not None
    return workflow_id, status.response_id


@pytest.mark.long(20)
async def test_escape_sequences_from_jobs_and_the_provider_are_printed_escaped(
    client: Client, settings: Settings, worker: str, emulator: Emulator
) -> None:
    env = settings.environment()
    # A cancel reason, which anyone who may cancel a job writes.
    cancelled, response_id = await _held_job(client, settings)
    code, out, err = await lanes("cancel", cancelled, "--reason", HOSTILE, env=env)
    assert code == 0, err
    code, out, err = await lanes("result", cancelled, "--wait", env=env)
    assert code == 0, err
    no_controls(out + err)
    assert f"cancel reason     {SHOWN}\n" in out
    code, out, err = await lanes("status", cancelled, env=env)
    assert code == 0, err
    no_controls(out + err)
    assert SHOWN in out
    code, out, _ = await lanes("result", cancelled, "--json", env=env)
    assert json.loads(out)["cancellation"]["reason"] == HOSTILE  # --json stays exact
    emulator.release(response_id=response_id)

    # Output text and an error message, as the provider (or a model steered by a prompt) returns them;
    # delivered the way `lanes webhooks` delivers an outcome.
    text = f"first line\n\tindented {HOSTILE}end\r\nlast line"
    for status, fields in (
        ("completed", {"output_text": text}),
        ("failed", {"error_code": "server_error", "error_message": f"upstream said {HOSTILE}"}),
    ):
        workflow_id, response_id = await _held_job(client, settings)
        outcome = ProviderOutcome(response_id=response_id, status=status, **fields)
        await client.get_workflow_handle(workflow_id).signal(
            "provider_finished", ProviderFinishedInput(response_id=response_id, outcome=outcome)
        )
        code, out, err = await lanes("result", workflow_id, "--wait", env=env)
        no_controls(out + err)
        if status == "completed":
            assert code == 0, err
            # Newlines and tabs of the text are kept; the rest is shown as escapes.
            assert out.endswith(f"\nfirst line\n\tindented {SHOWN}end\nlast line\n"), out
        else:
            assert code == 1, err
            assert f"error             server_error: upstream said {SHOWN}\n" in err, err
        code, out, _ = await lanes("result", workflow_id, "--json", env=env)
        shown = json.loads(out)
        if status == "completed":
            assert shown["result"]["output_text"] == text  # --json stays exact
        else:
            assert shown["error_message"] == fields["error_message"]
        emulator.release(response_id=response_id)


def test_printable_escapes_every_control_but_newline_and_tab_in_text() -> None:
    every = "".join(map(chr, range(0xA0))) + "\u2028\u2029\u202e\u2066"
    shown = printable(every)
    no_controls(shown)
    assert "\n" not in shown
    assert "\t" not in shown
    text = printable(every, multiline=True)
    no_controls(text)
    assert "\n" in text
    assert "\t" in text
    assert "\\x1b" in text
    assert "\\x9b" in text
    assert "\\u202e" in text
    assert printable("plain é ü 漢字 🙂") == "plain é ü 漢字 🙂"


SEPARATORS_AND_OVERRIDES = "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def unsafe(c: str, *, multiline: bool) -> bool:
    if multiline and c in "\n\t":
        return False
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in SEPARATORS_AND_OVERRIDES


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])), st.booleans())
def test_printable_leaves_no_control_character_and_keeps_everything_else(text: str, multiline: bool) -> None:
    shown = printable(text, multiline=multiline)
    assert not [c for c in shown if unsafe(c, multiline=multiline)]
    if not any(unsafe(c, multiline=multiline) for c in text):
        assert shown == text  # text without controls passes through untouched
