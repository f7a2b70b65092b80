"""The prompt of ``lanes submit --input-file FILE`` (``-`` for stdin): read within a bound, or refused.

``Path.read_bytes()`` and ``sys.stdin.buffer.read()`` read until the end, and ``/dev/zero`` has none: the
CLI ran out of memory. A prompt has a hard ceiling (:data:`workflows.model_task.MAX_INPUT_CHARS`,
whatever the policy says), and a UTF-8 character is at most four bytes, so no valid prompt is longer
than ``4 * MAX_INPUT_CHARS`` bytes. The source is read in chunks up to one byte past that, and a source
that has that byte is refused without reading further.

What a path may be:

* a regular file (its size is checked before the first read);
* a pipe: ``--input-file <(command)`` names one. It is opened without blocking, so a named FIFO that
  no process has open for writing is refused at once ("no writer") instead of waiting forever; a
  writer that is connected but slow is waited for, as ``cat`` would;
* anything else (a directory, a character device such as ``/dev/zero`` or a terminal, a socket) is
  refused with what it is. ``-`` reads stdin, whatever it is (a terminal, a file, a pipe, a device),
  within the same bound.
"""

from __future__ import annotations

import errno
import os
import select
import stat

from lanes.cli.render import CliError
from workflows.model_task_io import MAX_INPUT_CHARS

__all__ = ["MAX_INPUT_BYTES", "read_input_file"]

MAX_INPUT_BYTES = 4 * MAX_INPUT_CHARS
"""The most bytes a prompt of :data:`MAX_INPUT_CHARS` UTF-8 characters can take."""

CHUNK_BYTES = 64 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _too_large(source: str) -> CliError:
    return CliError(
        f"--input-file: {source} is over {MAX_INPUT_BYTES:,} bytes, more than a prompt may hold "
        f"({MAX_INPUT_CHARS:,} characters at most, whatever the policy allows); shorten it or split the job"
    )


def _read_bounded(fd: int, source: str, *, fifo: bool = False) -> bytes:
    chunks: list[bytes] = []
    total = 0
    waited = False
    while True:
        try:
            chunk = os.read(fd, min(CHUNK_BYTES, MAX_INPUT_BYTES + 1 - total))
        except BlockingIOError:
            waited = True  # a pipe's writer is connected but has not written yet: wait for it
            select.select([fd], [], [])
            continue
        if not chunk:
            if fifo and not total and not waited:
                # Opened without blocking, a FIFO reads as ended at once when no process writes to it.
                raise CliError(
                    f"--input-file: {source} is a FIFO with no writer (or its writer wrote nothing); "
                    "start the writer first, or give a file"
                )
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_INPUT_BYTES:
            raise _too_large(source)


def _open(name: str) -> int:
    try:
        # O_NONBLOCK: opening a FIFO without a writer would otherwise block in open() itself.
        return os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        why = "no such file" if exc.errno == errno.ENOENT else (exc.strerror or type(exc).__name__)
        raise CliError(
            f"--input-file: cannot read {name}: {why}; give a UTF-8 text file, or '-' for stdin"
        ) from None


def read_input_file(name: str) -> bytes:
    """The bytes of ``name`` (``-``: stdin), at most :data:`MAX_INPUT_BYTES`.

    Raises:
        CliError: The source is over the bound, is not a regular file or a pipe, is a FIFO without a
            writer, or cannot be read; nothing is started.
    """
    if name == "-":
        try:
            return _read_bounded(0, "stdin")
        except OSError as exc:
            raise CliError(f"--input-file: cannot read stdin: {exc.strerror}") from None
    fd = _open(name)
    try:
        info = os.fstat(fd)
        for test, kind in _KINDS:
            if test(info.st_mode):
                raise CliError(
                    f"--input-file: {name} is {kind}, not a file; give a UTF-8 text file, or '-' for stdin"
                )
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_INPUT_BYTES:
            raise _too_large(name)
        return _read_bounded(fd, name, fifo=stat.S_ISFIFO(info.st_mode))
    except OSError as exc:
        raise CliError(f"--input-file: cannot read {name}: {exc.strerror}") from None
    finally:
        os.close(fd)
