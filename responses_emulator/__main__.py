"""``python -m responses_emulator``: the same server as ``lanes emulator``, without the lanes CLI."""

from __future__ import annotations

import argparse

from responses_emulator.command import add_arguments, run


def main() -> int:
    """Parse flags and serve until interrupted.

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(prog="python -m responses_emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
