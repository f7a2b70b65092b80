"""The README's session and its client-code snippet, run as written beside a real ``lanes dev``.

The stack runs in a fresh directory on free ports (:mod:`tests.dev_session`: the README's ports may be
taken on a shared machine); the shell session's commands and the snippet then run in that directory with
no ``TEMPORAL_*``, ``LANES_*`` or ``OPENAI_*`` variable set: they find the stack through
``.lanes/dev/env``, as a newcomer's second shell does.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

import httpx2
import pytest

from lanes.dev_env import env_file, read_dev_env
from tests.dev_session import LANES, clean_env, dev_stack, run

README = Path(__file__).resolve().parents[1] / "README.md"

__all__ = ["dev_stack"]  # the fixture, shared with other tests of a real `lanes dev`


def _block(after_heading: str, language: str) -> str:
    text = README.read_text()
    start = text.index(after_heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no ```{language} block after {after_heading!r}"
    return match.group(1)


@pytest.mark.long(40)
async def test_the_readme_session_and_snippet_run_as_written(dev_stack: Path) -> None:
    session = _block("A session with the embedded stack", "").splitlines()
    commands = [line.split("  #")[0].strip() for line in session if line.strip()]
    assert commands[:2] == ["source .venv/bin/activate", "lanes dev &"]  # the fixture's part
    for line in commands[2:]:
        words = shlex.split(line)
        assert words[0] == "lanes"
        code, out, err = await run([*LANES, *words[1:]], dev_stack)
        assert code == 0, f"{line}\n{err}"
        assert "Traceback" not in err
    (dev_stack / "survey.py").write_text(_block("### From client code", "python"))
    code, out, err = await run([sys.executable, "survey.py"], dev_stack)
    assert code == 0, err
    first, second = out.strip().splitlines()
    assert re.fullmatch(r"lanes-public_research-[0-9a-f]{12} background", first)
    assert second == "cancelled running", out  # cancelled mid-job, while the provider worked on it
    # Run again: a fresh id each time, never JobIdInUseError.
    code, out, err = await run([sys.executable, "survey.py"], dev_stack)
    assert code == 0, err
    assert out.split()[0] != first.split()[0]


@pytest.mark.long(20)
async def test_a_shell_without_the_key_gets_one_line_and_the_ui_origin_is_allowed(dev_stack: Path) -> None:
    code, job_id, err = await run(
        [*LANES, "submit", "--job-type", "public_research", "--input", "hi"], dev_stack
    )
    assert code == 0, err
    # Another directory, the address exported and nothing else: the payloads cannot be read here.
    elsewhere = dev_stack / "elsewhere"
    elsewhere.mkdir()
    address = read_dev_env(env_file(dev_stack / ".lanes/dev"))["TEMPORAL_ADDRESS"]
    for command in (["status"], ["result", "--wait"]):
        process = await asyncio.create_subprocess_exec(
            *LANES, *command, job_id.strip(),
            cwd=elsewhere, env={**clean_env(), "TEMPORAL_ADDRESS": address},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, raw_err = await asyncio.wait_for(process.communicate(), 60)
        err = raw_err.decode()
        assert process.returncode == 2, err
        assert err.count("\n") == 1, err
        assert "Traceback" not in err
        assert "LANES_ENCRYPTION_KEY_FILE" in err
    banner = (dev_stack / "lanes-dev.out").read_text()
    match = re.search(r"^codec\s+(http://127\.0\.0\.1:\d+)", banner, re.M)
    assert match is not None, banner
    async with httpx2.AsyncClient(timeout=10) as http:
        for origin in ("http://127.0.0.1:8233", "http://localhost:8233"):
            reply = await http.options(
                f"{match.group(1)}/decode",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
            assert reply.headers.get("access-control-allow-origin") == origin, (origin, reply.status_code)
