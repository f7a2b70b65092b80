"""The served emulator's fixtures, shared with the emulator's own tests (an emulator on a real socket)."""

from tests.responses_emulator.conftest import served, server

__all__ = ["served", "server"]
