"""``lanes doctor`` against real parts: the session's Temporal and emulator, real workers and codec servers,
a real ``lanes dev``; every failure is made for real (a port nothing listens on, a queue no worker polls)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from lanes.codec import new_key_entry
from lanes.dev.emulator_server import EmulatorServer
from lanes.dev.stack import free_port
from lanes.dev_env import env_file, read_dev_env
from lanes.doctor import (
    CODEC_SERVER,
    ENCRYPTION,
    PROVIDER,
    SEARCH_ATTRIBUTES,
    STATELESS_WORKER,
    TEMPORAL,
    WORKER,
    DoctorCheck,
    run_checks,
)
from lanes.servers.codec_server import CodecServer, codec_app
from lanes.settings import Settings
from responses_emulator import Emulator, EmulatorConfig
from tests.cli_runner import lanes
from tests.dev_session import dev_stack

__all__ = ["dev_stack"]  # the fixture: a real `lanes dev` in a fresh directory, found by its env file

LANES = [sys.executable, "-m", "lanes"]


def by_name(checks: list[DoctorCheck]) -> dict[str, DoctorCheck]:
    return {check.name: check for check in checks}


async def checks_once_the_worker_polls(settings: Settings) -> list[DoctorCheck]:
    """Doctor's checks once the worker's first polls have reached the server (observed, never assumed)."""
    async with asyncio.timeout(60):
        while True:
            checks = await run_checks(settings)
            if by_name(checks)[WORKER].ok:
                return checks
            await asyncio.sleep(0.2)


@pytest.fixture
async def codec_server(settings: Settings) -> AsyncIterator[CodecServer]:
    """A real codec server with the test's keys, allowing the default UI origins (both loopback names)."""
    async with CodecServer(codec_app(settings)) as running:
        yield running


async def test_every_check_passes_against_the_stack_a_worker_and_a_codec_server(
    settings: Settings, worker: str, codec_server: CodecServer
) -> None:
    checks = await checks_once_the_worker_polls(settings.model_copy(update={"codec_url": codec_server.url}))
    assert [check.name for check in checks] == [
        TEMPORAL, SEARCH_ATTRIBUTES, WORKER, PROVIDER, f"{PROVIDER} openai-zdr", ENCRYPTION, CODEC_SERVER,
    ]  # fmt: skip
    assert all(check.ok and not check.skipped and check.fix is None for check in checks), checks
    rows = by_name(checks)
    assert settings.temporal_address is not None
    assert settings.temporal_address in rows[TEMPORAL].detail
    assert worker in rows[WORKER].detail
    assert "http://127.0.0.1:8233" in rows[CODEC_SERVER].detail
    assert "http://localhost:8233" in rows[CODEC_SERVER].detail


async def test_without_a_codec_server_the_codec_check_is_skipped_and_passes(settings: Settings) -> None:
    row = by_name(await run_checks(settings))[CODEC_SERVER]
    assert row.ok
    assert row.skipped
    assert row.detail == "skipped: no codec server configured (LANES_CODEC_URL)"


async def test_no_worker_on_the_queues_fails_the_worker_checks_with_the_queue_to_serve(
    settings: Settings,
) -> None:
    # No worker fixture: nothing polls this test's fresh queues.
    stateless = f"{settings.task_queue}-stateless"
    checks = by_name(await run_checks(settings.model_copy(update={"stateless_task_queue": stateless})))
    main = checks[WORKER]
    assert not main.ok
    assert f"{settings.task_queue} (workflow tasks)" in main.detail
    assert f"{settings.task_queue}.polls (activity tasks)" in main.detail
    assert main.fix is not None
    assert f"LANES_TASK_QUEUE={settings.task_queue}" in main.fix
    separate = checks[STATELESS_WORKER]
    assert not separate.ok
    assert separate.fix is not None
    assert f"LANES_STATELESS_TASK_QUEUE={stateless}" in separate.fix
    assert all(checks[name].ok for name in (TEMPORAL, SEARCH_ATTRIBUTES, PROVIDER, ENCRYPTION))


async def test_a_provider_url_nothing_listens_on_fails_without_printing_its_credentials(
    settings: Settings,
) -> None:
    url = f"http://doctor:url-secret-42@127.0.0.1:{free_port()}/v1"
    checks = await run_checks(settings.model_copy(update={"openai_base_url": url}))
    row = by_name(checks)[PROVIDER]
    assert not row.ok
    assert row.detail.startswith(f"nothing answers at http://127.0.0.1:{url.rsplit(':', 1)[1]}")
    assert row.fix is not None
    assert "OPENAI_BASE_URL" in row.fix
    assert "url-secret-42" not in json.dumps([check.model_dump() for check in checks])


async def test_a_refused_api_key_is_named_as_the_fault_and_never_printed(settings: Settings) -> None:
    async with EmulatorServer(Emulator(EmulatorConfig(api_key="sk-the-right-one"))) as strict:
        pointed = settings.model_copy(update={"openai_base_url": strict.base_url})
        wrong = pointed.model_copy(update={"openai_api_key": SecretStr("sk-doctor-wrong-key")})
        checks = await run_checks(wrong)
        right = await run_checks(pointed.model_copy(update={"openai_api_key": SecretStr("sk-the-right-one")}))
    row = by_name(checks)[PROVIDER]
    assert not row.ok
    assert "refuses the API key (401)" in row.detail
    assert row.fix is not None
    assert "OPENAI_API_KEY" in row.fix
    assert "sk-doctor-wrong-key" not in json.dumps([check.model_dump() for check in checks])
    assert by_name(right)[PROVIDER].ok


async def test_every_endpoint_of_the_policy_is_checked_with_its_own_key(settings: Settings) -> None:
    # The default policy's ZDR project (endpoints.openai-zdr) has a key variable of its own: a worker
    # without it would stop at start, so doctor names it; a refused one is named too, never printed.
    zdr = f"{PROVIDER} openai-zdr"
    missing = by_name(await run_checks(settings, environ={}))[zdr]
    assert not missing.ok
    assert "OPENAI_ZDR_API_KEY, which is not set" in missing.detail
    assert missing.fix == "set OPENAI_ZDR_API_KEY, or change endpoints.openai-zdr.api_key_env"
    keys = EmulatorConfig(api_key="emulator", zdr_api_keys=("sk-zdr-right",))
    async with EmulatorServer(Emulator(keys)) as strict:
        pointed = settings.model_copy(update={"openai_base_url": strict.base_url})
        wrong = await run_checks(pointed, environ={"OPENAI_ZDR_API_KEY": "sk-zdr-wrong"})
        right = await run_checks(pointed, environ={"OPENAI_ZDR_API_KEY": "sk-zdr-right"})
    row = by_name(wrong)[zdr]
    assert not row.ok
    assert "refuses the API key (401)" in row.detail
    assert row.fix == "set OPENAI_ZDR_API_KEY to a valid key for this endpoint"
    assert by_name(wrong)[PROVIDER].ok  # the default endpoint's key is a different one
    assert "sk-zdr-wrong" not in json.dumps([check.model_dump() for check in wrong])
    assert by_name(right)[zdr].ok


async def test_encryption_fails_without_a_key_with_a_bad_key_and_with_an_unsafe_key_file(
    settings: Settings, tmp_path: Path
) -> None:
    none = await run_checks(settings.model_copy(update={"encryption_keys": None}))
    row = by_name(none)[ENCRYPTION]
    assert not row.ok
    assert "clear text" in row.detail
    assert row.fix is not None
    assert "LANES_ENCRYPTION_KEY_FILE" in row.fix

    bad = await run_checks(settings.model_copy(update={"encryption_keys": SecretStr("k1=not-a-key-xyz")}))
    row = by_name(bad)[ENCRYPTION]
    assert not row.ok
    assert "LANES_ENCRYPTION_KEYS" in row.detail
    assert "not-a-key-xyz" not in json.dumps([check.model_dump() for check in bad])

    key_file = tmp_path / "keys"
    key_file.write_text(new_key_entry("k1"))
    key_file.chmod(0o644)
    readable = settings.model_copy(update={"encryption_keys": None, "encryption_key_file": key_file})
    row = by_name(await run_checks(readable))[ENCRYPTION]
    assert not row.ok
    assert str(key_file) in row.detail
    key_file.chmod(0o600)
    row = by_name(await run_checks(readable))[ENCRYPTION]
    assert row.ok, row
    assert f"LANES_ENCRYPTION_KEY_FILE ({key_file})" in row.detail


async def test_a_codec_server_that_refuses_one_of_the_uis_origins_or_is_down_fails(
    settings: Settings,
) -> None:
    only_one = settings.model_copy(update={"codec_cors_origins": "http://127.0.0.1:8233"})
    async with CodecServer(codec_app(only_one)) as strict:
        row = by_name(await run_checks(settings.model_copy(update={"codec_url": strict.url})))[CODEC_SERVER]
    assert not row.ok
    assert "refuses the UI's origin http://localhost:8233" in row.detail
    assert "http://127.0.0.1:8233 " not in row.detail  # the allowed one is not named as refused
    assert row.fix is not None
    assert "LANES_CODEC_CORS_ORIGINS" in row.fix

    down = settings.model_copy(update={"codec_url": f"http://127.0.0.1:{free_port()}"})
    row = by_name(await run_checks(down))[CODEC_SERVER]
    assert not row.ok
    assert row.detail.startswith("nothing answers at http://127.0.0.1:")
    assert row.fix is not None
    assert "lanes codec-server" in row.fix

    no_origin = down.model_copy(update={"codec_cors_origins": " "})
    row = by_name(await run_checks(no_origin))[CODEC_SERVER]
    assert not row.ok
    assert row.detail.startswith("LANES_CODEC_CORS_ORIGINS names no origin")


async def test_unreachable_temporal_is_a_failed_row_with_a_fix_and_exit_1(settings: Settings) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {**settings.environment(), "TEMPORAL_ADDRESS": address}
    code, out, err = await lanes("doctor", "--json", env=env, timeout_s=60)
    assert code == 1, err
    assert "Traceback" not in err
    assert out.count("\n") == 1  # exactly one JSON object
    report = json.loads(out)
    assert report["ok"] is False
    rows = {row["name"]: row for row in report["checks"]}
    assert rows[TEMPORAL]["ok"] is False
    assert rows[TEMPORAL]["detail"] == f"cannot reach {address}: Connection refused"
    assert "lanes dev" in rows[TEMPORAL]["fix"]
    for name in (SEARCH_ATTRIBUTES, WORKER):
        assert rows[name]["ok"] is False
        assert rows[name]["detail"] == "not checked: the temporal check failed"
    # What needs no Temporal is still checked.
    assert rows[PROVIDER]["ok"]
    assert rows[ENCRYPTION]["ok"]

    code, out, err = await lanes("doctor", env=env, timeout_s=60)
    assert code == 1
    assert "Traceback" not in err
    assert err == "lanes doctor: 3 of 7 checks failed\n"
    lines = out.splitlines()
    assert lines[0].split() == ["check", "result", "detail"]
    temporal = next(i for i, line in enumerate(lines) if line.startswith("temporal "))
    assert "FAIL" in lines[temporal]
    assert lines[temporal + 1].strip().startswith("fix: start the embedded stack with `lanes dev`")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LANES_", "OPENAI_"))}


async def _doctor(cwd: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *LANES, "doctor", *args, cwd=cwd, env=_clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.long(30)
async def test_beside_lanes_dev_every_check_passes_with_nothing_exported(dev_stack: Path) -> None:
    # The shell of a newcomer: no variable set, the stack found through .lanes/dev/env, codec server too.
    async with asyncio.timeout(60):
        while True:
            code, out, err = await _doctor(dev_stack, "--json")
            assert "Traceback" not in err
            rows = {row["name"]: row for row in json.loads(out)["checks"]}
            if rows[WORKER]["ok"]:  # the stack's worker has polled: every check can pass
                break
            await asyncio.sleep(0.2)
    assert code == 0, out
    assert all(row["ok"] and not row["skipped"] for row in rows.values()), rows
    codec_url = read_dev_env(env_file(dev_stack / ".lanes/dev"))["LANES_CODEC_URL"]
    assert rows[CODEC_SERVER]["detail"] == (
        f"{codec_url} allows the UI's origins http://127.0.0.1:8233, http://localhost:8233"
    )
    code, out, err = await _doctor(dev_stack)
    assert code == 0, out + err
    assert err == ""
    assert [" ".join(line.split()[:2]) for line in out.splitlines()[1:]] == [
        "temporal ok", "search attributes", "worker ok", "provider ok", "provider openai-zdr",
        "encryption ok", "codec server",
    ]  # fmt: skip
    # The ZDR project's key came from the stack's env file: nothing OPENAI_* was exported.
    assert rows["provider openai-zdr"]["ok"]
    assert "FAIL" not in out


async def test_a_namespace_that_does_not_exist_fails_the_temporal_check(settings: Settings) -> None:
    missing = f"no-such-namespace-{uuid.uuid4().hex[:8]}"
    checks = by_name(await run_checks(settings.model_copy(update={"temporal_namespace": missing})))
    row = checks[TEMPORAL]
    assert not row.ok
    assert row.detail.endswith(f"answers, but has no namespace {missing!r}")
    assert row.fix is not None
    assert f"temporal operator namespace create --namespace {missing}" in row.fix
    assert checks[WORKER].detail == "not checked: the temporal check failed"


async def test_a_namespace_without_lanes_search_attributes_fails_naming_lanes_setup(
    settings: Settings, client: Client
) -> None:
    # A real namespace of the session's server, registered for this test: the dev server registered
    # lanes' attributes on `default` only.
    namespace = f"doctor-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400)
        )
    )
    fresh = settings.model_copy(update={"temporal_namespace": namespace})
    async with asyncio.timeout(60):
        while True:
            checks = by_name(await run_checks(fresh))
            if checks[TEMPORAL].ok:  # the server knows the namespace
                break
            await asyncio.sleep(0.2)
    row = checks[SEARCH_ATTRIBUTES]
    assert not row.ok, row
    assert f"namespace {namespace!r} lacks LanesLane, LanesJobType" in row.detail
    assert row.fix == "run `lanes setup` once with the same TEMPORAL_* settings"
