"""The provider clients of a process, one per policy endpoint, looked up by the endpoint's name.

A policy may send a job's calls to more than one provider endpoint (``[endpoints.<name>]``: OpenAI, an
Azure OpenAI deployment under a ZDR agreement, an internal OpenAI-compatible server). A worker serves
them all: ``lanes.connect.endpoint_clients`` builds one ``AsyncOpenAI`` per endpoint once, at start,
and every activity picks the one its decision names. ``lanes watch`` reads a job's stream through the
same lookup, so it uses the endpoint and key the job used.

    async with endpoint_clients(settings, policy) as clients:
        clients.get_client("internal").api.responses.create(...)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from policy import DEFAULT_ENDPOINT

if TYPE_CHECKING:
    import openai

__all__ = ["EndpointClient", "EndpointClients", "UnknownEndpointError"]


class UnknownEndpointError(LookupError):
    """A decision names an endpoint this process has no client for; the message says how to get one."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"no client for provider endpoint {name!r} (this process has: {', '.join(self.known)}); the "
            "policy in force names it but this process was started before it did, or with another "
            "policy: restart it with the policy (LANES_POLICY) that declares the endpoint and its key"
        )


@dataclass(frozen=True, slots=True)
class EndpointClient:
    """One endpoint's client and where it connects (for spans' ``server.address``/``server.port``)."""

    name: str
    api: openai.AsyncOpenAI
    """The SDK client (``max_retries=0``)."""
    host: str
    port: int

    @classmethod
    def of(cls, name: str, client: openai.AsyncOpenAI) -> EndpointClient:
        """Wrap a client, reading host and port from its base URL."""
        url = urlsplit(str(client.base_url))
        port = url.port or (443 if url.scheme == "https" else 80)
        return cls(name=name, api=client, host=url.hostname or "", port=port)


class EndpointClients(Mapping[str, EndpointClient]):
    """The clients of every endpoint, by name; closes them all when the process is done with them.

    Args:
        clients: One per endpoint name.
    """

    def __init__(self, clients: Iterable[EndpointClient]) -> None:
        self._clients = {client.name: client for client in clients}

    @classmethod
    def default_only(cls, client: openai.AsyncOpenAI) -> EndpointClients:
        """A single client serving the default endpoint: how lanes ran before endpoints existed."""
        return cls([EndpointClient.of(DEFAULT_ENDPOINT, client)])

    def get_client(self, name: str) -> EndpointClient:
        """The client of endpoint ``name``.

        Raises:
            UnknownEndpointError: This process has no client for it.
        """
        client = self._clients.get(name)
        if client is None:
            raise UnknownEndpointError(name, self._clients)
        return client

    def __getitem__(self, name: str) -> EndpointClient:
        return self._clients[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    async def close(self) -> None:
        """Close every client's connection pool."""
        for client in self._clients.values():
            await client.api.close()

    async def __aenter__(self) -> EndpointClients:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
