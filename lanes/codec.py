"""Payload codecs: AES-256-GCM encryption of every payload, and a claim check for large ones.

With keys configured (``LANES_ENCRYPTION_KEYS`` or ``LANES_ENCRYPTION_KEY_FILE``), every payload lanes
writes to Temporal (workflow and activity inputs and results, heartbeat details, failure details, and
failure messages and stack traces through the encoded-attributes failure converter) is encrypted before
it leaves the process; Temporal's history, UI and database only ever hold ciphertext. The codec server
(``lanes/servers/codec_server.py``) decrypts for the UI and CLI of those who hold the key.

Encoding runs :class:`EncryptionCodec` then :class:`ClaimCheckCodec`, so a payload too large for history is
stored encrypted in the blob store; decoding runs them in reverse.

Keys have ids. The first configured key encrypts; every configured key decrypts. To rotate, put a new key
first and keep the old ones until no running workflow or retained history needs them.

Each payload is bound to its namespace and workflow id (format 2, through the SDK's serialization
context), so ciphertext copied into another workflow is refused; with keys configured, clear text is
refused wherever a workflow's payloads are decoded. In a worker a refused payload becomes a marker the SDK
cannot convert, so a forged signal is dropped instead of wedging its job (:func:`for_workers`). See
``docs/encryption.md``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import errno
import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import ReplayerConfig, WorkerConfig

from lanes.blobs import BlobNotFoundError, BlobStore, LocalBlobStore
from lanes.errors import KeyConfigError, UndecodablePayloadError
from lanes.settings import Settings

logger = logging.getLogger(__name__)

ENCODING = "encoding"
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
CLAIM_CHECK_ENCODING = b"binary/claim-check"
CLAIM_CHECK_KEY_METADATA = "claim-check-key"
CLAIM_CHECK_DIGEST_METADATA = "claim-check-digest"
CONTEXT_METADATA = "encryption-context"
"""Format 2: the :func:`context_label` a payload is bound to. Its absence marks a format-1 payload."""
CLAIM_CHECK_CONTEXT_METADATA = "claim-check-context"
CLAIM_CHECK_KEY_ID_METADATA = "claim-check-key-id"
CLAIM_CHECK_MAC_METADATA = "claim-check-mac"
REJECTED_ENCODING = b"binary/lanes-rejected"
"""A payload a worker's codec refused (:func:`for_workers`): no converter knows it, so the SDK drops a
signal that carries one instead of failing every workflow task of the job."""
REJECTED_REASON_METADATA = "lanes-rejected-reason"

NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
DEFAULT_CLAIM_CHECK_THRESHOLD = 256 * 1024
"""Payloads larger than this (after encryption) go to the blob store: Temporal warns at 256-512 KiB and
refuses 2 MiB."""

KEYS_ENV = "LANES_ENCRYPTION_KEYS"
KEY_FILE_ENV = "LANES_ENCRYPTION_KEY_FILE"
ALLOW_PLAINTEXT_ENV = "LANES_ENCRYPTION_ALLOW_PLAINTEXT"

TEMPORAL_CONSTANT_PAYLOADS: frozenset[tuple[bytes, bytes]] = frozenset(
    {
        # ActivityTaskCanceled's details when an activity is cancelled before a worker started it: the
        # server writes them itself, so they can never be encrypted.
        (b"json/plain", b'"ACTIVITY_ID_NOT_STARTED"'),
    }
)
"""Clear-text payloads that Temporal's server writes into history itself, as ``(encoding, data)``.

A bound decoder admits exactly these among clear-text payloads: each is a fixed constant with no metadata
but its encoding, so a caller who forges one carries nothing of their own. Refusing them wedged every job
whose activity was cancelled before it started."""
BLOB_DIR_ENV = "LANES_BLOB_DIR"
MAX_KEY_FILE_BYTES = 64 * 1024
LOCAL_KEY_FILE = "encryption.keys"
"""Name of the key file :func:`ensure_local_key` creates in the embedded stack's state directory."""

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_BLOB_KEY = re.compile(rb"sha256-([0-9a-f]{64})")
_GENERATE = "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"


class CodecError(ValueError):
    """A payload cannot be decoded: unknown key, tampered ciphertext, or a claim check that fails."""


class UnknownEncryptionKeyError(CodecError, UndecodablePayloadError):
    """A payload was encrypted with a key id that is not configured here."""


class PlaintextRefusedError(CodecError):
    """A payload is not encrypted although keys are configured (and plaintext is not allowed)."""


class ContextMismatchError(CodecError):
    """A payload is bound to another workflow (or namespace) than the one decoding it."""


class ClaimCheckError(CodecError):
    """A claim-check reference is malformed or fails its MAC, or its blob is missing or altered."""


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
    """Read a key file, refusing one that group or others can access, or that is not a regular file.

    The file is opened non-blocking and checked with ``fstat`` before any read, so a FIFO never hangs the
    process and a directory or device is named as such; the checks apply to the file actually opened.

    Raises:
        KeyConfigError: The file is missing, unreadable, not a regular file, accessible by group/others,
            larger than a key file can be, not UTF-8, or malformed.
    """
    source = f"{KEY_FILE_ENV} ({path})"
    not_a_file = KeyConfigError(
        f"{source}: not a regular file (a directory, FIFO, socket or device); point it at the key file itself"
    )
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a socket cannot even be opened: say what it is
            raise not_a_file
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise KeyConfigError(f"{source}: no such file") from None
    except OSError as exc:
        raise KeyConfigError(
            f"{source}: cannot be opened ({exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}); "
            "point it at a key file this user can read"
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced since the check above
            raise not_a_file
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyConfigError(
                f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}`"
            )
        chunks, size = [], 0
        while chunk := os.read(fd, 8192):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_KEY_FILE_BYTES:
                raise KeyConfigError(
                    f"{source}: larger than {MAX_KEY_FILE_BYTES} bytes, which no key file is; point it at "
                    "the key file"
                )
    except OSError as exc:
        raise KeyConfigError(f"{source}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise KeyConfigError(f"{source}: not UTF-8 text; expected `id=base64key` lines") from None
    return parse_keys(text, source=source)


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

    A missing ``state_dir`` is created mode 0700 (it also holds the dev server's database); an existing
    one is left as it is: it may be a directory the user chose (``--state-dir .``), whose mode is theirs
    to decide, and what protects the key is the key file's own mode. The file is created 0600 (``O_EXCL``,
    so never through a planted symlink) with one random key, so ``lanes dev`` encrypts its history without
    any setup. An existing file is kept (its keys decrypt the existing history) and checked like any key
    file.

    Raises:
        KeyConfigError: An existing file is accessible by group/others, not a regular file, or malformed.
    """
    if not state_dir.exists():
        state_dir.mkdir(mode=0o700, parents=True)
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


def _temporal_constant(payload: Payload) -> bool:
    """Whether ``payload`` is exactly one of :data:`TEMPORAL_CONSTANT_PAYLOADS` (nothing else in metadata)."""
    return len(payload.metadata) == 1 and (_encoding(payload), payload.data) in TEMPORAL_CONSTANT_PAYLOADS


def _encoding(payload: Payload) -> bytes:
    return payload.metadata.get(ENCODING, b"")


def context_label(namespace: str, workflow_id: str) -> bytes:
    """The canonical, unambiguous form of a payload's context: ``<namespace>/<workflow id>``.

    Both parts are percent-encoded with no safe characters, so ``/`` (and any byte that is not a letter,
    digit or ``_.-~``) inside either part is escaped and exactly one ``/`` separates them: two different
    contexts never share a label. It is written in clear next to each payload (it names only where the
    payload belongs, which Temporal shows anyway) and bound into its authentication.
    """
    return f"{quote(namespace, safe='')}/{quote(workflow_id, safe='')}".encode()


def _label_of(context: SerializationContext) -> bytes | None:
    """The label payloads are bound to in ``context``; ``None`` for a context without a workflow.

    A workflow's own payloads (input, result, signals, queries, updates, memo) come with a
    :class:`WorkflowSerializationContext`; its activities' inputs, results, heartbeats and failures with an
    :class:`ActivitySerializationContext` naming the same workflow. Both bind to the workflow, so an
    activity result is bound to the job that scheduled it. Standalone activities and Nexus operations have
    no workflow id: their payloads are written unbound (lanes uses neither).
    """
    if (
        isinstance(context, (WorkflowSerializationContext, ActivitySerializationContext))
        and context.workflow_id is not None
    ):
        return context_label(context.namespace, context.workflow_id)
    return None


def _payload_aad(key_id: str, label: bytes) -> bytes:
    # Format 2: a key id never holds a NUL, nor "/" (see _KEY_ID), and a label never holds a NUL, so
    # this never equals another key id and label, nor a format-1 associated data (the bare key id).
    return b"lanes-payload-v2\0" + key_id.encode() + b"\0" + label


def _stated_key_id(payload: Payload, metadata: str) -> str:
    raw = payload.metadata.get(metadata, b"")
    try:
        key_id = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError(f"malformed payload: its {metadata} is not UTF-8") from None
    if not _KEY_ID.match(key_id):
        raise CodecError(
            f"malformed payload: its {metadata} is not a key id (1-64 letters, digits, '.', '_' or '-')"
        )
    return key_id


def _parse_payload(data: bytes, what: str) -> Payload:
    try:
        return Payload.FromString(data)
    except DecodeError:
        raise CodecError(f"malformed payload: {what} is not a serialized payload") from None


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """AES-256-GCM over the serialized payload, bound to its key id and to the workflow it belongs to.

    Each payload becomes ``encoding=binary/encrypted``, ``encryption-key-id=<id>``,
    ``encryption-context=<namespace>/<workflow id>`` (:func:`context_label`) and
    ``nonce (12 random bytes) || ciphertext || tag``. The key id and the context are the GCM associated
    data, so a payload relabelled with another key id or context fails authentication, and a codec bound
    to a context (:meth:`with_context`, as the SDK does for every workflow and activity payload) refuses a
    payload that states another: an input copied from one job's history into a new workflow never runs.

    Payloads written before contexts existed (format 1: no ``encryption-context``, the key id alone as
    associated data) stay readable. A codec without a context (the codec server, tools reading a history)
    decrypts a payload under the context it states.

    A codec bound to a workflow refuses payloads that are not encrypted (:class:`PlaintextRefusedError`):
    with keys configured, a clear-text payload can only come from someone who reached Temporal without the
    key, such as a ``temporal workflow signal`` forging a job's result. ``allow_plaintext`` admits them, for
    histories recorded before encryption was turned on. The SDK binds the codec of every worker and client
    call; an unbound codec (the codec server, tools reading a history) decodes for display and returns clear
    text as it is: what it returns is shown, never acted on.

    Args:
        keys: Keys by id; the first encrypts, all decrypt.
        allow_plaintext: Pass payloads that are not encrypted through on decode (``LANES_ENCRYPTION_ALLOW_
            PLAINTEXT``), instead of refusing them.
    """

    def __init__(self, keys: Mapping[str, bytes], *, allow_plaintext: bool = False) -> None:
        if not keys:
            raise KeyConfigError("EncryptionCodec needs at least one key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.key_id = next(iter(keys))
        """The id of the key that encrypts."""
        self.allow_plaintext = allow_plaintext
        self.context: bytes | None = None
        """The :func:`context_label` this copy binds to and requires; ``None`` for an unbound codec."""

    @property
    def key_ids(self) -> list[str]:
        """Every id this codec decrypts, the encrypting one first."""
        return list(self._ciphers)

    def with_context(self, context: SerializationContext) -> Self:
        """A copy bound to the workflow of ``context`` (the SDK calls this for every payload it codes)."""
        bound = copy.copy(self)
        bound.context = _label_of(context)
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the first key, bound to this codec's context when it has one."""
        cipher = self._ciphers[self.key_id]
        metadata = {ENCODING: ENCRYPTED_ENCODING, KEY_ID_METADATA: self.key_id.encode()}
        if self.context is None:
            aad = self.key_id.encode()
        else:
            metadata[CONTEXT_METADATA] = self.context
            aad = _payload_aad(self.key_id, self.context)
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            out.append(
                Payload(
                    metadata=metadata, data=nonce + cipher.encrypt(nonce, payload.SerializeToString(), aad)
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each payload with the key and under the context its metadata names.

        Raises:
            PlaintextRefusedError: A payload is not encrypted (and plaintext is not allowed).
            UnknownEncryptionKeyError: The key id is not configured here.
            ContextMismatchError: The payload belongs to another workflow than this codec's context.
            CodecError: The ciphertext or its metadata was altered or is malformed.
        """
        return [self._decode_one(payload) for payload in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if _encoding(payload) != ENCRYPTED_ENCODING:
            if self.allow_plaintext or self.context is None or _temporal_constant(payload):
                # Unbound decoders (the codec server, history tools) decode for display: clear text in
                # history (headers, which Temporal never encodes, or pre-encryption events) is shown as it is.
                return payload
            raise PlaintextRefusedError(
                "refused a payload that is not encrypted: with encryption keys configured, clear text "
                "can only come from someone who reached Temporal without the key. For histories recorded "
                f"before encryption was turned on, set {ALLOW_PLAINTEXT_ENV}=true"
            )
        key_id = _stated_key_id(payload, KEY_ID_METADATA)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownEncryptionKeyError(
                f"payload encrypted with key id {key_id!r}, which is not configured here; add that key to "
                f"{KEYS_ENV} or {KEY_FILE_ENV}, after the encrypting one"
            )
        if CONTEXT_METADATA in payload.metadata:
            stated = payload.metadata[CONTEXT_METADATA]
            if self.context is not None and stated != self.context:
                raise ContextMismatchError(
                    "refused an encrypted payload that belongs to another workflow or namespace: it was "
                    "copied from another workflow's history"
                )
            aad = _payload_aad(key_id, stated)
        else:
            aad = key_id.encode()  # format 1, written before payloads were bound to their workflow
        data = payload.data
        if len(data) < NONCE_BYTES + TAG_BYTES:
            raise CodecError(
                f"malformed encrypted payload: {len(data)} bytes, shorter than its nonce and tag "
                f"({NONCE_BYTES + TAG_BYTES})"
            )
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], aad)
        except InvalidTag:
            raise CodecError(
                f"payload encrypted with key id {key_id!r} failed authentication: it was altered or "
                "relabelled, or encrypted with a different key under the same id"
            ) from None
        return _parse_payload(plain, "its plaintext")


def _mac_key(key: bytes) -> bytes:
    """The claim-check MAC key derived from an encryption key (HKDF-SHA256), never the key itself."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=b"lanes claim-check reference v2").derive(key)


def _reference_mac(mac_key: bytes, key_id: str, label: bytes, blob_key: str, digest: str) -> str:
    message = b"\0".join(
        [b"lanes-claim-check-v2", key_id.encode(), label, blob_key.encode(), digest.encode()]
    )
    return hmac.new(mac_key, message, hashlib.sha256).hexdigest()


class ClaimCheckCodec(PayloadCodec, WithSerializationContext):
    """Moves payloads larger than ``threshold`` bytes to a blob store, leaving a small signed reference.

    The reference has ``encoding=binary/claim-check``, ``claim-check-key`` (the store key,
    ``sha256-<hex>``), ``claim-check-digest`` (``sha256:<hex>`` of the stored bytes, checked on every
    read), ``claim-check-context`` (the :func:`context_label` of its workflow, when bound),
    ``claim-check-key-id`` and ``claim-check-mac``: an HMAC-SHA256 over the context, the store key and the
    digest, with a key derived by HKDF from the encryption key of that id. A reference copied into another
    workflow, or repointed at another blob, fails; so does one whose MAC was stripped to pass it off as a
    reference written before references were signed, because the blob it points at is then a bound
    (format 2) payload, which only a signed reference can carry.

    Args:
        store: Where the large payloads go.
        keys: The encryption keys by id, the first signing: the MAC keys are derived from them.
        threshold: Serialized size in bytes above which a payload is stored aside; ``None`` never stores.
    """

    def __init__(
        self,
        store: BlobStore,
        keys: Mapping[str, bytes],
        *,
        threshold: int | None = DEFAULT_CLAIM_CHECK_THRESHOLD,
    ) -> None:
        if not keys:
            raise KeyConfigError("ClaimCheckCodec needs at least one key")
        self.store = store
        self.threshold = threshold
        """``None`` never stores a payload aside (decode-only, as the codec server uses it)."""
        self._mac_keys = {key_id: _mac_key(key) for key_id, key in keys.items()}
        self._key_id = next(iter(keys))
        self.context: bytes | None = None
        """The :func:`context_label` this copy signs and requires; ``None`` for an unbound codec."""

    def with_context(self, context: SerializationContext) -> Self:
        """A copy bound to the workflow of ``context``."""
        bound = copy.copy(self)
        bound.context = _label_of(context)
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Replace each payload above the threshold by a signed reference to its stored copy."""
        out = []
        label = self.context or b""
        for payload in payloads:
            if self.threshold is None or payload.ByteSize() <= self.threshold:
                out.append(payload)
                continue
            blob = payload.SerializeToString()
            hexdigest = hashlib.sha256(blob).hexdigest()
            key, digest = f"sha256-{hexdigest}", f"sha256:{hexdigest}"
            await self.store.put(key, blob)
            metadata = {
                ENCODING: CLAIM_CHECK_ENCODING,
                CLAIM_CHECK_KEY_METADATA: key.encode(),
                CLAIM_CHECK_DIGEST_METADATA: digest.encode(),
                CLAIM_CHECK_KEY_ID_METADATA: self._key_id.encode(),
                CLAIM_CHECK_MAC_METADATA: _reference_mac(
                    self._mac_keys[self._key_id], self._key_id, label, key, digest
                ).encode(),
            }
            if self.context is not None:
                metadata[CLAIM_CHECK_CONTEXT_METADATA] = self.context
            out.append(Payload(metadata=metadata))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Fetch referenced payloads after checking the reference's MAC and the blob's digest.

        Raises:
            ClaimCheckError: The reference is malformed, belongs to another workflow, fails its MAC, or
                its blob is missing, unreadable or altered.
            UnknownEncryptionKeyError: The reference was signed with a key id not configured here.
        """
        return [await self._decode_one(payload) for payload in payloads]

    async def _decode_one(self, payload: Payload) -> Payload:
        if _encoding(payload) != CLAIM_CHECK_ENCODING:
            return payload
        metadata = payload.metadata
        key = metadata.get(CLAIM_CHECK_KEY_METADATA, b"")
        digest = metadata.get(CLAIM_CHECK_DIGEST_METADATA, b"")
        match = _BLOB_KEY.fullmatch(key)
        if match is None or digest != b"sha256:" + match.group(1):
            raise ClaimCheckError(
                "malformed claim-check reference: its key must be sha256-<hex> and its digest "
                "sha256:<the same hex>"
            )
        signed = CLAIM_CHECK_MAC_METADATA in metadata
        if signed:
            key_id = _stated_key_id(payload, CLAIM_CHECK_KEY_ID_METADATA)
            mac_key = self._mac_keys.get(key_id)
            if mac_key is None:
                raise UnknownEncryptionKeyError(
                    f"claim-check reference signed with key id {key_id!r}, which is not configured here; add "
                    f"that key to {KEYS_ENV} or {KEY_FILE_ENV}, after the encrypting one"
                )
            label = metadata.get(CLAIM_CHECK_CONTEXT_METADATA, b"")
            if (
                self.context is not None
                and CLAIM_CHECK_CONTEXT_METADATA in metadata
                and label != self.context
            ):
                raise ContextMismatchError(
                    "refused a claim-check reference that belongs to another workflow or namespace: it was "
                    "copied from another workflow's history"
                )
            expected = _reference_mac(mac_key, key_id, label, key.decode(), digest.decode())
            if not hmac.compare_digest(expected.encode(), metadata[CLAIM_CHECK_MAC_METADATA]):
                raise ClaimCheckError(
                    "claim-check reference failed authentication: it was altered, repointed or relabelled"
                )
        elif CLAIM_CHECK_CONTEXT_METADATA in metadata or CLAIM_CHECK_KEY_ID_METADATA in metadata:
            raise ClaimCheckError("claim-check reference failed authentication: its MAC is missing")
        try:
            blob = await self.store.get(key.decode())
        except BlobNotFoundError:
            raise ClaimCheckError(
                "a claim-checked payload is not in the blob store: every process that decodes needs "
                f"{BLOB_DIR_ENV} pointing at the directory the workers that wrote it use (or a shared store)"
            ) from None
        except OSError as exc:
            raise ClaimCheckError(
                f"the blob store cannot read a claim-checked payload ({exc.strerror or type(exc).__name__}); "
                f"check {BLOB_DIR_ENV} and the blob's file"
            ) from None
        if not hmac.compare_digest(b"sha256:" + hashlib.sha256(blob).hexdigest().encode(), digest):
            raise ClaimCheckError(
                "a claim-checked blob does not match the digest in history: the blob store returned "
                "altered or corrupted bytes"
            )
        stored = _parse_payload(blob, "a claim-checked blob")
        if not signed and CONTEXT_METADATA in stored.metadata:
            # Unsigned references predate bound payloads; a bound payload behind one had its MAC stripped.
            raise ClaimCheckError("claim-check reference failed authentication: its MAC was removed")
        return stored


def _rejected(reason: str) -> Payload:
    return Payload(metadata={ENCODING: REJECTED_ENCODING, REJECTED_REASON_METADATA: reason.encode()})


class ChainCodec(PayloadCodec, WithSerializationContext):
    """Applies codecs in order on encode and in reverse order on decode.

    In a worker (:func:`for_workers`), a payload that the codecs refuse while decoding for a workflow
    becomes a marker payload (``encoding=binary/lanes-rejected``, the reason in
    ``lanes-rejected-reason``, no data) instead of an exception. The SDK decodes a whole activation before
    the workflow runs, and a codec exception fails the workflow task; the signal stays in history, so every
    retry fails again and the job is stuck for good. No converter knows the marker's encoding, so the SDK
    *drops* a signal that carries one (with a log line naming the signal) and the job goes on; a workflow
    input or activity result that carries one fails the workflow task, as a refused payload must. Every
    other decoder (clients, the CLI, the codec server, a codec without a context) raises.

    Args:
        codecs: The codecs, in encoding order.
        mark_refused: Turn refused payloads into markers when bound to a workflow (workers, replayers).
    """

    def __init__(self, codecs: Iterable[PayloadCodec], *, mark_refused: bool = False) -> None:
        self.codecs = list(codecs)
        self.mark_refused = mark_refused
        self._workflow: str | None = None

    def with_context(self, context: SerializationContext) -> Self:
        """A copy whose codecs are bound to ``context`` (those that take one)."""
        bound = copy.copy(self)
        bound.codecs = [
            c.with_context(context) if isinstance(c, WithSerializationContext) else c for c in self.codecs
        ]
        bound._workflow = (
            context.workflow_id
            if isinstance(context, (WorkflowSerializationContext, ActivitySerializationContext))
            else None
        )
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encode through every codec, first to last."""
        out = list(payloads)
        for codec in self.codecs:
            out = await codec.encode(out)
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decode through every codec, last to first.

        Raises:
            CodecError: A codec refused a payload (unless this worker's copy marks refused payloads).
        """
        if not (self.mark_refused and self._workflow is not None):
            return await self._decode(payloads)
        out = []
        for payload in payloads:
            try:
                (decoded,) = await self._decode([payload])
            except CodecError as exc:
                logger.warning(
                    "refused a payload of workflow %s: %s. A signal carrying it is dropped; a workflow "
                    "input or activity result carrying it fails the workflow task",
                    self._workflow,
                    exc,
                )
                decoded = _rejected(str(exc))
            out.append(decoded)
        return out

    async def _decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in reversed(self.codecs):
            out = await codec.decode(out)
        return out


class _DroppedSignalLog(logging.Filter):
    """Turns the SDK's ERROR and traceback for a signal dropped by :class:`ChainCodec` into one WARNING.

    The SDK logs a dropped signal with ``logger.exception`` on ``temporalio.worker._workflow_instance``; for
    a payload lanes refused, the traceback is the converter's "Unknown payload encoding
    binary/lanes-rejected", which says nothing the codec's own WARNING did not, and anyone who can signal
    could fill the log with them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if REJECTED_ENCODING.decode() in str(exc):
                record.msg = f"{record.getMessage()}: lanes' codec refused its payload (see its WARNING)"
                record.args = None
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.exc_info, record.exc_text = None, None
                break
            exc = exc.__cause__ or exc.__context__
        return True


_DROPPED_SIGNAL_LOG = _DroppedSignalLog()


def for_workers(codec: PayloadCodec | None) -> ChainCodec | None:
    """The copy of ``codec`` a worker (and a replayer) decodes workflow activations with.

    It turns payloads it refuses into markers the SDK cannot convert, so that a forged or broken signal is
    dropped instead of wedging its job (see :class:`ChainCodec`), and makes the SDK's log line for such a
    signal one WARNING. Workers take their converter from their client, so :class:`lanes.plugin.LanesPlugin`
    gives each worker a client with this codec.
    """
    if codec is None:
        return None
    logging.getLogger("temporalio.worker._workflow_instance").addFilter(_DROPPED_SIGNAL_LOG)
    if isinstance(codec, ChainCodec):
        marking = copy.copy(codec)
        marking.mark_refused = True
        return marking
    return ChainCodec([codec], mark_refused=True)


def configure_worker(config: WorkerConfig, codec: PayloadCodec | None) -> WorkerConfig:
    """``config`` with a worker client whose converter decodes with :func:`for_workers` of ``codec``.

    A Temporal worker takes its data converter from ``config["client"]``; this gives it a copy of that
    client (same connection, same configuration after every plugin ran) whose codec marks refused
    payloads. Activities' own client (``activity.client()``) stays the original, strict one. For
    :meth:`lanes.plugin.LanesPlugin.configure_worker`; a no-op without a codec.
    """
    worker_codec = for_workers(codec)
    client = config.get("client")
    if worker_codec is None or client is None:
        return config
    active = client.config(active_config=True)
    if active["data_converter"].payload_codec is not codec:
        return config  # already a worker client, or a converter lanes did not build
    active["data_converter"] = dataclasses.replace(active["data_converter"], payload_codec=worker_codec)
    active["plugins"] = []  # they configured ``active`` already; the worker runs them itself
    config["client"] = Client(**active)
    return config


def configure_replayer(config: ReplayerConfig, codec: PayloadCodec | None) -> ReplayerConfig:
    """``config`` whose converter decodes as a worker does, so a replay drops the signals it dropped.

    For :meth:`lanes.plugin.LanesPlugin.configure_replayer`; a no-op without a codec.
    """
    worker_codec = for_workers(codec)
    converter = config.get("data_converter")
    if worker_codec is not None and converter is not None and converter.payload_codec is codec:
        config["data_converter"] = dataclasses.replace(converter, payload_codec=worker_codec)
    return config


def build_codec(settings: Settings, *, claim_check: bool = True) -> ChainCodec | None:
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
    return ChainCodec(
        [
            EncryptionCodec(keys, allow_plaintext=settings.encryption_allow_plaintext),
            ClaimCheckCodec(store, keys, threshold=threshold),
        ]
    )


class KeylessCodec(PayloadCodec):
    """The codec of a client or worker without keys: clear text passes, an encrypted payload is refused.

    Without it the SDK meets ``binary/encrypted`` with no converter for it and raises a ``KeyError`` deep
    in its converter: a newcomer whose shell lacks the dev stack's key file saw a 60-line traceback for a
    job that had completed. The refusal names the settings that would let this process read the job.
    """

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Leave payloads as they are: without keys lanes writes clear text."""
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Pass clear text; refuse what only a key can read.

        Raises:
            UndecodablePayloadError: A payload is encrypted, or a claim check (which only keyed
                processes write); the message names the key settings.
        """
        for payload in payloads:
            if _encoding(payload) in (ENCRYPTED_ENCODING, CLAIM_CHECK_ENCODING):
                raise UndecodablePayloadError(
                    "this job's payloads are encrypted and this process has no key: set "
                    f"{KEY_FILE_ENV} (or {KEYS_ENV}) to the worker's key, e.g. the dev stack's "
                    '`eval "$(lanes dev env)"`; see docs/encryption.md'
                )
        return list(payloads)


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
