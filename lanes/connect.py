"""The one place where Temporal and OpenAI clients are configured.

The worker, the CLI, the demo and the tests all connect through this module, so that they agree on the
plugins (:class:`~lanes.plugin.LanesPlugin` with the converter and workflows, and OpenTelemetry's),
registered on the client only (workers inherit client plugins, and registering one twice would
duplicate every span), and on how the OpenAI client is built.

    client = await connect(Settings())
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin
from temporalio.plugin import SimplePlugin

from activities.endpoint_clients import EndpointClient, EndpointClients
from lanes.codec import build_codec
from lanes.errors import ProviderNotConfiguredError, TemporalUnreachableError
from lanes.plugin import LanesPlugin
from lanes.provider_metrics import metered_http_client
from lanes.settings import Settings
from lanes.temporal_config import connect_config
from policy import DEFAULT_ENDPOINT, CompiledPolicy
from policy.models import EndpointSpec

if TYPE_CHECKING:
    # The SDK is imported where a provider client is built: a client that only starts and reads jobs
    # (most CLI commands) never pays for importing it.
    import openai

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for the Temporal frontend before telling the user it is unreachable."""


def plugins(settings: Settings | None = None) -> list[SimplePlugin]:
    """Return the client plugins: lanes' own (converter, codec, workflows, metrics) and OpenTelemetry tracing.

    ``add_temporal_spans`` gives every activity a ``RunActivity:<name>`` span, which is where activities
    record the lane decision. Both plugins are client and worker plugins, so workers inherit them from
    the client, and the replayer takes the same list (with the same settings, to read encrypted
    histories).

    Args:
        settings: Where the encryption keys come from; with none configured (or no settings) payloads
            are written in clear text, as before encryption existed.

    Raises:
        lanes.codec.KeyConfigError: The configured keys are malformed, ambiguous or in an unsafe file.
    """
    codec = build_codec(settings) if settings is not None else None
    stateless = settings.stateless_task_queue if settings is not None else None
    separate = stateless if stateless and settings is not None and stateless != settings.task_queue else None
    return [LanesPlugin(codec, stateless_task_queue=separate), OpenTelemetryPlugin(add_temporal_spans=True)]


async def connect(settings: Settings, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Client:
    """Connect to Temporal with lanes' converter and plugins.

    Args:
        settings: Address, namespace and encryption keys to use.
        timeout_s: How long to wait for the server.

    Returns:
        A connected client.

    Raises:
        TemporalUnreachableError: The server did not answer in time.
        lanes.codec.KeyConfigError: The configured keys are malformed, ambiguous or in an unsafe file.
        lanes.temporal_config.TemporalConfigError: The Temporal profile or ``TEMPORAL_*`` variables are
            unusable.
    """
    configured = plugins(settings)
    config = connect_config(settings)
    try:
        return await asyncio.wait_for(Client.connect(**config, plugins=configured), timeout=timeout_s)
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise TemporalUnreachableError(
            f"cannot reach Temporal at {config['target_host']} (namespace "
            f"{config['namespace']!r}): {exc or type(exc).__name__}. Start the embedded stack with "
            "`lanes dev`, or set TEMPORAL_ADDRESS (or a Temporal profile) to a running server."
        ) from exc


SDK_DEFAULT_ACTIVITY_SLOTS = 100
"""Activity slots of a Temporal worker that sets none (the main queue's, unless ``LANES_WORKER_*`` says)."""


def provider_connections(settings: Settings) -> int:
    """Connections one provider client may need at once: every slot of the worker can hold one.

    A followed stream holds its connection for the whole generation, so the stream queue's slots alone
    may exceed the SDK's pool of 1,000; checks and the main queue's activities hold one per request.
    """
    tuning = settings.worker
    main = tuning.max_concurrent_activities or SDK_DEFAULT_ACTIVITY_SLOTS
    return tuning.max_concurrent_streams + tuning.max_concurrent_polls + main


def openai_client(settings: Settings) -> openai.AsyncOpenAI:
    """Build the OpenAI client that activities own.

    Temporal owns retries, so the SDK's are off: every attempt is then visible in workflow history, and
    the SDK never silently re-sends a create (it sends no idempotency key, so a retried background create
    could start a second, unlisted, billed response).

    Args:
        settings: Key and base URL. ``OPENAI_BASE_URL`` wins over the real API, which is how the embedded
            stack points the worker at the local emulator.

    Returns:
        An ``AsyncOpenAI`` with ``max_retries=0`` whose requests are counted by endpoint and status.

    Raises:
        ProviderNotConfiguredError: Neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is set.
    """
    if settings.openai_base_url is None and settings.openai_api_key is None:
        raise ProviderNotConfiguredError(
            "no model provider configured: set OPENAI_API_KEY to use OpenAI, or OPENAI_BASE_URL to use an "
            "emulator (`lanes dev` starts one and sets it for its worker)"
        )
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "emulator"
    import openai

    return openai.AsyncOpenAI(
        api_key=key,
        base_url=settings.openai_base_url,
        max_retries=0,
        # Counts provider requests by endpoint and status (lanes/provider_metrics.py).
        http_client=metered_http_client(provider_connections(settings)),
    )


def endpoint_key(settings: Settings, spec: EndpointSpec, environ: Mapping[str, str]) -> str:
    """The key an endpoint's client sends: ``OPENAI_API_KEY`` from ``settings``, else its variable.

    Empty when unset; :func:`endpoint_clients` then refuses to start and ``lanes doctor`` says so.
    """
    if spec.api_key_env == "OPENAI_API_KEY" and settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value()
    return environ.get(spec.api_key_env, "")


def endpoint_clients(
    settings: Settings, policy: CompiledPolicy, *, environ: Mapping[str, str] | None = None
) -> EndpointClients:
    """Build one OpenAI client per endpoint of the policy, once, for the process's lifetime.

    Each endpoint's key comes from the environment variable its ``api_key_env`` names, read here, at
    start: a missing key stops the worker now, naming the variable, instead of failing the first job
    routed there. The default endpoint (``openai``) keeps today's settings: ``OPENAI_BASE_URL`` when its
    ``base_url`` is unset, and ``OPENAI_API_KEY`` from ``settings`` (any placeholder is accepted when
    only a base URL is set, which is how the embedded stack talks to the emulator). Like
    :func:`openai_client`, every client has ``max_retries=0``: Temporal owns retries.

    Args:
        settings: The default endpoint's key and base URL.
        policy: The policy whose ``[endpoints]`` to serve.
        environ: Where keys are read (default ``os.environ``).

    Returns:
        The clients by endpoint name; close them (``async with``) when the worker stops.

    Raises:
        ProviderNotConfiguredError: An endpoint's key variable is unset or empty, naming it.
    """
    env = os.environ if environ is None else environ
    clients: list[EndpointClient] = []
    for name, spec in policy.document.endpoints.items():
        if name == DEFAULT_ENDPOINT and spec.base_url is None and spec.api_key_env == "OPENAI_API_KEY":
            # The default endpoint as before endpoints existed, with the same checks.
            clients.append(EndpointClient.of(name, openai_client(settings)))
            continue
        key = endpoint_key(settings, spec, env)
        if not key:
            raise ProviderNotConfiguredError(
                f"provider endpoint {name!r} of policy {policy.source} needs its key in the environment "
                f"variable {spec.api_key_env}, which is not set; set it, or change "
                f"endpoints.{name}.api_key_env"
            )
        base_url = spec.base_url or settings.openai_base_url
        import openai

        client = openai.AsyncOpenAI(
            api_key=key,
            base_url=base_url,
            max_retries=0,
            http_client=metered_http_client(provider_connections(settings)),
        )
        clients.append(EndpointClient.of(name, client))
    return EndpointClients(clients)
