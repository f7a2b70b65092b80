"""``configure_logging`` as an entry point calls it: LANES_LOG_LEVEL applies, payload loggers stay at INFO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, logging
import openai  # with OPENAI_LOG=debug it installs a root handler and sets its logger to DEBUG at import
from lanes.telemetry import PAYLOAD_LOGGERS, configure_logging
configure_logging("DEBUG")
print(json.dumps({
    "root": logging.getLogger().level,
    "handlers": len(logging.getLogger().handlers),
    "payload": {name: logging.getLogger(name).getEffectiveLevel() for name in PAYLOAD_LOGGERS},
    "openai_debug": logging.getLogger("openai._base_client").isEnabledFor(logging.DEBUG),
    "lanes_debug": logging.getLogger("lanes.policy").isEnabledFor(logging.DEBUG),
}))
"""


def test_debug_applies_after_the_openai_sdk_configured_logging_but_never_to_payload_loggers() -> None:
    env = {**os.environ, "OPENAI_LOG": "debug"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.returncode == 0, done.stderr
    levels = json.loads(done.stdout)
    assert levels["root"] == 10
    assert levels["lanes_debug"] is True
    assert levels["handlers"] == 1  # lanes' handler replaced the SDK's: one line per record, lanes' format
    assert all(level >= 20 for level in levels["payload"].values()), levels
    assert levels["openai_debug"] is False
