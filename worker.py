"""The lanes worker's entry point; the wiring is :mod:`lanes.worker.serving`.

    python worker.py        # or: lanes worker

Settings come from the environment (``LANES_*``, ``TEMPORAL_*``, ``OPENAI_*``; ``docs/operations.md``).
"""

from lanes.telemetry import end_process
from lanes.worker.serving import main

if __name__ == "__main__":
    end_process(main())
