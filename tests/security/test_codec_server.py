"""Issue 20, the codec server's edges: item 1 (token), item 7 (Host), the bounds of a request, the error
bodies, all against a real codec server on a free loopback port (or the real ``lanes codec-server``).

The codec server decrypts for whoever reaches it: a token that is "set" but empty, a Host it never
checked, an ``/encode`` that writes files, or an error body naming the blob directory and key ids each
gave an attacker something. Every test here failed on the code before the fix.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from pydantic import SecretStr

from lanes.dev.stack import free_port
from lanes.servers.codec_server import CodecServer, codec_app, serve_codec
from lanes.settings import Settings
from tests.cli_runner import LANES, ROOT

TOKEN = "codec-security-token-0123456789abcdef"
SECRET = "canary-prompt-1f3a"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def clear(text: str = SECRET) -> dict[str, Any]:
    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(json.dumps(text).encode())}


def body(*payloads: dict[str, Any]) -> dict[str, Any]:
    return {"payloads": list(payloads)}


@pytest.fixture
def keys() -> str:
    return f"secret-key-id={b64(os.urandom(32))}"


@pytest.fixture
def codec_settings(tmp_path: Path, keys: str) -> Settings:
    return Settings(encryption_keys=SecretStr(keys), blob_dir=tmp_path / "blobs", claim_check_threshold=100)


@pytest_asyncio.fixture
async def tokenless(codec_settings: Settings) -> AsyncIterator[CodecServer]:
    """A loopback codec server without a token, as ``lanes dev`` runs one."""
    async with CodecServer(codec_app(codec_settings)) as server:
        yield server


async def codec_server_cli(env: dict[str, str], *args: str) -> tuple[int | None, str]:
    """``lanes codec-server ARGS``: its exit code and stderr, or ``None`` if still serving after 30 s."""
    process = await asyncio.create_subprocess_exec(
        *LANES,
        "codec-server",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()
        _, err = await process.communicate()
        return None, err.decode()
    return process.returncode, err.decode()


# --------------------------------------------------------------------------------- item 1: the token


@pytest.mark.parametrize(("token", "why"), [("", "empty"), ("   \t", "empty"), ("s3cret", "6 bytes")])
async def test_item_1_an_empty_blank_or_short_token_is_a_configuration_error(
    token: str, why: str, keys: str, tmp_path: Path
) -> None:
    env = {"LANES_ENCRYPTION_KEYS": keys, "LANES_BLOB_DIR": str(tmp_path), "LANES_CODEC_TOKEN": token}
    code, err = await codec_server_cli(env, "--host", "0.0.0.0", "--port", str(free_port()))
    assert code == 2, f"the codec server started ({code}): {err}"
    (line,) = err.strip().splitlines()
    assert line.startswith("lanes codec-server: LANES_CODEC_TOKEN")
    assert why in line
    assert "secrets.token_urlsafe(32)" in line  # the fix
    assert "Traceback" not in err
    if token.strip():
        assert token not in err  # never the value


async def test_item_1_no_path_reads_an_empty_token_as_no_token(codec_settings: Settings) -> None:
    empty = codec_settings.model_copy(update={"codec_token": SecretStr("")})
    with pytest.raises(ValueError, match="LANES_CODEC_TOKEN is empty"):
        codec_app(empty)  # loopback too: the app never runs without the token it was given
    with pytest.raises(ValueError, match="LANES_CODEC_TOKEN is empty"):
        await serve_codec(empty, host="0.0.0.0", port=0)


async def test_item_1_binding_beyond_loopback_needs_a_token(codec_settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"refusing to serve decrypted payloads on 0\.0\.0\.0 without a tok"):
        await serve_codec(codec_settings, host="0.0.0.0", port=0)


async def test_item_1_the_token_may_come_from_a_secret_file_and_is_then_required(
    codec_settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "lanes_codec_token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o600)
    settings = codec_settings.model_copy(update={"codec_token_file": secret})
    async with CodecServer(codec_app(settings)) as server, httpx2.AsyncClient(base_url=server.url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = await http.post("/decode", json=body(clear()), headers=headers)
            assert refused.status_code == 401
            assert SECRET not in refused.text
        ok = await http.post("/encode", json=body(clear()), headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
    secret.write_text("\n")
    with pytest.raises(ValueError, match=r"LANES_CODEC_TOKEN_FILE \(.*\) is empty"):
        codec_app(settings)
    secret.write_text(TOKEN)
    secret.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        codec_app(settings)


# ------------------------------------------------------------------------------ item 7: DNS rebinding


async def test_item_7_a_host_the_server_does_not_answer_to_is_refused(tokenless: CodecServer) -> None:
    port = tokenless.port
    async with httpx2.AsyncClient(base_url=tokenless.url) as http:
        hosts = (f"rebind.attacker.example:{port}", "attacker.example", f"127.0.0.1.nip.io:{port}", "a:1:2")
        for host in hosts:
            refused = await http.post("/decode", json=body(clear()), headers={"Host": host})
            assert refused.status_code == 421, host
            assert "LANES_CODEC_ALLOWED_HOSTS" in refused.json()["error"]
            assert SECRET not in refused.text
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            assert (await http.post("/encode", json=body(clear()), headers={"Host": host})).status_code == 200


async def test_item_7_the_allowed_hosts_are_configurable(codec_settings: Settings) -> None:
    settings = codec_settings.model_copy(update={"codec_allowed_hosts": "codec.internal, localhost"})
    async with CodecServer(codec_app(settings)) as server, httpx2.AsyncClient(base_url=server.url) as http:
        assert (await http.post("/encode", json=body(clear()), headers={"Host": "codec.internal"})).is_success
        assert (await http.post("/decode", json=body(clear()))).status_code == 421  # 127.0.0.1 not listed
    for bad in ("*", "codec.internal:8081", "http://codec", " , "):
        with pytest.raises(ValueError, match="LANES_CODEC_ALLOWED_HOSTS"):
            codec_app(codec_settings.model_copy(update={"codec_allowed_hosts": bad}))


# ------------------------------------------------------------------------------------- request bounds


async def test_bounds_payload_count_payload_size_and_body_size(tokenless: CodecServer) -> None:
    async with httpx2.AsyncClient(base_url=tokenless.url, timeout=60) as http:
        many = await http.post("/encode", json=body(*[clear("x")] * 1001))
        assert many.status_code == 400
        assert many.json() == {"error": "1001 payloads in one request; at most 1000"}

        big = {"metadata": {"encoding": b64(b"binary/plain")}, "data": b64(b"\0" * (4 * 1024 * 1024 + 1))}
        too_big = await http.post("/encode", json=body(big))
        assert too_big.status_code == 400
        assert too_big.json()["error"].startswith("payloads[0] is over")

        huge = b'{"payloads": [' + b" " * (16 * 1024 * 1024) + b"]}"
        declared = await http.post("/decode", content=huge, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"payloads": ['
            for _ in range(17):
                yield b" " * (1024 * 1024)

        streamed = await http.post("/decode", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        assert "body larger than 16777216 bytes" in streamed.json()["error"]


async def test_bounds_encode_never_writes_a_blob_unless_configured(
    tokenless: CodecServer, codec_settings: Settings
) -> None:
    large = clear("y" * 1000)  # over the fixture's claim-check threshold of 100 bytes
    async with httpx2.AsyncClient(base_url=tokenless.url) as http:
        encoded = await http.post("/encode", json=body(large))
        assert encoded.status_code == 200
        assert not codec_settings.blob_dir.exists() or not any(codec_settings.blob_dir.iterdir())
        decoded = await http.post("/decode", json=encoded.json())
        assert decoded.json() == body(large)

    opted_in = codec_settings.model_copy(update={"codec_claim_check": True})
    async with CodecServer(codec_app(opted_in)) as server, httpx2.AsyncClient(base_url=server.url) as http:
        assert (await http.post("/encode", json=body(large))).status_code == 200
        assert any(codec_settings.blob_dir.iterdir())


# -------------------------------------------------------------------------------------- error bodies


async def test_error_bodies_name_neither_blob_directory_nor_key_ids_nor_digests(
    codec_settings: Settings, tmp_path: Path
) -> None:
    opted_in = codec_settings.model_copy(update={"codec_claim_check": True})
    other_keys = Settings(encryption_keys=SecretStr(f"other-key-id={b64(os.urandom(32))}"), blob_dir=tmp_path)
    async with (
        CodecServer(codec_app(opted_in)) as server,
        CodecServer(codec_app(other_keys)) as other,
        httpx2.AsyncClient(base_url=server.url) as http,
    ):
        stored = (await http.post("/encode", json=body(clear("z" * 1000)))).json()
        for blob in codec_settings.blob_dir.iterdir():
            blob.unlink()
        foreign = (await http.post(f"{other.url}/encode", json=body(clear()))).json()
        encrypted = {"encoding": b64(b"binary/encrypted"), "encryption-key-id": b64(b"secret-key-id")}
        cases = {
            "missing blob": stored,
            "foreign key": foreign,
            "short nonce": body({"metadata": encrypted, "data": b64(b"abc")}),
            "tampered": body({"metadata": encrypted, "data": b64(os.urandom(64))}),
            "bogus base64": body({"metadata": encrypted, "data": "!!!"}),
            "not json": b"\xff{",
            "deep json": b"[" * 100_000,
            "wrong shape": b'{"payloads": {"a": 1}}',
            "wrong item": b'{"payloads": [42]}',
        }
        responses = {}
        for name, case in cases.items():
            content = case if isinstance(case, bytes) else json.dumps(case).encode()
            responses[name] = await http.post(
                "/decode", content=content, headers={"Content-Type": "application/json"}
            )
    for name, response in responses.items():
        assert response.status_code == 400, (name, response.text)
        error = response.json()["error"]
        for leak in (str(codec_settings.blob_dir), str(tmp_path), "secret-key-id", "other-key-id", "sha256"):
            assert leak not in error, (name, error)
        assert "Traceback" not in response.text
    assert responses["missing blob"].json() == {
        "error": "payloads[0] cannot be decoded: "
        "its claim-checked blob is missing here or does not match its reference"
    }
    assert responses["foreign key"].json() == {
        "error": "payloads[0] cannot be decoded: encrypted with a key this server does not hold"
    }
