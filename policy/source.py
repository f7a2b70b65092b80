"""The worker's live view of the policy file: loaded once, reloaded when the file changes.

An operator edits the policy (for example flips ``background_enabled = false``) and the next job sees
it, without a worker restart. Each ``current()`` call costs one ``os.stat`` of the file, one of the
kill-switch sentinel and an environment lookup; the file is parsed again only when its modification
time, size or inode changes.

A broken edit never takes the lane decision down, and is never quiet: the last good policy keeps
serving. Whatever loading the new file raised (a typo, an unreadable file, a file nested deeply enough
to exhaust the TOML parser's recursion, a bug), the refusal is logged once as an ERROR on
``lanes.policy`` naming the file and where it is broken (key paths or the TOML syntax error, never the
file's values; run ``lanes policy check FILE`` for the full messages), and again only when the file
changes again: a log line per decision would bury everything else, and a traceback per decision
(the old behaviour for an unexpected exception) more so. While the file is refused every ``current()``
(one per decision) adds one to the OpenTelemetry counter ``lanes.policy.refused_decisions``, which is
what to alert on; ``status()`` reports the same state. Only the first load raises, always as
``PolicyFileError``: with no good policy there is nothing to decide with (fail closed).

The emergency kill switch lives outside the file, so no typo in an edit can defeat it: when the
environment variable ``LANES_BACKGROUND_ENABLED`` is set to anything but ``true``/``1``/``yes``/``on``
(or empty), or a file ``<policy>.background-disabled`` exists next to the policy, every decision loses
the background lane (rule ``stateless.kill-switch-override``), whatever policy is in force, the last
good one included. Both are checked on every ``current()``.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime

from opentelemetry import metrics
from pydantic import BaseModel, ConfigDict

from policy.compiled import CompiledPolicy
from policy.errors import PolicyFileError
from policy.loading import default_policy_path, load_policy
from policy.signatures import SIGNATURE_SUFFIX, PolicyTrust

__all__ = ["KILL_SWITCH_ENV", "KILL_SWITCH_SUFFIX", "PolicySource", "PolicySourceStatus"]

logger = logging.getLogger("lanes.policy")

KILL_SWITCH_ENV = "LANES_BACKGROUND_ENABLED"
"""Environment variable: any value but ``true``, ``1``, ``yes``, ``on`` (any case) or empty turns
background off, so a misspelt ``flase`` still switches it off."""
KILL_SWITCH_SUFFIX = ".background-disabled"
"""A file named ``<policy file><suffix>`` (any content, even empty) turns background off."""
_ENABLED_VALUES = frozenset({"", "true", "1", "yes", "on"})

_Stamp = tuple[int, ...]


class PolicySourceStatus(BaseModel):
    """What a ``PolicySource`` serves, for ``lanes policy status`` and health checks.

    ``version``/``digest`` are those of the policy in force (``None`` before the first load);
    ``refused_error`` is set while the file on disk is refused (its key paths or syntax error, not its
    values, or its missing signatures), since ``refused_since``; ``kill_switch`` says where an
    emergency kill switch came from.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    version: str | None
    digest: str | None
    refused_error: str | None
    refused_since: datetime | None
    kill_switch: str | None
    signed_by: list[str] = []
    """Trusted key ids whose signatures over the policy in force verified (when signatures are required)."""


_WHOLE_FILE_ERRORS = (
    "invalid TOML:",
    "cannot read policy file",
    "cannot load policy file",
    "the policy file is over",
)
"""Errors about the file as a whole (loading.py's wording), summarised up to their fix."""


def _summary(exc: PolicyFileError) -> str:
    """Where a refused file is broken, without any value from it (values may be secrets or prompts)."""
    prefix = f"{exc.source}: "
    parts: list[str] = []
    for line in exc.errors:
        text = line.removeprefix(prefix)
        if text.startswith("signatures:"):
            parts.append(text)  # key ids, digests and reasons: nothing of the file's content
        elif text.startswith(_WHOLE_FILE_ERRORS):
            parts.append(text.split("; ")[0])  # line/column, the OS error or the bound: no file content
        else:
            parts.append(text.split(": ")[0])  # the key path
    count = len(exc.errors)
    return f"{count} error{'s' if count != 1 else ''}: " + "; ".join(parts)


def _unexpected(path: str, exc: Exception) -> PolicyFileError:
    return PolicyFileError(
        [f"{path}: cannot load policy file ({type(exc).__name__}); run `lanes policy check` on it"],
        source=path,
    )


class PolicySource:
    """A policy file watched by ``os.stat``, serving the last good policy.

    Thread-safe: activities running in a thread pool may call ``current()`` concurrently.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        trust: PolicyTrust | None = None,
    ) -> None:
        """Watch ``path`` (default: the shipped policy); nothing is read until ``current()``.

        Args:
            path: The policy file.
            trust: Accept only a policy with enough valid signatures from these keys
                (``policy.signatures``); a policy without them is refused like an invalid file.
            meter_provider: Where ``lanes.policy.refused_decisions`` is counted; the global one
                (a no-op without an SDK) when ``None``.
        """
        self._path: str | os.PathLike[str] = path if path is not None else default_policy_path()
        self._sentinel = os.fspath(self._path) + KILL_SWITCH_SUFFIX
        self._trust = trust
        self._policy: CompiledPolicy | None = None
        self._stamp: _Stamp | None = None
        self._refused_error: str | None = None
        self._refused_since: datetime | None = None
        self._logged: tuple[_Stamp | None, str] | None = None
        self._kill_switch: str | None = None
        self._override: tuple[CompiledPolicy, str, CompiledPolicy] | None = None
        self._lock = threading.Lock()
        self._refused_counter = metrics.get_meter(
            "lanes.policy", meter_provider=meter_provider
        ).create_counter(
            "lanes.policy.refused_decisions",
            unit="{decision}",
            description="Policy reads (one per decision) while the policy file on disk is refused",
        )

    @property
    def path(self) -> str:
        """The watched file, as given (or the shipped default)."""
        return os.fspath(self._path)

    @property
    def kill_switch_file(self) -> str:
        """The sentinel file whose existence switches the background lane off."""
        return self._sentinel

    def status(self) -> PolicySourceStatus:
        """Report the policy in force, a refused file and the kill switch, as of the last ``current()``."""
        with self._lock:
            policy = self._policy
            return PolicySourceStatus(
                path=self.path,
                version=policy.version if policy is not None else None,
                digest=policy.digest if policy is not None else None,
                refused_error=self._refused_error,
                refused_since=self._refused_since,
                kill_switch=self._kill_switch,
                signed_by=list(policy.signed_by) if policy is not None else [],
            )

    def current(self) -> CompiledPolicy:
        """Return the policy, reloading it first if the file changed since the last call.

        Returns:
            The newest valid compiled policy, or the last good one if the file became unreadable or
            invalid; with the background lane switched off when the emergency kill switch is on.

        Raises:
            PolicyFileError: The file could not be loaded and no earlier version was ever loaded.
        """
        with self._lock:
            policy = self._refresh()
            if self._refused_error is not None:
                self._refused_counter.add(1, {"lanes.policy.file": self.path})
            origin = self._kill_switch_origin()
            self._kill_switch = origin
            if origin is None:
                self._override = None
                return policy
            if self._override is None or self._override[0] is not policy or self._override[1] != origin:
                logger.warning("background lane switched off by the emergency kill switch: %s", origin)
                self._override = (policy, origin, policy.without_background(origin))
            return self._override[2]

    def _signature_stamp(self) -> tuple[int, ...]:
        """The signature file's state, so that signing a refused policy takes effect at the next call."""
        if self._trust is None:
            return ()
        try:
            st = os.stat(os.fspath(self._path) + SIGNATURE_SUFFIX)
        except OSError:
            return (-1,)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _kill_switch_origin(self) -> str | None:
        value = os.environ.get(KILL_SWITCH_ENV)
        if value is not None and value.strip().lower() not in _ENABLED_VALUES:
            return f"environment {KILL_SWITCH_ENV}={value!r}"
        if os.path.lexists(self._sentinel):
            return f"file {self._sentinel}"
        return None

    def _refuse(self, stamp: _Stamp | None, error: str, policy: CompiledPolicy) -> None:
        if self._refused_error is None:
            self._refused_since = datetime.now(UTC)
        self._refused_error = error
        if self._logged == (stamp, error):
            return  # this version of the file was reported already
        self._logged = (stamp, error)
        logger.error(
            "policy file %s is refused since %s (%s); deciding with the last good policy %s (%s); "
            "run `lanes policy check %s` for details",
            self.path,
            self._refused_since.isoformat() if self._refused_since else "?",
            error,
            policy.version,
            policy.digest,
            self.path,
        )

    def _refresh(self) -> CompiledPolicy:
        unreadable = ""
        try:
            st = os.stat(self._path)
            stamp: _Stamp | None = (st.st_mtime_ns, st.st_size, st.st_ino, *self._signature_stamp())
        except OSError as exc:
            stamp = None
            unreadable = exc.strerror or type(exc).__name__
        if self._policy is not None and stamp is not None and stamp == self._stamp:
            return self._policy
        if self._policy is not None and stamp is None:
            self._stamp = None
            self._refuse(None, f"1 error: cannot read policy file ({unreadable})", self._policy)
            return self._policy
        try:
            policy = load_policy(self._path)
            if self._trust is not None:
                policy = policy.with_signatures(self._trust.signed_by(policy, self._path))
        except Exception as exc:
            # load_policy turns every failure into PolicyFileError; anything else is a bug, and still
            # a file that cannot be used: it must not take every decision down with it.
            error = exc if isinstance(exc, PolicyFileError) else _unexpected(self.path, exc)
            if self._policy is None:
                if error is exc:
                    raise
                raise error from exc
            # Remember the broken version so it is parsed once, not on every call.
            self._stamp = stamp
            self._refuse(stamp, _summary(error), self._policy)
            return self._policy
        if self._policy is not None and policy.digest != self._policy.digest:
            logger.info(
                "policy file %s reloaded: %s (%s) -> %s (%s)",
                self.path,
                self._policy.version,
                self._policy.digest,
                policy.version,
                policy.digest,
            )
        if self._refused_error is not None:
            logger.info("policy file %s is accepted again: %s (%s)", self.path, policy.version, policy.digest)
        self._policy, self._stamp = policy, stamp
        self._refused_error = self._refused_since = None
        self._logged = None
        return policy
