"""Where the claim-check codec keeps payloads too large for Temporal history.

A :class:`BlobStore` is a small async protocol (put bytes under a key, get them back) so that an object
store can replace :class:`LocalBlobStore` later without touching the codec. The codec hands the store
bytes that are already encrypted when encryption is on, and verifies a digest of them on every read, so
a store only has to keep bytes; it is trusted for availability, not for integrity or confidentiality.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class BlobNotFoundError(LookupError):
    """A claim check names a blob the store does not have (another host's directory, or deleted)."""


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by key. Keys are chosen by the codec (a content digest) and are safe file names."""

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; storing the same key twice keeps one copy."""
        ...

    async def get(self, key: str) -> bytes:
        """Return the bytes stored under ``key``.

        Raises:
            BlobNotFoundError: Nothing is stored under ``key``.
        """
        ...


class LocalBlobStore:
    """A directory of files, one per blob, created with mode 0700; files are written 0600, atomically.

    Every process that decodes (workers, clients, the codec server, a replayer) must see the same
    directory, so this store is for one host (``lanes dev``, tests); several hosts need a shared store.

    Args:
        root: The directory (``LANES_BLOB_DIR``, ``.lanes/blobs`` by default).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")  # mkstemp creates the file 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(
                f"blob {key} not found in {self.root}: claim-checked payloads are only readable where "
                "LANES_BLOB_DIR points at the directory they were written to"
            ) from None

    async def put(self, key: str, data: bytes) -> None:
        """Write the blob in a thread, so a large one never blocks the worker's event loop."""
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        """Read the blob in a thread.

        Raises:
            BlobNotFoundError: No such blob in this directory.
        """
        return await asyncio.to_thread(self._get, key)
