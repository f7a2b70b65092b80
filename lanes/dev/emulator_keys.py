"""The keys an embedded stack gives the endpoints its emulator stands in for.

A policy names each endpoint's key variable (``endpoints.<name>.api_key_env``) and the worker refuses to
start without it, as it must in production. The embedded stack (``make demo``, ``lanes dev``) points
every endpoint without a ``base_url`` at its emulator, so it sets each of those variables for its worker
and its clients, to a placeholder of its own per endpoint: the emulator then tells the projects apart,
as OpenAI does by key, and records which requests came from a Zero Data Retention project
(``EmulatorConfig.zdr_api_keys``, the ledger's ``zdr_project``). That is how a test or the demo shows,
from the wire, that restricted data reached only the ZDR configuration.

An endpoint with its own ``base_url`` (an internal server) is not the emulator's: its key stays the
user's to set.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy import DEFAULT_ENDPOINT, CompiledPolicy

__all__ = ["DEFAULT_EMULATOR_KEY", "EmulatorKeys", "emulator_keys"]

DEFAULT_EMULATOR_KEY = "emulator"
"""The default endpoint's placeholder (``OPENAI_API_KEY``), as the embedded stack always used."""


@dataclass(frozen=True, slots=True)
class EmulatorKeys:
    """Placeholder keys for the endpoints an emulator serves."""

    environment: dict[str, str]
    """Each served endpoint's key variable and its placeholder, besides ``OPENAI_API_KEY``."""
    zdr: tuple[str, ...]
    """The placeholders of ``zdr_eligible`` endpoints: the emulator's ``zdr_api_keys``."""


def emulator_keys(policy: CompiledPolicy) -> EmulatorKeys:
    """Give every endpoint of ``policy`` without a ``base_url`` a placeholder key of its own.

    Args:
        policy: The policy the stack's worker serves.

    Returns:
        The variables to set and the keys the emulator takes for ZDR projects'.
    """
    environment: dict[str, str] = {}
    zdr: list[str] = []
    for name, spec in sorted(policy.document.endpoints.items()):
        if spec.base_url is not None:
            continue
        if spec.api_key_env == "OPENAI_API_KEY":
            key = DEFAULT_EMULATOR_KEY
        else:
            key = f"{DEFAULT_EMULATOR_KEY}-{name}" if name != DEFAULT_ENDPOINT else DEFAULT_EMULATOR_KEY
            environment[spec.api_key_env] = key
        if spec.zdr_eligible:
            zdr.append(key)
    return EmulatorKeys(environment=environment, zdr=tuple(zdr))
