"""``lanes doctor``: ask each part of a lanes setup whether it answers, and say how to fix what does not.

A job that never moves looks the same whether Temporal is down, the namespace lacks lanes' search
attributes, no worker polls the job's queue, or the provider refuses the key; a Temporal UI that shows
ciphertext looks the same whether the codec server is down or refuses the UI's origin. Each of those is
found by asking the part itself, as the client configured by the same settings meets it:

    checks = await run_checks(load_settings())
    for check in checks:
        print(check.name, "ok" if check.ok else f"FAIL: {check.detail}; {check.fix}")

Doctor runs when something is wrong, so it must never be what breaks: every check is bounded
(:data:`NETWORK_TIMEOUT_S` per request, :data:`CHECK_TIMEOUT_S` per check) and every exception of a check
becomes that check's failed row. It reads and never writes: no search attribute is registered, no job is
started, and the provider is asked only for its model list. No secret is printed, only where it came from.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx2
from pydantic import BaseModel, ConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext
from temporalio.service import RPCError, RPCStatusCode

from lanes.codec import KEY_FILE_ENV, KEYS_ENV, build_codec, load_keys
from lanes.connect import endpoint_key
from lanes.errors import KeyConfigError, TemporalConfigError
from lanes.settings import Settings, client_environ
from lanes.setup import REFUSALS, SETUP_COMMAND, missing_search_attributes
from lanes.temporal_config import DEFAULT_NAMESPACE, connect_config
from policy import DEFAULT_ENDPOINT, PolicyFileError, load_policy
from workflows import search_attributes
from workflows.task_queues import poll_queue, stream_queue

NETWORK_TIMEOUT_S: Final = 5.0
"""How long one connection or request may take: a part that answers at all answers well within it."""

CHECK_TIMEOUT_S: Final = 12.0
"""How long one check may take in all (a few requests); past it the check fails as not answering."""

POLLER_RECENT_S: Final = 120.0
"""How recently a worker must have polled a queue to count. A live worker's long poll is renewed at
least every minute; the server keeps a gone worker in the queue's poller list for five minutes."""

OPENAI_API_URL: Final = "https://api.openai.com/v1"
"""Where the OpenAI SDK sends requests when ``OPENAI_BASE_URL`` is unset."""

TEMPORAL = "temporal"
SEARCH_ATTRIBUTES = "search attributes"
WORKER = "worker"
STATELESS_WORKER = "stateless worker"
PROVIDER = "provider"
ENCRYPTION = "encryption"
CODEC_SERVER = "codec server"

_DETAIL_CHARS = 300
"""A row's detail is one line: an exception's text (a gRPC error can run to pages) is cut here."""


class DoctorCheck(BaseModel):
    """One part of the setup as doctor found it; a failure says what to do in ``fix``."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The part checked: ``temporal``, ``search attributes``, ``worker``, ``provider``, ..."""
    ok: bool
    """Whether the part answered as lanes needs; a skipped check is ok (it has nothing to check)."""
    detail: str
    """One line: what was asked and what answered, or why it failed."""
    fix: str | None = None
    """One line for a failure: the setting to change or the command to run."""
    skipped: bool = False
    """Nothing to check here (no codec server configured), or not checkable with these credentials."""


def _one_line(text: str) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 3] + "..."


def _reason(exc: BaseException) -> str:
    """An exception as a short, one-line reason (its type when its message is empty)."""
    return _one_line(str(exc)) or type(exc).__name__


def _ok(name: str, detail: str) -> DoctorCheck:
    return DoctorCheck(name=name, ok=True, detail=_one_line(detail))


def _fail(name: str, detail: str, fix: str) -> DoctorCheck:
    return DoctorCheck(name=name, ok=False, detail=_one_line(detail), fix=_one_line(fix))


def _skip(name: str, detail: str) -> DoctorCheck:
    return DoctorCheck(name=name, ok=True, detail=_one_line(f"skipped: {detail}"), skipped=True)


async def _guarded(name: str, check: Awaitable[DoctorCheck], *, fix: str) -> DoctorCheck:
    """Run one check within :data:`CHECK_TIMEOUT_S`; a timeout or any exception is its failed row.

    ``fix`` is what to do when the check fails in a way it does not recognise.
    """
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except TimeoutError:
        return _fail(name, f"no answer within {CHECK_TIMEOUT_S:g} s", fix)
    except Exception as exc:  # doctor reports every failure as a row, never as a traceback
        return _fail(name, f"{type(exc).__name__}: {_reason(exc)}", fix)


def _shown_url(url: str) -> str:
    """``url`` without a password or user in it, for a row (``https://user:key@host`` would print a key)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))


# ------------------------------------------------------------------------------------------- Temporal

_START_TEMPORAL = (
    "start the embedded stack with `lanes dev`, or set TEMPORAL_ADDRESS (or a Temporal profile, "
    "TEMPORAL_PROFILE) to a running server"
)


def _connect_reason(exc: BaseException) -> str:
    """The OS's words in the SDK core's connect error (``Connection refused``, a failed name lookup).

    The core nests them in a Rust debug print of four error types, which says nothing more to a reader.
    """
    words = re.findall(r'(?:message|error): "([^"]+)"', str(exc))
    return words[-1] if words else _reason(exc)


async def _reach_temporal(settings: Settings) -> tuple[DoctorCheck, Client | None]:
    """Connect (bounded) and make sure the namespace exists; the client for the checks that need one.

    The client is built without lanes' plugins: doctor only reads server state, and malformed keys must
    show as the encryption row, not as an unreachable server.
    """
    try:
        config = connect_config(settings)
    except TemporalConfigError as exc:
        return _fail(TEMPORAL, str(exc), "correct the Temporal profile or TEMPORAL_* variables"), None
    target, namespace = config["target_host"], config["namespace"]
    try:
        client = await asyncio.wait_for(Client.connect(**config), NETWORK_TIMEOUT_S)
    except TimeoutError:
        detail = f"no answer from {target} within {NETWORK_TIMEOUT_S:g} s"
        return _fail(TEMPORAL, detail, _START_TEMPORAL), None
    except (RuntimeError, OSError) as exc:
        return _fail(TEMPORAL, f"cannot reach {target}: {_connect_reason(exc)}", _START_TEMPORAL), None
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=NETWORK_TIMEOUT_S)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return _fail(
                TEMPORAL,
                f"{target} answers, but has no namespace {namespace!r}",
                f"set TEMPORAL_NAMESPACE to an existing namespace, or create it: "
                f"temporal operator namespace create --namespace {namespace}",
            ), None
        if exc.status not in REFUSALS:  # a refused describe still proves the server answers
            raise
    return _ok(TEMPORAL, f"{target}, namespace {namespace!r}"), client


async def _search_attributes(client: Client) -> DoctorCheck:
    try:
        missing = await missing_search_attributes(client)
    except RPCError as exc:
        if exc.status not in REFUSALS:
            raise
        status = exc.status.name if exc.status is not None else "refused"
        return _skip(
            SEARCH_ATTRIBUTES,
            f"the server will not list them to these credentials ({status}); where it refuses (Temporal "
            f"Cloud), an admin registers them: `{SETUP_COMMAND}` prints the commands",
        )
    if missing:
        return _fail(
            SEARCH_ATTRIBUTES,
            f"namespace {client.namespace!r} lacks {', '.join(missing)}: every job's workflow task fails",
            f"run `{SETUP_COMMAND}` once with the same TEMPORAL_* settings",
        )
    names = len(search_attributes.ALL)
    return _ok(SEARCH_ATTRIBUTES, f"all {names} of lanes' attributes registered on {client.namespace!r}")


_KIND_NAMES = {
    TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW: "workflow tasks",
    TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY: "activity tasks",
}


async def _recent_pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    """Identities of the workers that polled ``queue`` for ``kind`` within :data:`POLLER_RECENT_S`."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=kind,
        ),
        timeout=timedelta(seconds=NETWORK_TIMEOUT_S),
    )
    since = datetime.now(UTC) - timedelta(seconds=POLLER_RECENT_S)
    return {
        poller.identity
        for poller in described.pollers
        if poller.last_access_time.ToDatetime(tzinfo=UTC) >= since
    }


async def _workers(
    client: Client, name: str, queues: Sequence[tuple[str, TaskQueueType.ValueType]], *, what: str, fix: str
) -> DoctorCheck:
    """Whether some worker polled each ``(queue, kind)`` recently (the server's DescribeTaskQueue).

    ``what`` names the queues in the row of a pass.
    """
    found = await asyncio.gather(*(_recent_pollers(client, queue, kind) for queue, kind in queues))
    missing = [
        f"{queue} ({_KIND_NAMES[kind]})" for (queue, kind), who in zip(queues, found, strict=True) if not who
    ]
    if missing:
        return _fail(
            name,
            f"no worker polled {', '.join(missing)} in the last {POLLER_RECENT_S:g} s: jobs there wait",
            fix,
        )
    workers = set().union(*found)
    return _ok(name, f"{len(workers)} worker(s) polling {what}")


def _worker_checks(client: Client, settings: Settings) -> list[Awaitable[DoctorCheck]]:
    """The checks of the workers: the main queue's, then the stateless queue's if it has its own.

    The main queue carries workflow and activity tasks, its stream and poll queues activity tasks
    (:mod:`workflows.task_queues`); the stateless queue, when separate, the stateless activity only.
    """
    main = settings.task_queue
    workflow, activity = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    queues = [
        (main, workflow),
        (main, activity),
        (stream_queue(main), activity),
        (poll_queue(main), activity),
    ]
    start = f"start a worker with LANES_TASK_QUEUE={main} and the same TEMPORAL_* settings (`lanes worker`)"
    what = f"{main} (workflow and activity tasks) and its stream and poll queues"
    checks: list[Awaitable[DoctorCheck]] = [
        _guarded(WORKER, _workers(client, WORKER, queues, what=what, fix=start), fix=start)
    ]
    stateless = settings.stateless_task_queue
    if stateless and stateless != main:
        start_stateless = (
            f"start a worker with LANES_STATELESS_TASK_QUEUE={stateless} LANES_WORKER_LANES=stateless "
            "(docs/operations.md, task queues per lane)"
        )
        only = [(stateless, activity)]
        check = _workers(client, STATELESS_WORKER, only, what=stateless, fix=start_stateless)
        checks.append(_guarded(STATELESS_WORKER, check, fix=start_stateless))
    return checks


async def _temporal_checks(settings: Settings) -> list[DoctorCheck]:
    """Temporal, then what only a reachable Temporal can tell: search attributes and workers."""
    reached: list[Client] = []

    async def reach() -> DoctorCheck:
        check, client = await _reach_temporal(settings)
        if client is not None:
            reached.append(client)
        return check

    temporal = await _guarded(TEMPORAL, reach(), fix=_START_TEMPORAL)
    if not reached:
        names = [SEARCH_ATTRIBUTES, WORKER]
        if settings.stateless_task_queue and settings.stateless_task_queue != settings.task_queue:
            names.append(STATELESS_WORKER)
        unchecked = "not checked: the temporal check failed"
        return [temporal, *(_fail(name, unchecked, "fix the temporal check first") for name in names)]
    client = reached[0]
    sa_fix = f"run `{SETUP_COMMAND}` once with the same TEMPORAL_* settings"
    rest = await asyncio.gather(
        _guarded(SEARCH_ATTRIBUTES, _search_attributes(client), fix=sa_fix), *_worker_checks(client, settings)
    )
    return [temporal, *rest]


# ------------------------------------------------------------------------------------------- provider


async def _provider(settings: Settings) -> DoctorCheck:
    """Whether the default endpoint's provider answers over HTTP, and does not refuse the key.

    ``GET /models`` is the cheapest authenticated call of the API: any HTTP answer proves the URL is
    right, and only 401 says the key is wrong (the emulator answers 404, and takes any key).
    """
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if settings.openai_base_url is None and key is None:
        return _fail(
            PROVIDER,
            "no provider configured: neither OPENAI_API_KEY nor OPENAI_BASE_URL is set",
            "set OPENAI_API_KEY to use OpenAI, or OPENAI_BASE_URL to an emulator (`lanes dev` starts one)",
        )
    # The worker sends a placeholder key to a base URL without one (lanes.connect.openai_client).
    return await _probe(
        PROVIDER,
        settings.openai_base_url,
        key or "emulator",
        key_var="OPENAI_API_KEY",
        url_var="OPENAI_BASE_URL",
    )


async def _probe(name: str, base_url: str | None, key: str, *, key_var: str, url_var: str) -> DoctorCheck:
    """``GET {base_url}/models`` with ``key``: the check of one provider endpoint.

    Args:
        name: The row's name.
        base_url: Where the endpoint is; ``None`` is OpenAI itself.
        key: The endpoint's key; never printed.
        key_var: The variable the key came from, named in the fix when the endpoint refuses it.
        url_var: What sets ``base_url``, named in the fix when nothing answers there.
    """
    base = (base_url or OPENAI_API_URL).rstrip("/")
    shown = _shown_url(base)
    where = url_var if base_url else "the network or proxy (HTTPS_PROXY)"
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(timeout=NETWORK_TIMEOUT_S) as http:
        try:
            reply = await http.get(f"{base}/models", headers=headers)
        except httpx2.TimeoutException:
            return _fail(name, f"no answer from {shown} within {NETWORK_TIMEOUT_S:g} s", f"check {where}")
        except httpx2.TransportError as exc:
            fix = (
                f"start the emulator (`lanes dev` or `lanes emulator`), or correct {url_var}"
                if base_url and url_var == "OPENAI_BASE_URL"
                else f"check {where}"
            )
            return _fail(name, f"nothing answers at {shown}: {type(exc).__name__}", fix)
    if reply.status_code == 401:
        return _fail(
            name,
            f"{shown} answers, but refuses the API key (401)",
            f"set {key_var} to a valid key for this endpoint",
        )
    return _ok(name, f"{shown} answers (GET /models: HTTP {reply.status_code})")


async def _endpoints(settings: Settings, environ: Mapping[str, str]) -> list[DoctorCheck]:
    """One row for each endpoint of the policy besides the default (``provider <name>``).

    A worker builds a client for every endpoint at start and stops when a key is missing
    (:func:`lanes.connect.endpoint_clients`), so each is checked as the worker will meet it: its key
    variable set, its URL (``base_url``, else ``OPENAI_BASE_URL``, else OpenAI) answering, the key taken.
    """
    try:
        policy = load_policy(settings.policy_path)
    except PolicyFileError as exc:
        first = exc.errors[0] if exc.errors else str(exc)
        return [
            _fail(f"{PROVIDER} endpoints", f"the policy does not load: {first}", "run `lanes policy check`")
        ]
    rows: list[Awaitable[DoctorCheck]] = []
    for name, spec in sorted(policy.document.endpoints.items()):
        if name == DEFAULT_ENDPOINT and spec.api_key_env == "OPENAI_API_KEY" and spec.base_url is None:
            continue  # the ``provider`` row
        row = f"{PROVIDER} {name}"
        key = endpoint_key(settings, spec, environ)
        if not key:
            rows.append(
                _failed(
                    row,
                    f"endpoint {name!r} needs its key in {spec.api_key_env}, which is not set",
                    f"set {spec.api_key_env}, or change endpoints.{name}.api_key_env",
                )
            )
            continue
        base = spec.base_url or settings.openai_base_url
        url_var = f"endpoints.{name}.base_url" if spec.base_url else "OPENAI_BASE_URL"
        rows.append(
            _guarded(
                row,
                _probe(row, base, key, key_var=spec.api_key_env, url_var=url_var),
                fix=f"check endpoints.{name} and {spec.api_key_env}",
            )
        )
    return list(await asyncio.gather(*rows))


async def _failed(name: str, detail: str, fix: str) -> DoctorCheck:
    return _fail(name, detail, fix)


# ----------------------------------------------------------------------------------------- encryption


async def _encryption(settings: Settings) -> DoctorCheck:
    """Whether keys are configured and encrypt a payload that they then decrypt.

    Without a key, every prompt and output is written to Temporal history in clear text, and a client
    cannot read the jobs of workers that encrypt.
    """
    try:
        keys = load_keys(settings)
    except KeyConfigError as exc:
        return _fail(ENCRYPTION, str(exc), f"correct {KEY_FILE_ENV} or {KEYS_ENV} (docs/encryption.md)")
    if not keys:
        return _fail(
            ENCRYPTION,
            f"no key ({KEY_FILE_ENV} and {KEYS_ENV} are unset): payloads go to Temporal history in "
            "clear text",
            f"set {KEY_FILE_ENV} to the workers' key file (mode 0600, docs/encryption.md); beside "
            '`lanes dev`: eval "$(lanes dev env)"',
        )
    codec = build_codec(settings)
    assert codec is not None  # keys are configured
    namespace = settings.temporal_namespace or DEFAULT_NAMESPACE
    bound = codec.with_context(WorkflowSerializationContext(namespace=namespace, workflow_id="lanes-doctor"))
    sample = Payload(metadata={"encoding": b"json/plain"}, data=b'"lanes doctor"')
    (decoded,) = await bound.decode(await bound.encode([sample]))
    if decoded != sample:
        return _fail(ENCRYPTION, "a payload does not decrypt to what was encrypted", "report this as a bug")
    source = f"{KEY_FILE_ENV} ({settings.encryption_key_file})" if settings.encryption_key_file else KEYS_ENV
    first = next(iter(keys))
    return _ok(ENCRYPTION, f"{len(keys)} key(s) from {source}; {first!r} encrypts, and a payload round-trips")


# --------------------------------------------------------------------------------------- codec server

_CODEC_HEADERS = "content-type,x-namespace"
"""What the Temporal UI's ``/decode`` requests carry, so its preflight asks for them."""


async def _codec_server(settings: Settings) -> DoctorCheck:
    """Whether the codec server answers the UI's CORS preflight for every origin the UI may have.

    The UI calls ``/decode`` from the browser, so a codec server that is up but does not allow the
    page's origin (``localhost`` and ``127.0.0.1`` are different origins) shows only ciphertext.
    """
    if settings.codec_url is None:
        return _skip(CODEC_SERVER, "no codec server configured (LANES_CODEC_URL)")
    url = settings.codec_url.rstrip("/")
    shown = _shown_url(url)
    origins = [origin.strip() for origin in settings.codec_cors_origins.split(",") if origin.strip()]
    if not origins:
        return _fail(
            CODEC_SERVER,
            "LANES_CODEC_CORS_ORIGINS names no origin: the UI's origin cannot be checked",
            "set LANES_CODEC_CORS_ORIGINS to the Temporal UI's origins, e.g. http://localhost:8233",
        )
    refused: list[str] = []
    async with httpx2.AsyncClient(timeout=NETWORK_TIMEOUT_S) as http:
        for origin in origins:
            try:
                reply = await http.options(
                    f"{url}/decode",
                    headers={
                        "Origin": origin,
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": _CODEC_HEADERS,
                    },
                )
            except httpx2.TransportError as exc:
                return _fail(
                    CODEC_SERVER,
                    f"nothing answers at {shown}: {type(exc).__name__}",
                    "start it (`lanes codec-server`; `lanes dev` starts one), or correct LANES_CODEC_URL",
                )
            if reply.status_code == 421:
                return _fail(
                    CODEC_SERVER,
                    f"{shown} does not answer to the host name {urlsplit(url).hostname!r} (421)",
                    "add that name to the codec server's LANES_CODEC_ALLOWED_HOSTS and restart it",
                )
            if reply.headers.get("access-control-allow-origin") not in (origin, "*"):
                refused.append(f"{origin} (HTTP {reply.status_code})")
    if refused:
        return _fail(
            CODEC_SERVER,
            f"{shown} refuses the UI's origin {', '.join(refused)}: the UI shows only ciphertext",
            "add it to the codec server's LANES_CODEC_CORS_ORIGINS and restart it (here, "
            "LANES_CODEC_CORS_ORIGINS names the UI's origins to check)",
        )
    return _ok(CODEC_SERVER, f"{shown} allows the UI's origins {', '.join(origins)}")


# ---------------------------------------------------------------------------------------------- entry

_Check = Callable[[Settings], Awaitable[DoctorCheck]]

_LOCAL_CHECKS: tuple[tuple[str, _Check, str], ...] = (
    (PROVIDER, _provider, "check OPENAI_BASE_URL and OPENAI_API_KEY"),
    (ENCRYPTION, _encryption, f"check {KEY_FILE_ENV} or {KEYS_ENV} (docs/encryption.md)"),
    (CODEC_SERVER, _codec_server, "check LANES_CODEC_URL and that the codec server runs"),
)
"""The checks that need no Temporal: name, check, and the fix when it fails unexpectedly."""


async def run_checks(settings: Settings, *, environ: Mapping[str, str] | None = None) -> list[DoctorCheck]:
    """Check every part these settings point at; one row each, in a fixed order.

    Temporal, its search attributes and the workers polling the job queues (the stateless queue's too
    when ``LANES_STATELESS_TASK_QUEUE`` names one), the provider and every other endpoint of the
    policy (``provider <name>``), the encryption key, and the codec server. The parts are asked at
    once, so the whole run takes about as long as its slowest check (at most :data:`CHECK_TIMEOUT_S`
    for each).

    Args:
        settings: What a client of this environment uses (:func:`lanes.settings.load_settings`).
        environ: Where the other endpoints' keys are read (default: this environment, then a running
            ``lanes dev`` stack's, :func:`lanes.settings.client_environ`).

    Returns:
        The checks; a failed one has ``ok`` false and a ``fix``. Never raises for a check's failure.
    """
    temporal, local, endpoints = await asyncio.gather(
        _temporal_checks(settings),
        asyncio.gather(*(_guarded(name, check(settings), fix=fix) for name, check, fix in _LOCAL_CHECKS)),
        _endpoints(settings, client_environ() if environ is None else environ),
    )
    provider, *others = local
    return [*temporal, provider, *endpoints, *others]
