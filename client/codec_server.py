"""The codec server: decrypts (and encrypts) payloads for the Temporal UI and CLI of those who hold the key.

A small raw ASGI app served by uvicorn (already a dependency; a web framework would add nothing for two
routes). It speaks the remote-codec protocol of the Temporal UI and CLI:

* ``POST /encode`` and ``POST /decode`` take and return the JSON form of
  ``temporal.api.common.v1.Payloads`` (``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data":
  "<base64>"}]}``);
* CORS for the configured UI origins (``LANES_CODEC_CORS_ORIGINS``, default ``http://localhost:8233``),
  including the ``OPTIONS`` preflight;
* with ``LANES_CODEC_TOKEN`` set, ``Authorization: Bearer <token>`` on every ``POST`` (the UI sends it when
  its codec endpoint is configured with "Pass access token"; the CLI with ``--codec-auth``).

It is a decryption oracle for whoever can reach it: :func:`serve_codec` binds loopback by default and
refuses another interface without a token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from client.blobs import BlobNotFoundError
from client.codec import CodecError, KeyConfigError, build_codec
from client.settings import Settings
from client.uvicorn_server import UvicornServer, bind

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ALLOWED_HEADERS = "authorization,content-type,x-namespace"
MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_PORT = 8081

logger = logging.getLogger(__name__)


class CodecApp:
    """ASGI app with ``POST /encode`` and ``POST /decode`` over ``codec``.

    Routes match on the last path segment, so the app works behind a path prefix.

    Args:
        codec: The codec (from :func:`client.codec.build_codec`).
        token: Bearer token required on ``POST`` requests; ``None`` requires none.
        origins: Browser origins answered with CORS headers.
    """

    def __init__(self, codec: PayloadCodec, *, token: str | None, origins: Sequence[str]) -> None:
        self.codec = codec
        self._token = token
        self._origins = {o.strip().rstrip("/") for o in origins if o.strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cors: list[tuple[str, str]] = []
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") in self._origins:
            cors = [
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                ("vary", "Origin"),
            ]
        method = scope["method"]
        action = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        if method == "OPTIONS":
            preflight = [
                ("access-control-allow-methods", "POST, OPTIONS"),
                ("access-control-allow-headers", ALLOWED_HEADERS),
                ("access-control-max-age", "600"),
            ]
            await _respond(send, 204, b"", cors + preflight if cors else [])
            return
        if action not in ("encode", "decode"):
            await _respond(send, 404, _error("not found: use POST /encode or POST /decode"), cors)
            return
        if method != "POST":
            await _respond(send, 405, _error("use POST"), [*cors, ("allow", "POST, OPTIONS")])
            return
        if self._token is not None and not hmac.compare_digest(
            headers.get("authorization", "").encode(), f"Bearer {self._token}".encode()
        ):
            await _respond(
                send, 401, _error("missing or wrong bearer token"), [*cors, ("www-authenticate", "Bearer")]
            )
            return
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, _error(f"body larger than {MAX_BODY_BYTES} bytes"), cors)
            return
        payloads = Payloads()
        try:
            json_format.Parse(body, payloads)
        except json_format.ParseError as exc:
            await _respond(send, 400, _error(f"not a JSON Payloads message: {exc}"), cors)
            return
        try:
            if action == "encode":
                await self.codec.encode_wrapper(payloads)
            else:
                await self.codec.decode_wrapper(payloads)
        except (CodecError, BlobNotFoundError) as exc:
            await _respond(send, 400, _error(str(exc)), cors)
            return
        await _respond(send, 200, json_format.MessageToJson(payloads).encode(), cors)


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
    all_headers = [(k.encode(), v.encode()) for k, v in headers]
    if body:
        all_headers.append((b"content-type", b"application/json"))
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def codec_app(settings: Settings) -> CodecApp:
    """The codec server app for these settings (keys, blob directory, token, CORS origins).

    Raises:
        KeyConfigError: No keys are configured (nothing to decode with), or they are malformed.
    """
    codec = build_codec(settings)
    if codec is None:
        raise KeyConfigError(
            "the codec server needs the encryption keys: set LANES_ENCRYPTION_KEYS or "
            "LANES_ENCRYPTION_KEY_FILE as for the worker"
        )
    token = settings.codec_token.get_secret_value() if settings.codec_token else None
    return CodecApp(codec, token=token, origins=settings.codec_cors_origins.split(","))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CodecServer(UvicornServer):
    """Runs a :class:`CodecApp` on a port inside the current event loop (tests, ``lanes dev``).

    Use as ``async with CodecServer(app) as server:`` and pass ``server.url`` as ``--codec-endpoint``
    or the UI's codec endpoint. Port 0 picks a free port.

    Args:
        app: The app to serve.
        host: Interface to bind; loopback by default.
        port: TCP port, 0 for any free port.
    """

    def __init__(self, app: CodecApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(app)
        self._host = host
        self._requested_port = port

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: Before the server is started.
        """
        if self._socket is None:
            raise RuntimeError("the codec server is not running")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """The codec endpoint, e.g. ``http://127.0.0.1:8081``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def _listen(self) -> socket.socket:
        return bind(self._host, self._requested_port)


async def serve_codec(settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve the codec server until cancelled (the ``lanes codec-server`` command).

    Prints ``codec server listening on http://host:port`` to stderr once bound.

    Raises:
        KeyConfigError: No keys, or malformed ones.
        ValueError: ``host`` is not loopback and ``LANES_CODEC_TOKEN`` is unset.
    """
    if not _is_loopback(host) and settings.codec_token is None:
        raise ValueError(
            f"refusing to serve decrypted payloads on {host} without a token: set LANES_CODEC_TOKEN "
            "(and configure the UI/CLI to send it), or bind 127.0.0.1"
        )
    async with CodecServer(codec_app(settings), host=host, port=port) as server:
        print(f"codec server listening on {server.url}", file=sys.stderr, flush=True)
        await server.wait()
