"""Arize Phoenix as a local trace backend for ``lanes dev --traces``: a child process, on loopback.

Phoenix is an optional extra (``pip install 'lanes[phoenix]'``, about 850 MB with its dependencies), so the
default install stays small; ``phoenix serve`` from another environment on ``PATH`` works as well. It
receives OTLP/HTTP on its UI port (``/v1/traces``), keeps its SQLite database under the stack's state
directory, and sends no usage telemetry of its own.

    async with PhoenixServer(state_dir=Path(".lanes/dev/phoenix")) as phoenix:
        env = phoenix.otlp_environment()     # OTEL_* for the worker and the CLI

Phoenix stores dotted attribute keys nested, so a filter reads ``attributes['lanes']['lane']``; its Traces
tab filters root spans only (``lanes submit``, which carries the decision), its Spans tab every span.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from lanes.dev.stack import STARTUP_TIMEOUT_S, StackError, _prepare_log, _tail, free_port, terminate

PROJECT = "lanes"
"""Phoenix project that lanes' spans go to (resource attribute ``openinference.project.name``)."""

BACKGROUND_FILTER = "attributes['lanes']['lane'] == 'background'"
"""The Phoenix filter that shows background jobs (and, with ``'stateless'`` or ``'denied'``, the others)."""

PHOENIX_STARTUP_TIMEOUT_S = max(STARTUP_TIMEOUT_S, 180.0)
"""Phoenix migrates its database and imports a large stack at start: about 25 s here, more when loaded."""


def phoenix_cli() -> str | None:
    """The ``phoenix`` executable: beside this Python (the ``lanes[phoenix]`` extra) or on ``PATH``."""
    beside = Path(sys.executable).parent / "phoenix"
    if beside.exists():
        return str(beside)
    return shutil.which("phoenix")


class PhoenixServer:
    """``phoenix serve`` as a child process.

    Args:
        state_dir: Phoenix's working directory (its database) and log.
        port: UI, REST and OTLP/HTTP port; a free one if ``None``.
    """

    def __init__(self, *, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        self.log_path = state_dir / "phoenix.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Base URL of the UI, the REST API and the OTLP/HTTP receiver."""
        return f"http://127.0.0.1:{self.port}"

    def otlp_environment(self) -> dict[str, str]:
        """``OTEL_*`` variables that send a process's spans to this Phoenix, in project :data:`PROJECT`."""
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.url,
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
        }

    async def start(self) -> None:
        """Start Phoenix and wait until it answers ``/healthz``.

        Raises:
            StackError: Phoenix is not installed, exited, or did not answer in time.
        """
        executable = phoenix_cli()
        if executable is None:
            raise StackError(
                "Arize Phoenix is not installed: pip install 'lanes[phoenix]' (or put `phoenix` on PATH)"
            )
        offset = _prepare_log(self.log_path)
        env = {
            **_environment_without_otel(),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(free_port()),
            "PHOENIX_WORKING_DIR": str(self.state_dir.resolve()),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                executable,
                "serve",
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + PHOENIX_STARTUP_TIMEOUT_S
        while not await asyncio.to_thread(self._healthy):
            if self._process.returncode is not None:
                raise StackError(
                    f"Phoenix exited with {self._process.returncode}; log {self.log_path}:\n"
                    + _tail(self.log_path)
                )
            if time.monotonic() > deadline:
                await self.stop()
                raise StackError(
                    f"Phoenix did not answer at {self.url}; log {self.log_path} from byte {offset}"
                )
            await asyncio.sleep(0.5)

    def _healthy(self) -> bool:
        url = f"{self.url}/healthz"
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as answer,
        ):
            return bool(answer.status == 200)
        return False

    async def stop(self) -> None:
        """Stop Phoenix: SIGTERM, then SIGKILL after fifteen seconds."""
        await terminate(self._process, grace_s=15)
        self._process = None

    async def __aenter__(self) -> PhoenixServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _environment_without_otel() -> dict[str, str]:
    """This environment minus ``OTEL_*``: Phoenix must not trace itself into itself (or elsewhere)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
