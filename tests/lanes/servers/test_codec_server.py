from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio

from lanes.errors import KeyConfigError
from lanes.servers.codec_server import CodecServer, codec_app, serve_codec
from lanes.settings import Settings

TOKEN = "t0ken-for-tests-0123456789abcdefghij"
UI = "http://localhost:8233"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def clear_payloads(text: str) -> dict[str, Any]:
    return {"payloads": [{"metadata": {"encoding": b64(b"json/plain")}, "data": b64(f'"{text}"'.encode())}]}


@pytest.fixture
def codec_settings(tmp_path: Path) -> Settings:
    return Settings(
        encryption_keys=f"k1={b64(os.urandom(32))}",
        blob_dir=tmp_path / "blobs",
        codec_token=TOKEN,
    )


@pytest_asyncio.fixture
async def server(codec_settings: Settings) -> AsyncIterator[CodecServer]:
    async with CodecServer(codec_app(codec_settings)) as running:
        yield running


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_encode_then_decode_round_trips_the_json_payloads(server: CodecServer) -> None:
    async with httpx2.AsyncClient(base_url=server.url) as http:
        encoded = await http.post("/encode", json=clear_payloads("canary-42"), headers=auth())
        assert encoded.status_code == 200
        body = encoded.json()
        (payload,) = body["payloads"]
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(payload["metadata"]["encryption-key-id"]) == b"k1"
        assert b"canary-42" not in base64.b64decode(payload["data"])

        decoded = await http.post("/decode", json=body, headers=auth())
        assert decoded.status_code == 200
        assert decoded.json() == clear_payloads("canary-42")


async def test_requests_without_the_right_token_are_refused(server: CodecServer) -> None:
    async with httpx2.AsyncClient(base_url=server.url) as http:
        for headers in ({}, auth("wrong"), {"Authorization": TOKEN}):
            response = await http.post("/decode", json=clear_payloads("x"), headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"


async def test_without_a_token_configured_no_authorization_is_needed(codec_settings: Settings) -> None:
    app = codec_app(codec_settings.model_copy(update={"codec_token": None}))
    async with CodecServer(app) as running, httpx2.AsyncClient(base_url=running.url) as http:
        assert (await http.post("/encode", json=clear_payloads("x"))).status_code == 200


async def test_cors_preflight_and_responses_for_the_ui_origin(server: CodecServer) -> None:
    async with httpx2.AsyncClient(base_url=server.url) as http:
        preflight = await http.options(
            "/decode",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == UI
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-namespace"} <= allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]

        response = await http.post(
            "/decode", json=clear_payloads("x"), headers={**auth(), "Origin": UI, "X-Namespace": "default"}
        )
        assert response.headers["access-control-allow-origin"] == UI
        refused = await http.post("/decode", json=clear_payloads("x"), headers={"Origin": UI})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == UI  # so the UI can show the 401

        other = await http.options("/decode", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_bad_requests_get_clear_errors(server: CodecServer, codec_settings: Settings) -> None:
    async with httpx2.AsyncClient(base_url=server.url) as http:
        assert (await http.post("/nope", headers=auth())).status_code == 404
        assert (await http.get("/decode", headers=auth())).status_code == 405
        garbage = await http.post(
            "/decode", content=b"{not json", headers={**auth(), "Content-Type": "application/json"}
        )
        assert garbage.status_code == 400
        assert "not a JSON Payloads" in garbage.json()["error"]
        assert (await http.post("/decode", content=b"{}", headers=auth())).status_code == 415

        # A payload under a key the server does not have: 400 saying so, without the key ids.
        foreign = Settings(encryption_keys=f"other={b64(os.urandom(32))}", blob_dir=codec_settings.blob_dir)
        async with CodecServer(codec_app(foreign)) as other:
            encoded = (await http.post(f"{other.url}/encode", json=clear_payloads("x"))).json()
        unknown = await http.post("/decode", json=encoded, headers=auth())
        assert unknown.status_code == 400
        assert unknown.json() == {
            "error": "payloads[0] cannot be decoded: encrypted with a key this server does not hold"
        }


def test_the_codec_server_needs_keys() -> None:
    with pytest.raises(KeyConfigError, match="LANES_ENCRYPTION_KEYS"):
        codec_app(Settings())


async def test_serving_beyond_loopback_needs_a_token(codec_settings: Settings) -> None:
    with pytest.raises(ValueError, match="LANES_CODEC_TOKEN"):
        await serve_codec(codec_settings.model_copy(update={"codec_token": None}), host="0.0.0.0", port=0)
