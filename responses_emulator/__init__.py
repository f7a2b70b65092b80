"""responses_emulator."""
