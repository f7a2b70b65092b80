"""The emulator's admin routes, read over HTTP.

The emulator runs in its own process (or is named by the environment), so the harness never shares a
CPU-bound event loop with it.
"""

from __future__ import annotations

from typing import Any

import httpx2

from responses_emulator import Completion, LedgerEntry, WebhookDelivery


class EmulatorAdmin:
    """``/_emulator/*`` of one emulator.

    Args:
        base_url: The API's base URL, ``http://host:port/v1``.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        root = base_url.removesuffix("/").removesuffix("/v1")
        self._http = httpx2.AsyncClient(base_url=root + "/_emulator", timeout=httpx2.Timeout(120.0))

    async def health(self) -> dict[str, Any]:
        """Counts of responses, open streams and held responses."""
        answer = await self._http.get("/health")
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    async def ledger(self) -> list[LedgerEntry]:
        """Every request the emulator answered."""
        answer = await self._http.get("/ledger")
        answer.raise_for_status()
        return [LedgerEntry.model_validate(entry) for entry in answer.json()]

    async def webhooks(self) -> list[WebhookDelivery]:
        """Every webhook delivery attempt the emulator made (or dropped)."""
        answer = await self._http.get("/webhooks")
        answer.raise_for_status()
        return [WebhookDelivery.model_validate(entry) for entry in answer.json()]

    async def completions(self) -> list[Completion]:
        """Every generated response and the time it became terminal."""
        answer = await self._http.get("/completions")
        answer.raise_for_status()
        return [Completion.model_validate(entry) for entry in answer.json()]

    async def release(self, metadata: dict[str, str]) -> int:
        """Release the held responses whose metadata has every pair of ``metadata``."""
        params = {f"metadata.{key}": value for key, value in metadata.items()}
        answer = await self._http.post("/release", params=params)
        answer.raise_for_status()
        released: int = answer.json()["released"]
        return released

    async def advance(self, seconds: float) -> float:
        """Advance a shifted clock (and wake its streams); returns the new time."""
        answer = await self._http.post("/clock/advance", params={"seconds": str(seconds)})
        answer.raise_for_status()
        now: float = answer.json()["now"]
        return now

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()
