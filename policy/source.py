"""The worker's live view of the policy file: loaded once, reloaded when the file changes.

An operator edits the policy (for example flips ``background_enabled = false``) and the next job sees
it, without a worker restart. Each ``current()`` call costs one ``os.stat``; the file is parsed again
only when its modification time, size or inode changes. A broken edit never takes the lane decision
down: the last good policy keeps serving and a warning names the file and the kept digest (never the
file's contents; run ``lanes policy check FILE`` for the errors). Only the first load may raise.
"""

from __future__ import annotations

import logging
import os
import threading

from policy.compiled import CompiledPolicy
from policy.errors import PolicyFileError
from policy.loading import default_policy_path, load_policy

__all__ = ["PolicySource"]

logger = logging.getLogger("lanes.policy")

_Stamp = tuple[int, int, int]


class PolicySource:
    """A policy file watched by ``os.stat``, serving the last good policy.

    Thread-safe: activities running in a thread pool may call ``current()`` concurrently.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path: str | os.PathLike[str] = path if path is not None else default_policy_path()
        self._policy: CompiledPolicy | None = None
        self._stamp: _Stamp | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The watched file, as given (or the shipped default)."""
        return os.fspath(self._path)

    def current(self) -> CompiledPolicy:
        """Return the policy, reloading it first if the file changed since the last call.

        Returns:
            The newest valid compiled policy, or the last good one if the file became unreadable or
            invalid.

        Raises:
            PolicyFileError: The file could not be loaded and no earlier version was ever loaded.
        """
        with self._lock:
            try:
                st = os.stat(self._path)
                stamp: _Stamp | None = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if self._policy is not None and stamp is not None and stamp == self._stamp:
                return self._policy
            if self._policy is not None and stamp is None:
                if self._stamp is not None:
                    logger.warning(
                        "policy file %s cannot be read; keeping policy %s (%s)",
                        self.path,
                        self._policy.version,
                        self._policy.digest,
                    )
                    self._stamp = None
                return self._policy
            try:
                policy = load_policy(self._path)
            except PolicyFileError as exc:
                if self._policy is None:
                    raise
                # Remember the broken version so it is reported once, not parsed on every call.
                self._stamp = stamp
                logger.warning(
                    "policy file %s is invalid (%d errors); keeping policy %s (%s); "
                    "run `lanes policy check` on it for details",
                    self.path,
                    len(exc.errors),
                    self._policy.version,
                    self._policy.digest,
                )
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
            self._policy, self._stamp = policy, stamp
            return policy
