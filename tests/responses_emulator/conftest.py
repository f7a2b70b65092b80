from collections.abc import AsyncIterator

import openai
import pytest

from lanes.dev.emulator_server import EmulatorServer
from responses_emulator import Emulator, EmulatorConfig, ManualClock
from responses_emulator.testing import in_process_client, served_client

# Short real-time schedule for served tests: fast enough for a quick suite, long enough to observe
# queued and in_progress states and to have streams paced over several wake-ups.
FAST = EmulatorConfig(duration_s=0.6, queued_s=0.1, foreground_duration_s=0.05, output_tokens=24)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    return Emulator(EmulatorConfig(duration_s=3.0, queued_s=1.0, output_tokens=40), clock=clock)


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = in_process_client(emulator)
    yield sdk
    await sdk.close()


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(Emulator(FAST)) as running:
        yield running


@pytest.fixture
async def served(server: EmulatorServer) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = served_client(server)
    yield sdk
    await sdk.close()
