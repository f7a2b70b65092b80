"""Where a Temporal client connects, resolved as every Temporal tool resolves it.

The Temporal CLI and SDKs share one configuration: a TOML profile file (``TEMPORAL_CONFIG_FILE``, else
``~/.config/temporalio/temporal.toml``), the profile chosen by ``TEMPORAL_PROFILE`` (``default``), and
environment variables that override it (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``, ``TEMPORAL_TLS_CLIENT_CERT_PATH``, ``TEMPORAL_TLS_CLIENT_KEY_PATH``,
``TEMPORAL_TLS_SERVER_CA_CERT_PATH``, ``TEMPORAL_TLS_SERVER_NAME``, ``TEMPORAL_GRPC_META_*``). lanes reads
them with :mod:`temporalio.envconfig` rather than by hand, so a profile that works with
``temporal workflow list`` works with ``lanes`` and the worker.

On top of that, :class:`~lanes.settings.Settings` may name an address or namespace explicitly (the
embedded stack and the tests do): an explicit value wins over the profile.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig

from lanes.errors import TemporalConfigError
from lanes.settings import Settings

DEFAULT_ADDRESS = "localhost:7233"
"""Where Temporal is looked for when neither settings, environment nor profile say."""

DEFAULT_NAMESPACE = "default"
"""Namespace used when neither settings, environment nor profile say."""


def connect_config(settings: Settings, *, env: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """The keyword arguments of ``Client.connect`` for these settings.

    Args:
        settings: Explicit address and namespace, which win over the profile when set.
        env: The environment to read instead of the process's (tests pass their own).

    Returns:
        ``target_host`` and ``namespace`` always; ``api_key``, ``tls`` and ``rpc_metadata`` when the
        profile or environment configure them (an API key alone turns TLS on, as in every Temporal tool).

    Raises:
        TemporalConfigError: The profile file is malformed or the selected profile does not exist.
    """
    try:
        profile = ClientConfigProfile.load(override_env_vars=env)
    except RuntimeError as exc:  # the SDK core's ConfigError
        raise TemporalConfigError(
            f"Temporal client configuration: {exc} (check TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE, "
            "or the profile file ~/.config/temporalio/temporal.toml)"
        ) from None
    config = profile.to_client_connect_config()
    config["target_host"] = settings.temporal_address or config.get("target_host") or DEFAULT_ADDRESS
    config["namespace"] = settings.temporal_namespace or config.get("namespace") or DEFAULT_NAMESPACE
    return config
