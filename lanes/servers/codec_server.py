"""The codec server: decrypts (and encrypts) payloads for the Temporal UI and CLI of those who hold the key.

A Starlette app served by :class:`lanes.servers.uvicorn_server.UvicornServer` (header and body timeouts, a
connection limit). It speaks the remote-codec protocol of the Temporal UI and CLI:

* ``POST /encode`` and ``POST /decode`` take and return the JSON form of
  ``temporal.api.common.v1.Payloads`` (``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data":
  "<base64>"}]}``); they match on the last path segment, so the server also works behind a prefix;
* CORS for the configured UI origins (``LANES_CODEC_CORS_ORIGINS``, default both loopback names of
  ``:8233``),
  by Starlette's ``CORSMiddleware``;
* with a token (``LANES_CODEC_TOKEN`` or ``LANES_CODEC_TOKEN_FILE``), ``Authorization: Bearer <token>``
  on every ``POST`` (the CLI's ``--codec-auth``).

It is a decryption oracle for whoever can reach it, so every edge is closed by default:

* **token**: :func:`configured_token` is the one notion of "a token is configured". An empty or
  whitespace value, or one under 32 bytes, is a configuration error, never "no token"; binding anything
  but loopback without a token is refused (:func:`serve_codec`). The token is compared in constant time.
* **Host**: only the configured host names are answered (``LANES_CODEC_ALLOWED_HOSTS``, loopback names
  by default), others get ``421``: a page that rebinds its domain to 127.0.0.1 cannot call ``/decode``
  on a tokenless loopback server, because its requests carry its own domain in ``Host``.
* **bounds**: body size (``413``), payloads per request and bytes per payload (``400``), all from
  :class:`CodecLimits`; ``/encode`` never writes claim-check blobs unless ``LANES_CODEC_CLAIM_CHECK``.
* **errors**: every refusal is a JSON ``{"error": ...}`` with a fixed message per kind; the detail (key
  ids, blob paths, digests) is logged at WARNING, never sent, and never any payload data. A malformed
  body of any shape is a ``4xx``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import stat
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from lanes.blobs import BlobNotFoundError
from lanes.codec import (
    ClaimCheckError,
    CodecError,
    ContextMismatchError,
    PlaintextRefusedError,
    UnknownEncryptionKeyError,
    build_codec,
)
from lanes.errors import KeyConfigError
from lanes.servers.uvicorn_server import DEFAULT_LIMITS, ServerLimits, UvicornServer, bind
from lanes.settings import Settings

ALLOWED_HEADERS = ("authorization", "content-type", "x-namespace")
DEFAULT_PORT = 8081
MIN_TOKEN_BYTES = 32
GENERATE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
"""How the error messages tell an operator to make a token (43 URL-safe characters, 256 bits)."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")

_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
"""RFC 6750's ``b64token``: what a bearer token may hold so that any client can send it in a header."""
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$"
)
_MAX_TOKEN_FILE_BYTES = 4096

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecLimits:
    """How much one request may ask of the codec server.

    The defaults are above what Temporal itself stores (it refuses a payload over 2 MiB, and the UI and
    CLI send one event's payloads per request), so they only refuse what no Temporal client sends.
    """

    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body (``413`` past it, counted as it streams, whatever ``Content-Length`` says)."""

    max_payloads: int = 1000
    """Most payloads in one request (``400`` past it)."""

    max_payload_bytes: int = 4 * 1024 * 1024
    """Largest single payload, serialized (``400`` past it)."""


DEFAULT_CODEC_LIMITS = CodecLimits()


# ---------------------------------------------------------------------------------------- configuration


def configured_token(settings: Settings) -> str | None:
    """The bearer token the settings configure, or ``None`` when neither variable is set.

    This is the only place that decides whether a token is configured: the app's authentication and the
    bind check in :func:`serve_codec` both use its answer.

    Raises:
        ValueError: Both variables are set, or the token is empty, whitespace, under 32 bytes or not a
            bearer token, or its file is unreadable or accessible by group/others. The message names the
            variable and says how to make a token; it never shows the value.
    """
    if settings.codec_token is not None and settings.codec_token_file is not None:
        raise ValueError("both LANES_CODEC_TOKEN and LANES_CODEC_TOKEN_FILE are set; set only one")
    if settings.codec_token_file is not None:
        source = f"LANES_CODEC_TOKEN_FILE ({settings.codec_token_file})"
        text = _read_token_file(settings.codec_token_file, source)
    elif settings.codec_token is not None:
        source = "LANES_CODEC_TOKEN"
        text = settings.codec_token.get_secret_value()
    else:
        return None
    token = text.strip()
    if not token:
        raise ValueError(
            f"{source} is empty: a codec server token must be at least {MIN_TOKEN_BYTES} bytes; generate "
            f"one with `{GENERATE_TOKEN}`, or unset the variable to serve 127.0.0.1 without a token"
        )
    if not _TOKEN_CHARS.match(token):
        raise ValueError(
            f"{source} holds characters a bearer token cannot carry (only letters, digits and -._~+/, "
            f"then '='); generate one with `{GENERATE_TOKEN}`"
        )
    if len(token.encode()) < MIN_TOKEN_BYTES:
        raise ValueError(
            f"{source} is {len(token.encode())} bytes; a codec server token needs at least "
            f"{MIN_TOKEN_BYTES}: generate one with `{GENERATE_TOKEN}`"
        )
    return token


def _read_token_file(path: Path, source: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError(f"{source}: cannot open it ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{source}: not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(
                f"{source} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}`"
            )
        data = file.read(_MAX_TOKEN_FILE_BYTES + 1)
    if len(data) > _MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"{source}: larger than {_MAX_TOKEN_FILE_BYTES} bytes, not a token file")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not ASCII text; generate a token with `{GENERATE_TOKEN}`") from None


def allowed_hosts(settings: Settings, *, bind_host: str = "127.0.0.1") -> list[str]:
    """The host names the server answers to: ``LANES_CODEC_ALLOWED_HOSTS``, or loopback and ``bind_host``.

    Names are lower-case, IPv6 addresses in brackets (``[::1]``), without a port.

    Raises:
        ValueError: An entry is empty, a wildcard, carries a port or is not a host name or address.
    """
    if settings.codec_allowed_hosts is None:
        hosts = list(LOOPBACK_HOSTS)
        if bind_host not in ("", "0.0.0.0", "::"):
            hosts.append(_host_entry(bind_host, "the bound host"))
        return list(dict.fromkeys(hosts))
    entries = [entry.strip() for entry in settings.codec_allowed_hosts.split(",")]
    if not any(entries):
        raise ValueError(
            "LANES_CODEC_ALLOWED_HOSTS is empty: list the host names clients use to reach the codec server, "
            "e.g. localhost,codec.internal (or unset it for the loopback names)"
        )
    return list(dict.fromkeys(_host_entry(e, "LANES_CODEC_ALLOWED_HOSTS") for e in entries if e))


def _host_entry(entry: str, source: str) -> str:
    name = entry.lower()
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return f"[{address}]" if address.version == 6 else str(address)
    if not _HOST_NAME.match(name):
        raise ValueError(
            f"{source}: {entry!r} is not a host name or address (no wildcard, scheme or port): list each "
            "name the codec server is reached by, e.g. localhost,codec.internal"
        )
    return name


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------------ app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _host_of(header: str | None) -> str | None:
    """The host name of a ``Host`` header, lower-case, without the port; ``None`` if it is malformed."""
    if header is None:
        return None
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    else:
        name, sep, port = value.partition(":")
        rest = sep + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name or None


class AllowedHostsMiddleware:
    """Answer only requests whose ``Host`` is one of ``hosts``; others get ``421`` and a JSON error.

    Starlette's ``TrustedHostMiddleware`` does the same check but answers in plain text; the codec
    protocol's callers (and lanes' tests) expect every refusal as JSON.
    """

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the ``Host`` header, then call the app."""
        if scope["type"] == "http" and _host_of(Headers(scope=scope).get("host")) not in self.hosts:
            response = _error(
                421,
                "this codec server does not answer to that Host: reach it by a name in "
                "LANES_CODEC_ALLOWED_HOSTS (loopback names by default)",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _CORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in JSON like every other refusal."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return _error(
            response.status_code, f"CORS preflight refused: {bytes(response.body).decode()}", headers
        )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "not found: use POST /encode or POST /decode", 405: "use POST"}
    return _error(exc.status_code, messages.get(exc.status_code, exc.detail), dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("codec server: %s on %s (a bug)", type(exc).__name__, request.url.path)
    return _error(500, "internal error")


_PAYLOAD_SHAPE = 'not a JSON Payload: {"metadata": {"<key>": "<base64>"}, "data": "<base64>"}'
_PAYLOADS_SHAPE = 'not a JSON Payloads message: {"payloads": [{"metadata": {...}, "data": "<base64>"}]}'


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _decode_refusal(index: int, exc: Exception) -> str:
    """The fixed message for a payload that cannot be decoded: the kind of failure, never its detail."""
    if isinstance(exc, UnknownEncryptionKeyError):
        why = "encrypted with a key this server does not hold"
    elif isinstance(exc, PlaintextRefusedError):
        why = "it is not encrypted, and clear text is refused (LANES_ENCRYPTION_ALLOW_PLAINTEXT)"
    elif isinstance(exc, ContextMismatchError):
        why = "it is bound to another workflow or namespace"
    elif isinstance(exc, ClaimCheckError | BlobNotFoundError):
        why = "its claim-checked blob is missing here or does not match its reference"
    else:
        why = "it is malformed or was altered"
    return f"payloads[{index}] cannot be decoded: {why}"


class CodecApp:
    """ASGI app with ``POST /encode`` and ``POST /decode`` over ``codec`` (see the module docstring).

    Args:
        codec: The codec (from :func:`lanes.codec.build_codec`).
        token: Bearer token required on ``POST`` requests (from :func:`configured_token`); ``None``
            requires none, which :func:`serve_codec` allows on loopback only.
        origins: Browser origins answered with CORS headers.
        hosts: Host names answered (from :func:`allowed_hosts`).
        limits: Bounds on one request.
    """

    def __init__(
        self,
        codec: PayloadCodec,
        *,
        token: str | None,
        origins: Sequence[str],
        hosts: Collection[str] = LOOPBACK_HOSTS,
        limits: CodecLimits = DEFAULT_CODEC_LIMITS,
    ) -> None:
        self.codec = codec
        self.limits = limits
        self._expected = f"bearer {token}".encode() if token is not None else None
        self.requires_token = token is not None
        """Whether every ``POST`` must carry the bearer token."""
        routes = [
            Route(path, self._endpoint(action), methods=["POST"])
            for action in ("encode", "decode")
            for path in (f"/{action}", f"/{{prefix:path}}/{action}")
        ]
        self._app = Starlette(
            routes=routes,
            middleware=[
                Middleware(AllowedHostsMiddleware, hosts=hosts),
                Middleware(
                    _CORSMiddleware,
                    allow_origins=[o.strip().rstrip("/") for o in origins if o.strip()],
                    allow_methods=["POST"],
                    allow_headers=ALLOWED_HEADERS,
                    allow_credentials=True,
                    max_age=600,
                ),
            ],
            exception_handlers={HTTPException: _http_error, Exception: _server_error},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request."""
        await self._app(scope, receive, send)

    def _endpoint(self, action: str) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await self._handle(request, action)
            except _Refused as refused:
                return refused.response
            except ClientDisconnect:
                return Response(status_code=400)

        return endpoint

    def _authorized(self, request: Request) -> bool:
        if self._expected is None:
            return True
        given = request.headers.get("authorization", "").encode("latin-1")
        scheme, _, rest = given.partition(b" ")
        return hmac.compare_digest(scheme.lower() + b" " + rest.strip(), self._expected)

    async def _handle(self, request: Request, action: str) -> Response:
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"www-authenticate": "Bearer"})
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            return _error(415, "send the payloads as Content-Type: application/json")
        payloads = await self._read_payloads(request)
        out = Payloads()
        for index, payload in enumerate(payloads.payloads):
            try:
                if action == "encode":
                    out.payloads.extend(await self.codec.encode([payload]))
                else:
                    out.payloads.extend(await self.codec.decode([payload]))
            except (CodecError, BlobNotFoundError) as exc:
                logger.warning("codec server: %s refused payloads[%d]: %s", action, index, exc)
                if action == "encode":
                    return _error(400, f"payloads[{index}] cannot be encoded")
                return _error(400, _decode_refusal(index, exc))
            except Exception as exc:
                # The codec raises CodecError for anything malformed; this is the net under that promise.
                logger.warning("codec server: %s refused payloads[%d]: %s", action, index, type(exc).__name__)
                return _error(400, f"payloads[{index}] cannot be {action}d: it is malformed")
        body = await run_in_threadpool(json_format.MessageToJson, out, indent=None)
        return Response(body, media_type="application/json")

    async def _read_payloads(self, request: Request) -> Payloads:
        limit = self.limits.max_body_bytes
        # No ``Connection: close``: uvicorn reads and drops the rest of the body, so that the client gets to
        # read this answer; the runner's deadline ends a client that keeps sending after it.
        too_large = _Refused(_error(413, f"body larger than {limit} bytes"))
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return await run_in_threadpool(self._parse, b"".join(chunks))

    def _parse(self, body: bytes) -> Payloads:
        shape = _PAYLOADS_SHAPE
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            logger.warning("codec server: body refused: %s", type(exc).__name__)
            raise _Refused(_error(400, shape)) from None
        if not isinstance(document, dict):
            raise _Refused(_error(400, shape))
        items = document.get("payloads", [])
        if not isinstance(items, list):
            raise _Refused(_error(400, shape))
        if len(items) > self.limits.max_payloads:
            raise _Refused(
                _error(400, f"{len(items)} payloads in one request; at most {self.limits.max_payloads}")
            )
        payloads = Payloads()
        for index, item in enumerate(items):
            payload = Payload()
            try:
                _check_size(item, self.limits.max_payload_bytes)
                json_format.ParseDict(item, payload, ignore_unknown_fields=True)
            except _PayloadTooLarge:
                raise _Refused(
                    _error(400, f"payloads[{index}] is over {self.limits.max_payload_bytes} bytes")
                ) from None
            except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
                logger.warning("codec server: payloads[%d] refused: %s", index, type(exc).__name__)
                raise _Refused(_error(400, f"payloads[{index}] is {_PAYLOAD_SHAPE}")) from None
            if payload.ByteSize() > self.limits.max_payload_bytes:
                raise _Refused(
                    _error(400, f"payloads[{index}] is over {self.limits.max_payload_bytes} bytes")
                )
            payloads.payloads.append(payload)
        return payloads


class _PayloadTooLarge(Exception):
    pass


def _check_size(item: object, limit: int) -> None:
    """Refuse a payload whose base64 fields decode to more than ``limit`` bytes, before decoding them."""
    if not isinstance(item, dict):
        raise TypeError("a payload is a JSON object")
    strings = [item.get("data", "")]
    metadata = item.get("metadata", {})
    if isinstance(metadata, dict):
        strings.extend(metadata.values())
    size = sum(len(s) * 3 // 4 for s in strings if isinstance(s, str))
    if size > limit:
        raise _PayloadTooLarge


def codec_app(
    settings: Settings, *, host: str = "127.0.0.1", limits: CodecLimits = DEFAULT_CODEC_LIMITS
) -> CodecApp:
    """The codec server app for these settings (keys, blob directory, token, CORS origins, host names).

    ``/encode`` encrypts but leaves large payloads in place unless ``LANES_CODEC_CLAIM_CHECK`` is set, so
    that a caller never writes files on the server; ``/decode`` still reads claim checks.

    Args:
        settings: The process's settings.
        host: The interface the server binds; a specific name or address is added to the default hosts.
        limits: Bounds on one request.

    Raises:
        KeyConfigError: No keys are configured (nothing to decode with), or they are malformed.
        ValueError: The token or the allowed hosts are misconfigured (the message says how to fix it).
    """
    token = configured_token(settings)
    hosts = allowed_hosts(settings, bind_host=host)
    codec = build_codec(settings, claim_check=settings.codec_claim_check)
    if codec is None:
        raise KeyConfigError(
            "the codec server needs the encryption keys: set LANES_ENCRYPTION_KEYS or "
            "LANES_ENCRYPTION_KEY_FILE as for the worker"
        )
    origins = settings.codec_cors_origins.split(",")
    return CodecApp(codec, token=token, origins=origins, hosts=hosts, limits=limits)


class CodecServer(UvicornServer):
    """Runs a :class:`CodecApp` on a port inside the current event loop (tests, ``lanes dev``).

    Use as ``async with CodecServer(app) as server:`` and pass ``server.url`` as ``--codec-endpoint``
    or the UI's codec endpoint. Port 0 picks a free port.

    Args:
        app: The app to serve.
        host: Interface to bind; loopback by default.
        port: TCP port, 0 for any free port.
        limits: Bounds on clients (timeouts, connections),
            :data:`lanes.servers.uvicorn_server.DEFAULT_LIMITS`.
    """

    def __init__(
        self, app: CodecApp, *, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits = DEFAULT_LIMITS
    ) -> None:
        super().__init__(app, limits=limits)
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
        return bind(self._host, self._requested_port, backlog=self.limits.backlog)


async def serve_codec(settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve the codec server until cancelled (the ``lanes codec-server`` command).

    Prints ``codec server listening on http://host:port`` to stderr once bound.

    Raises:
        KeyConfigError: No keys, or malformed ones.
        ValueError: The token is misconfigured, or ``host`` is not loopback and no token is configured.
    """
    app = codec_app(settings, host=host)
    if not _is_loopback(host) and not app.requires_token:
        raise ValueError(
            f"refusing to serve decrypted payloads on {host} without a token: set LANES_CODEC_TOKEN or "
            f"LANES_CODEC_TOKEN_FILE (at least {MIN_TOKEN_BYTES} bytes, e.g. from `{GENERATE_TOKEN}`) and "
            "configure the CLI to send it, or bind 127.0.0.1"
        )
    async with CodecServer(app, host=host, port=port) as server:
        print(f"codec server listening on {server.url}", file=sys.stderr, flush=True)
        await server.wait()
