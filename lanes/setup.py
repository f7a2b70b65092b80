"""``lanes setup``: register lanes' search attributes on the namespace, once, before any worker runs.

    lanes setup              # or, where the CLI's dev tools are not installed: python -m lanes.setup

The workflow upserts :mod:`workflows.search_attributes`; on a namespace without them every workflow task
fails and jobs hang, so the worker checks at start (:func:`missing_search_attributes`) and refuses to run.
Registration goes through the operator API, which a self-hosted cluster offers; Temporal Cloud refuses it
to namespace API keys, and then :func:`setup` names the ``tcld`` and ``temporal`` commands to run instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from lanes.errors import SearchAttributesMissingError, SetupRefusedError
from workflows import search_attributes

EXIT_OK = 0
EXIT_REFUSED = 2
"""The server refused registration: an operator must run the printed commands."""

REFUSALS = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.UNAUTHENTICATED)
"""Operator-API answers that mean "not for you here" (Temporal Cloud, a restricted role)."""

SETUP_COMMAND = "lanes setup"
"""What the worker tells an operator to run when the attributes are missing."""


@dataclass(frozen=True)
class SetupResult:
    """What setup found and did."""

    namespace: str
    added: tuple[str, ...]
    present: tuple[str, ...]


def _keys() -> tuple[SearchAttributeKey[str], ...]:
    return search_attributes.ALL


def manual_commands(namespace: str, names: Sequence[str] | None = None) -> list[str]:
    """The commands that register the attributes by hand: Temporal Cloud's ``tcld``, then the CLI."""
    names = list(names) if names is not None else [key.name for key in _keys()]
    cloud = f"tcld namespace search-attributes add --namespace {namespace}" + "".join(
        f" --search-attribute {name}=Keyword" for name in names
    )
    cli = f"temporal operator search-attribute create --namespace {namespace}" + "".join(
        f" --name {name} --type Keyword" for name in names
    )
    return [cloud, cli]


async def _registered(client: Client) -> dict[str, int]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return {**dict(response.system_attributes), **dict(response.custom_attributes)}


async def missing_search_attributes(client: Client) -> list[str]:
    """Names of lanes' attributes the client's namespace lacks (or has with another type).

    Raises:
        temporalio.service.RPCError: The server would not list them (e.g. a refused operator API).
    """
    registered = await _registered(client)
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    return [key.name for key in _keys() if registered.get(key.name) != keyword]


async def require_search_attributes(client: Client) -> None:
    """Refuse to run a worker on a namespace without lanes' attributes.

    A server that refuses to list them (a restricted role) is trusted: the worker runs, and a missing
    attribute would show as failing workflow tasks rather than as a refusal to start.

    Raises:
        SearchAttributesMissingError: Some are missing; the message names them and ``lanes setup``.
    """
    try:
        missing = await missing_search_attributes(client)
    except RPCError as exc:
        if exc.status in REFUSALS:
            return
        raise
    if missing:
        raise SearchAttributesMissingError(
            f"namespace {client.namespace!r} lacks the search attributes {', '.join(missing)}; "
            f"run `{SETUP_COMMAND}` (same TEMPORAL_* settings) once, then start the worker"
        )


async def register_search_attributes(client: Client) -> SetupResult:
    """Register the missing attributes; already registered ones are left alone (idempotent).

    Raises:
        SetupRefusedError: The operator API refused (Temporal Cloud, missing permission).
    """
    try:
        missing = await missing_search_attributes(client)
        present = tuple(key.name for key in _keys() if key.name not in missing)
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes=dict.fromkeys(missing, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
                )
            )
    except RPCError as exc:
        if exc.status in REFUSALS:
            names = [key.name for key in _keys()]
            status = exc.status.name if exc.status is not None else "refused"
            raise SetupRefusedError(
                f"the server refused to register search attributes on {client.namespace!r} ({status})",
                commands=manual_commands(client.namespace, names),
            ) from None
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        # Another `lanes setup` registered them between our list and our add.
        return SetupResult(client.namespace, (), tuple(key.name for key in _keys()))
    return SetupResult(client.namespace, tuple(missing), present)


async def setup(client: Client, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Register the attributes and report; returns the exit code (0, or 2 with the manual commands)."""
    try:
        result = await register_search_attributes(client)
    except SetupRefusedError as exc:
        print(f"lanes setup: {exc}. Register them with one of:", file=err)
        for command in exc.commands:
            print(f"  {command}", file=err)
        return EXIT_REFUSED
    for name in result.added:
        print(f"registered search attribute {name} (Keyword) on {result.namespace}", file=out)
    for name in result.present:
        print(f"search attribute {name} already registered on {result.namespace}", file=out)
    return EXIT_OK


def main() -> int:
    """``python -m lanes.setup``: the same as ``lanes setup``, with only the worker's dependencies."""
    from lanes.connect import connect
    from lanes.errors import TemporalConfigError, TemporalUnreachableError
    from lanes.settings import Settings

    async def run() -> int:
        return await setup(await connect(Settings()))

    try:
        return asyncio.run(run())
    except (TemporalUnreachableError, TemporalConfigError) as exc:
        print(f"lanes setup: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    from lanes.telemetry import end_process

    end_process(main())
