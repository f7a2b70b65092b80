"""Payload codecs: AES-256-GCM encryption of every payload, and a claim check for large ones.

With keys configured (``LANES_ENCRYPTION_KEYS`` or ``LANES_ENCRYPTION_KEY_FILE``), every payload lanes
writes to Temporal (workflow and activity inputs and results, heartbeat details, failure details, and
failure messages and stack traces through the encoded-attributes failure converter) is encrypted before
it leaves the process; Temporal's history, UI and database only ever hold ciphertext. The codec server
(``client/codec_server.py``) decrypts for the UI and CLI of those who hold the key.

Encoding runs :class:`EncryptionCodec` then :class:`ClaimCheckCodec`, so a payload too large for history is
stored encrypted in the blob store; decoding runs them in reverse.

Keys have ids. The first configured key encrypts; every configured key decrypts. To rotate, put a new key
first and keep the old ones until no running workflow or retained history needs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from client.blobs import BlobStore, LocalBlobStore
from client.settings import Settings

ENCODING = "encoding"
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
CLAIM_CHECK_ENCODING = b"binary/claim-check"
CLAIM_CHECK_KEY_METADATA = "claim-check-key"
CLAIM_CHECK_DIGEST_METADATA = "claim-check-digest"

NONCE_BYTES = 12
KEY_BYTES = 32
DEFAULT_CLAIM_CHECK_THRESHOLD = 256 * 1024
"""Payloads larger than this (after encryption) go to the blob store: Temporal warns at 256-512 KiB and
refuses 2 MiB."""

KEYS_ENV = "LANES_ENCRYPTION_KEYS"
KEY_FILE_ENV = "LANES_ENCRYPTION_KEY_FILE"
LOCAL_KEY_FILE = "encryption.keys"
"""Name of the key file :func:`ensure_local_key` creates in the embedded stack's state directory."""

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_GENERATE = "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"


class CodecError(ValueError):
    """A payload cannot be decoded: unknown key, tampered ciphertext, or a claim check that fails."""


class UnknownEncryptionKeyError(CodecError):
    """A payload was encrypted with a key id that is not configured here."""


class KeyConfigError(ValueError):
    """The configured keys are malformed, ambiguous or in an unsafe file. The message says how to fix it."""


# ---------------------------------------------------------------------------------------------- keys


def parse_keys(text: str, *, source: str) -> dict[str, bytes]:
    """Parse ``id=base64key`` entries separated by commas or newlines (``#`` starts a comment line).

    Args:
        text: The entries.
        source: What they came from (``LANES_ENCRYPTION_KEYS`` or the key file), for error messages.

    Returns:
        Keys by id, in the configured order: the first one encrypts.

    Raises:
        KeyConfigError: An entry is malformed, an id repeats, a key is not 32 bytes of base64, or there is
            no key at all. The message names the source and the key id, never the key.
    """
    keys: dict[str, bytes] = {}
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    entries = [e.strip() for line in lines for e in line.split(",")]
    for number, entry in enumerate((e for e in entries if e), start=1):
        key_id, sep, encoded = entry.partition("=")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.match(key_id):
            raise KeyConfigError(
                f"{source}: entry {number} is not `id=base64key` (the id is 1-64 letters, digits, '.', '_' "
                f"or '-'); write it as e.g. `k2026=<key>` with a key from `{_GENERATE}`"
            )
        if key_id in keys:
            raise KeyConfigError(f"{source}: key id {key_id!r} appears twice; give each key its own id")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyConfigError(
                f"{source}: key {key_id!r} is not valid base64; generate one with `{_GENERATE}`"
            ) from None
        if len(key) != KEY_BYTES:
            raise KeyConfigError(
                f"{source}: key {key_id!r} is {len(key)} bytes, AES-256 needs {KEY_BYTES}; generate one "
                f"with `{_GENERATE}`"
            )
        keys[key_id] = key
    if not keys:
        raise KeyConfigError(f"{source}: no key configured; expected `id=base64key[,id2=base64key2]`")
    return keys


def read_key_file(path: Path) -> dict[str, bytes]:
    """Read a key file, refusing one that group or others can access.

    Raises:
        KeyConfigError: The file is missing, accessible by group/others, or malformed.
    """
    source = f"{KEY_FILE_ENV} ({path})"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyConfigError(f"{source}: no such file") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyConfigError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )
    return parse_keys(path.read_text(encoding="utf-8"), source=source)


def load_keys(settings: Settings) -> dict[str, bytes]:
    """The configured keys, first one encrypting; empty when encryption is off.

    Raises:
        KeyConfigError: Both variables are set, or the keys are malformed or in an unsafe file.
    """
    if settings.encryption_keys is not None and settings.encryption_key_file is not None:
        raise KeyConfigError(
            f"both {KEYS_ENV} and {KEY_FILE_ENV} are set; set only one, so that it is clear which key "
            "encrypts"
        )
    if settings.encryption_keys is not None:
        return parse_keys(settings.encryption_keys.get_secret_value(), source=KEYS_ENV)
    if settings.encryption_key_file is not None:
        return read_key_file(settings.encryption_key_file)
    return {}


def new_key_entry(key_id: str) -> str:
    """A fresh ``id=base64key`` entry with a random 32-byte key, for a key file or the variable."""
    if not _KEY_ID.match(key_id):
        raise KeyConfigError(f"invalid key id {key_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return f"{key_id}={base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def ensure_local_key(state_dir: Path) -> Path:
    """Create the embedded stack's key file if absent; return its path, for ``LANES_ENCRYPTION_KEY_FILE``.

    ``state_dir`` is made mode 0700 (it also holds the dev server's database) and the file is created
    0600 with one random key, so ``lanes dev`` encrypts its history without any setup. An existing file
    is kept (its keys decrypt the existing history) and checked like any key file.

    Raises:
        KeyConfigError: An existing file is accessible by group/others or malformed.
    """
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    path = state_dir / LOCAL_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        read_key_file(path)
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# lanes dev encryption key; keep it to read this stack's history\n")
        out.write(new_key_entry(f"local-{os.urandom(4).hex()}") + "\n")
    return path


# -------------------------------------------------------------------------------------------- codecs


def _encoding(payload: Payload) -> bytes:
    return payload.metadata.get(ENCODING, b"")


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the serialized payload, with the key id in metadata and as associated data.

    Each payload becomes ``encoding=binary/encrypted``, ``encryption-key-id=<id>`` and
    ``nonce (12 random bytes) || ciphertext || tag``. The key id is bound as associated data, so a payload
    relabelled with another id fails to decrypt. Payloads without the encrypted encoding pass through
    on decode (histories written before encryption was turned on).

    Args:
        keys: Keys by id; the first encrypts, all decrypt.
    """

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise KeyConfigError("EncryptionCodec needs at least one key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.key_id = next(iter(keys))
        """The id of the key that encrypts."""

    @property
    def key_ids(self) -> list[str]:
        """Every id this codec decrypts, the encrypting one first."""
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the first key."""
        cipher = self._ciphers[self.key_id]
        aad = self.key_id.encode()
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            out.append(
                Payload(
                    metadata={ENCODING: ENCRYPTED_ENCODING, KEY_ID_METADATA: aad},
                    data=nonce + cipher.encrypt(nonce, payload.SerializeToString(), aad),
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads with the key their metadata names; pass others through.

        Raises:
            UnknownEncryptionKeyError: The key id is not configured here.
            CodecError: The ciphertext or its metadata was altered, or it is not a payload.
        """
        out = []
        for payload in payloads:
            if _encoding(payload) != ENCRYPTED_ENCODING:
                out.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise UnknownEncryptionKeyError(
                    f"payload encrypted with key id {key_id!r}, which is not configured here (known: "
                    f"{', '.join(self._ciphers)}); add that key to {KEYS_ENV} or {KEY_FILE_ENV}, after "
                    "the encrypting one"
                )
            data = payload.data
            try:
                plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
            except InvalidTag:
                raise CodecError(
                    f"payload encrypted with key id {key_id!r} failed authentication: it was altered, "
                    "or encrypted with a different key under the same id"
                ) from None
            out.append(Payload.FromString(plain))
        return out


class ClaimCheckCodec(PayloadCodec):
    """Moves payloads larger than ``threshold`` bytes to a blob store, leaving a small reference.

    The reference has ``encoding=binary/claim-check``, ``claim-check-key`` (the store key) and
    ``claim-check-digest`` (``sha256:<hex>`` of the stored bytes, checked on every read) and no data.

    Args:
        store: Where the large payloads go.
        threshold: Serialized size in bytes above which a payload is stored aside; ``None`` never stores.
    """

    def __init__(self, store: BlobStore, *, threshold: int | None = DEFAULT_CLAIM_CHECK_THRESHOLD) -> None:
        self.store = store
        self.threshold = threshold
        """``None`` never stores a payload aside (decode-only, as the codec server uses it)."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Replace each payload above the threshold by a reference to its stored copy."""
        out = []
        for payload in payloads:
            if self.threshold is None or payload.ByteSize() <= self.threshold:
                out.append(payload)
                continue
            blob = payload.SerializeToString()
            digest = hashlib.sha256(blob).hexdigest()
            key = f"sha256-{digest}"
            await self.store.put(key, blob)
            out.append(
                Payload(
                    metadata={
                        ENCODING: CLAIM_CHECK_ENCODING,
                        CLAIM_CHECK_KEY_METADATA: key.encode(),
                        CLAIM_CHECK_DIGEST_METADATA: f"sha256:{digest}".encode(),
                    }
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Fetch referenced payloads and check their digest; pass others through.

        Raises:
            CodecError: The stored bytes do not match the digest in history.
            client.blobs.BlobNotFoundError: The store does not have the blob.
        """
        out = []
        for payload in payloads:
            if _encoding(payload) != CLAIM_CHECK_ENCODING:
                out.append(payload)
                continue
            key = payload.metadata.get(CLAIM_CHECK_KEY_METADATA, b"").decode()
            expected = payload.metadata.get(CLAIM_CHECK_DIGEST_METADATA, b"").decode()
            blob = await self.store.get(key)
            actual = f"sha256:{hashlib.sha256(blob).hexdigest()}"
            if actual != expected:
                raise CodecError(
                    f"claim-checked blob {key} does not match the digest in history ({expected}, read "
                    f"{actual}): the blob store returned altered or corrupted bytes"
                )
            out.append(Payload.FromString(blob))
        return out


class ChainCodec(PayloadCodec):
    """Applies codecs in order on encode and in reverse order on decode."""

    def __init__(self, codecs: Iterable[PayloadCodec]) -> None:
        self.codecs = list(codecs)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encode through every codec, first to last."""
        out = list(payloads)
        for codec in self.codecs:
            out = await codec.encode(out)
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decode through every codec, last to first."""
        out = list(payloads)
        for codec in reversed(self.codecs):
            out = await codec.decode(out)
        return out


def build_codec(settings: Settings, *, claim_check: bool = True) -> PayloadCodec | None:
    """The codec the settings configure: encryption then claim check, or ``None`` without keys.

    Args:
        settings: Keys, blob directory and claim-check threshold.
        claim_check: Whether large payloads are moved to the blob store on encode. The codec server
            passes ``False`` so that ``/encode`` never writes a blob for a caller; it still *reads*
            claim checks on decode, so the UI shows large payloads.

    Raises:
        KeyConfigError: The keys are malformed, ambiguous or in an unsafe file.
    """
    keys = load_keys(settings)
    if not keys:
        return None
    store = LocalBlobStore(settings.blob_dir)
    threshold = settings.claim_check_threshold if claim_check else None
    return ChainCodec([EncryptionCodec(keys), ClaimCheckCodec(store, threshold=threshold)])


def codec_encrypts(codec: PayloadCodec | None) -> bool:
    """Whether ``codec`` is, or chains, an :class:`EncryptionCodec`."""
    if isinstance(codec, EncryptionCodec):
        return True
    if isinstance(codec, ChainCodec):
        return any(codec_encrypts(c) for c in codec.codecs)
    return False


def encrypts(client: Client) -> bool:
    """Whether payloads this client (and the workers built from it) writes to history are encrypted.

    The workflow and CLI ask this to refuse data classes that require encryption when no key is set.
    """
    return codec_encrypts(client.data_converter.payload_codec)
