"""A faithful, fault-injecting local emulator of OpenAI's Responses API.

It lets the real ``openai`` SDK run lanes' background, streaming and stateless paths with no key and
no network: in-process through ``httpx2.MockTransport(Emulator().handle)``, or over loopback HTTP
through :class:`lanes.dev.emulator_server.EmulatorServer` / ``lanes emulator``. The package imports
nothing of lanes: lanes' dev stack serves it. See ``docs/emulator.md``.
"""

from responses_emulator.clock import AdvanceableClock, Clock, ManualClock, ShiftedClock, SystemClock
from responses_emulator.completions import Completion
from responses_emulator.config import EmulatorConfig
from responses_emulator.emulator import Emulator
from responses_emulator.ledger import Ledger, LedgerEntry, WebhookDelivery

__all__ = [
    "AdvanceableClock",
    "Clock",
    "Completion",
    "Emulator",
    "EmulatorConfig",
    "Ledger",
    "LedgerEntry",
    "ManualClock",
    "ShiftedClock",
    "SystemClock",
    "WebhookDelivery",
]
