"""``python -m responses_emulator``: the same server as ``lanes emulator``, without the lanes CLI."""

from __future__ import annotations

from responses_emulator.command import main

if __name__ == "__main__":
    main()
