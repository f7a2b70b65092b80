"""Issue 20, payload items: with keys configured, what a worker or client decodes is what a key holder wrote,
for this workflow.

* item 3: a clear-text payload (a ``temporal workflow signal`` without the key) is refused;
  ``LANES_ENCRYPTION_ALLOW_PLAINTEXT`` admits pre-encryption histories;
* low item "undecodable signals": a refused signal is dropped with a WARNING naming it; the job goes on
  and keeps answering its status query; a refused workflow input never runs;
* item 4: ciphertext and claim-check references are bound to their namespace and workflow id;
* low item "malformed encrypted payloads": always a ``CodecError``, whose message holds neither the blob
  directory nor a digest;
* ``build_codec(..., claim_check=False)`` never writes a blob;
* low item "key files": a directory, FIFO, socket, device, unreadable or non-UTF-8 key file is one
  ``KeyConfigError``; ``ensure_local_key`` leaves an existing directory's mode alone.

The end-to-end attacks run a real worker against the session's dev server and emulator; the attacker is a
plain Temporal client without any key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import socket
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload, Payloads, WorkflowType
from temporalio.api.enums.v1 import EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    WorkflowSerializationContext,
)
from temporalio.worker import ReplayerConfig, WorkerConfig

from lanes.blobs import LocalBlobStore
from lanes.codec import (
    CLAIM_CHECK_DIGEST_METADATA,
    CLAIM_CHECK_ENCODING,
    CLAIM_CHECK_KEY_METADATA,
    CLAIM_CHECK_MAC_METADATA,
    CONTEXT_METADATA,
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    REJECTED_ENCODING,
    REJECTED_REASON_METADATA,
    ChainCodec,
    ClaimCheckCodec,
    CodecError,
    ContextMismatchError,
    EncryptionCodec,
    PlaintextRefusedError,
    build_codec,
    configure_replayer,
    configure_worker,
    context_label,
    ensure_local_key,
    for_workers,
    read_key_file,
)
from lanes.connect import connect, openai_client, plugins
from lanes.errors import KeyConfigError
from lanes.jobs import wait_for_phase
from lanes.plugin import LanesPlugin
from lanes.settings import Settings
from lanes.temporal_config import connect_config
from lanes.worker.serving import serving
from responses_emulator import Emulator
from workflows.model_task import CancelInput, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

JOB = WorkflowSerializationContext(namespace="default", workflow_id="job-1")
OTHER = WorkflowSerializationContext(namespace="default", workflow_id="job-2")


def keys() -> dict[str, bytes]:
    return {"k1": os.urandom(32)}


def payload(text: str = "the prompt") -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def codecs(tmp_path: Path, threshold: int | None = 64) -> ChainCodec:
    shared = keys()
    store = LocalBlobStore(tmp_path / "blobs")
    return ChainCodec([EncryptionCodec(shared), ClaimCheckCodec(store, shared, threshold=threshold)])


# ---------------------------------------------------------------------------------------- unit: codec


async def test_item3_clear_text_is_refused_where_keys_are_configured(tmp_path: Path) -> None:
    settings = Settings(encryption_keys=f"k1={base64.b64encode(os.urandom(32)).decode()}", blob_dir=tmp_path)
    codec = build_codec(settings)
    assert isinstance(codec, ChainCodec)
    with pytest.raises(PlaintextRefusedError, match="LANES_ENCRYPTION_ALLOW_PLAINTEXT=true"):
        await codec.with_context(JOB).decode([payload()])
    # A claim check whose blob is clear text is refused the same way.
    store = LocalBlobStore(tmp_path)
    blob = payload("x" * 100).SerializeToString()
    hexdigest = hashlib.sha256(blob).hexdigest()
    await store.put(f"sha256-{hexdigest}", blob)
    reference = Payload(
        metadata={
            "encoding": CLAIM_CHECK_ENCODING,
            CLAIM_CHECK_KEY_METADATA: f"sha256-{hexdigest}".encode(),
            CLAIM_CHECK_DIGEST_METADATA: f"sha256:{hexdigest}".encode(),
        }
    )
    with pytest.raises(PlaintextRefusedError):
        await codec.with_context(JOB).decode([reference])

    allowing = build_codec(settings.model_copy(update={"encryption_allow_plaintext": True}))
    assert allowing is not None
    assert await allowing.with_context(JOB).decode([payload()]) == [payload()]
    assert Settings.model_validate({"LANES_ENCRYPTION_ALLOW_PLAINTEXT": "true"}).encryption_allow_plaintext
    assert not Settings().encryption_allow_plaintext


async def test_item3_only_temporals_own_constants_pass_a_bound_decoder_in_clear(tmp_path: Path) -> None:
    # The server writes ActivityTaskCanceled's details itself when an activity is cancelled before it
    # started: refusing them wedged every such job (test_cancel_while_queued_reaches_the_provider).
    settings = Settings(encryption_keys=f"k1={base64.b64encode(os.urandom(32)).decode()}", blob_dir=tmp_path)
    codec = build_codec(settings)
    assert codec is not None
    constant = Payload(metadata={"encoding": b"json/plain"}, data=b'"ACTIVITY_ID_NOT_STARTED"')
    assert await codec.with_context(JOB).decode([constant]) == [constant]
    # Anything else in clear, however close, is refused.
    for forged in (
        Payload(metadata={"encoding": b"json/plain"}, data=b'"ACTIVITY_ID_NOT_STARTED "'),
        Payload(metadata={"encoding": b"json/plain", "x": b"1"}, data=b'"ACTIVITY_ID_NOT_STARTED"'),
        Payload(metadata={"encoding": b"binary/plain"}, data=b'"ACTIVITY_ID_NOT_STARTED"'),
    ):
        with pytest.raises(PlaintextRefusedError):
            await codec.with_context(JOB).decode([forged])


async def test_item2_a_workers_codec_turns_refused_payloads_into_markers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    codec = codecs(tmp_path)
    (good,) = await codec.with_context(JOB).encode([payload()])
    worker = for_workers(codec)
    assert worker is not None

    with caplog.at_level(logging.WARNING, logger="lanes.codec"):
        marked, decoded = await worker.with_context(JOB).decode([payload("FORGED"), good])

    assert decoded == payload()
    assert marked.metadata["encoding"] == REJECTED_ENCODING
    assert b"LANES_ENCRYPTION_ALLOW_PLAINTEXT" in marked.metadata[REJECTED_REASON_METADATA]
    assert marked.data == b""
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "job-1" in caplog.records[0].getMessage()
    assert "FORGED" not in caplog.text
    # Every client (the strict codec, bound) and every decoder without a workflow context raise instead.
    with pytest.raises(ContextMismatchError):
        await codec.with_context(OTHER).decode([good])
    with pytest.raises(CodecError):
        await worker.decode([Payload(metadata={"encoding": ENCRYPTED_ENCODING}, data=b"x")])


def test_item2_the_plugin_hooks_give_workers_and_replayers_the_marking_codec(tmp_path: Path) -> None:
    settings = Settings(encryption_keys=f"k1={base64.b64encode(os.urandom(32)).decode()}", blob_dir=tmp_path)
    lanes = plugins(settings)[0]
    assert isinstance(lanes, LanesPlugin)
    converter = lanes.configure_client({"data_converter": None})["data_converter"]  # type: ignore[typeddict-item]
    client = Client(_FakeServiceClient(), data_converter=converter)  # type: ignore[arg-type]
    configured = configure_worker(WorkerConfig(client=client), lanes.codec)
    worker_converter = configured["client"].data_converter
    assert isinstance(worker_converter.payload_codec, ChainCodec)
    assert worker_converter.payload_codec.mark_refused
    assert worker_converter.failure_converter_class is converter.failure_converter_class
    assert client.data_converter.payload_codec is lanes.codec  # the client itself stays strict
    replay = configure_replayer(ReplayerConfig(data_converter=converter), lanes.codec)
    assert isinstance(replay["data_converter"].payload_codec, ChainCodec)
    assert replay["data_converter"].payload_codec.mark_refused


class _FakeServiceClient:
    """Enough of a service client for ``Client.__init__`` (it only stores it); no call is made."""


async def test_item4_ciphertext_is_bound_to_its_namespace_and_workflow(tmp_path: Path) -> None:
    codec = codecs(tmp_path, threshold=None)
    (sealed,) = await codec.with_context(JOB).encode([payload()])
    assert sealed.metadata[CONTEXT_METADATA] == b"default/job-1"

    assert await codec.with_context(JOB).decode([sealed]) == [payload()]
    activity = ActivitySerializationContext(
        namespace="default",
        activity_id="1",
        activity_type="a",
        activity_task_queue="q",
        workflow_id="job-1",
        workflow_type="ModelTaskWorkflow",
        is_local=False,
    )
    assert await codec.with_context(activity).decode([sealed]) == [payload()]  # its activities' payloads
    assert await codec.decode([sealed]) == [payload()]  # unbound (codec server): by the stated context
    with pytest.raises(ContextMismatchError, match="copied from another workflow"):
        await codec.with_context(OTHER).decode([sealed])
    with pytest.raises(ContextMismatchError):
        await codec.with_context(WorkflowSerializationContext("other-ns", "job-1")).decode([sealed])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[CONTEXT_METADATA] = context_label("default", "job-2")
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.with_context(OTHER).decode([relabelled])
    stripped = Payload()
    stripped.CopyFrom(sealed)
    del stripped.metadata[CONTEXT_METADATA]
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.with_context(OTHER).decode([stripped])
    # Format 1 (no context, the key id alone as associated data) stays readable everywhere.
    (legacy,) = await codec.encode([payload()])
    assert CONTEXT_METADATA not in legacy.metadata
    assert await codec.with_context(OTHER).decode([legacy]) == [payload()]
    # The label is unambiguous: a "/" inside a part never makes two contexts one.
    assert context_label("a/b", "c") != context_label("a", "b/c")


async def test_item4_claim_check_references_are_bound_and_signed(tmp_path: Path) -> None:
    shared, store = keys(), LocalBlobStore(tmp_path / "blobs")
    codec = ChainCodec([EncryptionCodec(shared), ClaimCheckCodec(store, shared, threshold=64)])
    first, second = await codec.with_context(JOB).encode([payload("a" * 200), payload("b" * 200)])
    assert first.metadata["encoding"] == CLAIM_CHECK_ENCODING
    assert await codec.with_context(JOB).decode([first]) == [payload("a" * 200)]

    with pytest.raises(ContextMismatchError):
        await codec.with_context(OTHER).decode([first])
    repointed = Payload()
    repointed.CopyFrom(first)
    repointed.metadata[CLAIM_CHECK_KEY_METADATA] = second.metadata[CLAIM_CHECK_KEY_METADATA]
    repointed.metadata[CLAIM_CHECK_DIGEST_METADATA] = second.metadata[CLAIM_CHECK_DIGEST_METADATA]
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.with_context(JOB).decode([repointed])
    with pytest.raises(CodecError, match="MAC was removed"):
        await codec.with_context(JOB).decode([_unsigned(first)])
    # A reference written before references were signed (its blob a format-1 payload) still reads.
    (old,) = await codec.encode([payload("c" * 200)])
    assert await codec.with_context(JOB).decode([_unsigned(old)]) == [payload("c" * 200)]


def _unsigned(reference: Payload) -> Payload:
    """``reference`` as format 1 wrote it: encoding, store key and digest only."""
    kept = ("encoding", CLAIM_CHECK_KEY_METADATA, CLAIM_CHECK_DIGEST_METADATA)
    return Payload(metadata={k: reference.metadata[k] for k in kept})


def _reference(key: bytes | None, digest: bytes | None = None) -> Payload:
    metadata = {"encoding": CLAIM_CHECK_ENCODING}
    if key is not None:
        metadata[CLAIM_CHECK_KEY_METADATA] = key
    if digest is not None:
        metadata[CLAIM_CHECK_DIGEST_METADATA] = digest
    return Payload(metadata=metadata)


MALFORMED = {
    "nonce under 12 bytes": Payload(
        metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: b"k1"}, data=b"short"
    ),
    "no ciphertext": Payload(metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: b"k1"}),
    "non-UTF-8 key id": Payload(
        metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: b"\xff\xfe"}, data=bytes(40)
    ),
    "absent key id": Payload(metadata={"encoding": ENCRYPTED_ENCODING}, data=bytes(40)),
    "claim-check key .": _reference(b".", b"sha256:" + b"0" * 64),
    "claim-check key ..": _reference(b"..", b"sha256:" + b"0" * 64),
    "claim-check key ../x": _reference(b"../x", b"sha256:" + b"0" * 64),
    "claim-check key a/b": _reference(b"a/b", b"sha256:" + b"0" * 64),
    "claim-check key non-UTF-8": _reference(b"\xff", b"sha256:" + b"0" * 64),
    "claim-check key absent": _reference(None, b"sha256:" + b"0" * 64),
    "claim-check digest absent": _reference(b"sha256-" + b"0" * 64),
    "claim-check MAC malformed": Payload(
        metadata={
            "encoding": CLAIM_CHECK_ENCODING,
            CLAIM_CHECK_KEY_METADATA: b"sha256-" + b"0" * 64,
            CLAIM_CHECK_DIGEST_METADATA: b"sha256:" + b"0" * 64,
            CLAIM_CHECK_MAC_METADATA: b"\xff",
        }
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_encrypted_payloads_are_codec_errors(tmp_path: Path, name: str) -> None:
    codec = codecs(tmp_path)
    for decoder in (codec, codec.with_context(JOB)):
        with pytest.raises(CodecError) as err:
            await decoder.decode([MALFORMED[name]])
        assert type(err.value).__mro__[1:].count(CodecError) or type(err.value) is CodecError


async def test_malformed_a_blob_that_is_a_directory_is_a_codec_error(tmp_path: Path) -> None:
    codec = codecs(tmp_path)
    hexdigest = "0" * 64
    (tmp_path / "blobs" / f"sha256-{hexdigest}").mkdir(parents=True)
    with pytest.raises(CodecError, match="LANES_BLOB_DIR") as err:
        await codec.decode([_reference(f"sha256-{hexdigest}".encode(), f"sha256:{hexdigest}".encode())])
    assert str(tmp_path) not in str(err.value)


async def test_codec_errors_name_the_setting_not_the_blob_directory_or_digest(tmp_path: Path) -> None:
    codec = codecs(tmp_path)
    (reference,) = await codec.with_context(JOB).encode([payload("z" * 200)])
    hexdigest = reference.metadata[CLAIM_CHECK_DIGEST_METADATA].decode().removeprefix("sha256:")
    blob = tmp_path / "blobs" / f"sha256-{hexdigest}"
    blob.write_bytes(blob.read_bytes() + b"!")
    with pytest.raises(CodecError, match="altered or corrupted") as altered:
        await codec.with_context(JOB).decode([reference])
    blob.unlink()
    with pytest.raises(CodecError, match="LANES_BLOB_DIR") as missing:
        await codec.with_context(JOB).decode([reference])
    for err in (altered, missing):
        assert str(tmp_path) not in str(err.value)
        assert hexdigest not in str(err.value)
        assert hexdigest[:16] not in str(err.value)


async def test_a_codec_without_claim_check_never_writes_a_blob(tmp_path: Path) -> None:
    settings = Settings(
        encryption_keys=f"k1={base64.b64encode(os.urandom(32)).decode()}",
        blob_dir=tmp_path / "blobs",
        claim_check_threshold=10,
    )
    codec = build_codec(settings, claim_check=False)
    assert codec is not None
    (encoded,) = await codec.encode([payload("y" * 1000)])
    assert encoded.metadata["encoding"] == ENCRYPTED_ENCODING
    assert not (tmp_path / "blobs").exists()
    writer = build_codec(settings)
    assert writer is not None
    (reference,) = await writer.encode([payload("y" * 1000)])
    assert await codec.decode([reference]) == [payload("y" * 1000)]  # it still reads claim checks


# ---------------------------------------------------------------------------------------- unit: keys


def _key_file_kinds(tmp_path: Path) -> dict[str, Path]:
    kinds = {"directory": tmp_path / "dir", "fifo": tmp_path / "fifo", "socket": tmp_path / "sock"}
    kinds["directory"].mkdir(mode=0o700)
    os.mkfifo(kinds["fifo"], 0o600)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(kinds["socket"]))
    server.close()
    kinds["device"] = Path("/dev/null")
    kinds["non-UTF-8"] = tmp_path / "latin1"
    kinds["non-UTF-8"].write_bytes(b"k1=\xe9\xe9\n")
    kinds["non-UTF-8"].chmod(0o600)
    return kinds


@pytest.mark.parametrize("kind", ["directory", "fifo", "socket", "device", "non-UTF-8"])
async def test_key_files_that_are_not_key_files_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    path = _key_file_kinds(tmp_path)[kind]
    async with asyncio.timeout(10):  # a FIFO must not hang the read
        with pytest.raises(KeyConfigError) as err:
            await asyncio.to_thread(read_key_file, path)
    message = str(err.value)
    assert "\n" not in message
    assert "LANES_ENCRYPTION_KEY_FILE" in message
    assert ("not UTF-8" if kind == "non-UTF-8" else "not a regular file") in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_key_files_that_cannot_be_read_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("k1=x\n")
    path.chmod(0o000)
    with pytest.raises(KeyConfigError, match="cannot be opened"):
        read_key_file(path)


def test_ensure_local_key_leaves_an_existing_directory_alone(tmp_path: Path) -> None:
    existing = tmp_path / "project"
    existing.mkdir()
    existing.chmod(0o755)
    path = ensure_local_key(existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh" / "state"
    ensure_local_key(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


# ----------------------------------------------------------------------------------- property tests

_labels = st.text(min_size=1, max_size=40)
_contexts = st.builds(WorkflowSerializationContext, namespace=_labels, workflow_id=_labels)
_payloads = st.builds(
    lambda metadata, data: Payload(metadata=metadata, data=data),
    st.dictionaries(st.text(min_size=1, max_size=20), st.binary(max_size=40), max_size=4),
    st.binary(max_size=300),
)
PROPERTY = hypothesis_settings(
    max_examples=int(os.environ.get("LANES_PAYLOAD_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_SHARED = keys()
_PROPERTY_CODEC: PayloadCodec = ChainCodec(
    [
        EncryptionCodec(_SHARED),
        ClaimCheckCodec(LocalBlobStore(Path("/nonexistent/lanes-blobs")), _SHARED, threshold=None),
    ]
)


@PROPERTY
@given(original=_payloads, writer=_contexts, reader=_contexts)
async def test_property_a_payload_decodes_only_in_its_own_context(
    original: Payload, writer: WorkflowSerializationContext, reader: WorkflowSerializationContext
) -> None:
    codec = _PROPERTY_CODEC
    (sealed,) = await codec.with_context(writer).encode([original])  # type: ignore[attr-defined]
    assert await codec.with_context(writer).decode([sealed]) == [original]  # type: ignore[attr-defined]
    if reader != writer:
        with pytest.raises(CodecError):
            await codec.with_context(reader).decode([sealed])  # type: ignore[attr-defined]


@PROPERTY
@given(
    original=_payloads,
    context=_contexts,
    flip=st.integers(min_value=0),
    metadata=st.dictionaries(
        st.sampled_from(
            [
                "encoding",
                KEY_ID_METADATA,
                CONTEXT_METADATA,
                CLAIM_CHECK_KEY_METADATA,
                CLAIM_CHECK_DIGEST_METADATA,
                CLAIM_CHECK_MAC_METADATA,
                "claim-check-key-id",
                "claim-check-context",
            ]
        ),
        st.one_of(st.binary(max_size=80), st.sampled_from([ENCRYPTED_ENCODING, CLAIM_CHECK_ENCODING, b"k1"])),
        max_size=4,
    ),
    truncate=st.integers(min_value=0, max_value=400),
)
async def test_property_mutated_payloads_are_codec_errors(
    original: Payload,
    context: WorkflowSerializationContext,
    flip: int,
    metadata: dict[str, bytes],
    truncate: int,
) -> None:
    codec = _PROPERTY_CODEC.with_context(context)  # type: ignore[attr-defined]
    (sealed,) = await codec.encode([original])
    mutated = Payload()
    mutated.CopyFrom(sealed)
    data = bytearray(mutated.data[:truncate] if truncate < len(mutated.data) else mutated.data)
    if data and not metadata:
        data[flip % len(data)] ^= 1 << (flip % 8)
    mutated.data = bytes(data)
    for key, value in metadata.items():
        mutated.metadata[key] = value
    try:
        (decoded,) = await codec.decode([mutated])
    except CodecError:
        return
    # Only an untouched payload decodes (metadata set to what it already was, or data cut at its end).
    assert decoded == original


# -------------------------------------------------------------------------------- end to end attacks


class _WorkerCodecPlugin(LanesPlugin):
    """LanesPlugin with the worker and replayer wiring proposed for ``lanes/plugin.py`` (see the issue 20
    report): both delegate to ``lanes.codec``; applying them twice changes nothing."""

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        return configure_worker(super().configure_worker(config), self.codec)

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        return configure_replayer(super().configure_replayer(config), self.codec)


async def lanes_client(settings: Settings) -> Client:
    """``connect(settings)`` once ``LanesPlugin`` wires workers itself; until then, the same wiring here."""
    if "configure_worker" in vars(LanesPlugin):
        return await connect(settings)
    lanes, *others = plugins(settings)
    assert isinstance(lanes, LanesPlugin)
    return await Client.connect(
        **connect_config(settings), plugins=[_WorkerCodecPlugin(lanes.codec), *others]
    )


@pytest_asyncio.fixture
async def attacker(settings: Settings) -> Client:
    """Someone who can reach Temporal and signal or start workflows, without any key."""
    return await Client.connect(settings.temporal_address or "", namespace="default")


@pytest_asyncio.fixture
async def lanes(settings: Settings) -> AsyncIterator[Client]:
    """lanes' client (keys configured) with a real worker on the test's task queue."""
    client = await lanes_client(settings)
    async with openai_client(settings) as provider, serving(client, settings, provider):
        yield client


async def history_has(handle: WorkflowHandle[Any, Any], kind: EventType.ValueType, *, after: int = 0) -> int:
    """The id of the first event of ``kind`` after event ``after``, once the server has it."""
    async with asyncio.timeout(60):
        while True:
            for event in (await handle.fetch_history()).events:
                if event.event_type == kind and event.event_id > after:
                    return event.event_id
            await asyncio.sleep(0.05)


def held_job(tag: str, text: str = "the victim's prompt") -> ModelTaskInput:
    return ModelTaskInput(
        job_type="public_research",
        data_class="public",
        input=text,
        metadata={"emulator_duration": "0.5", "emulator_fault": "hold", "security": tag},
    )


async def _signalled_and_processed(handle: WorkflowHandle[Any, Any]) -> None:
    signalled = await history_has(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    await history_has(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, after=signalled)


def _dropped(caplog: pytest.LogCaptureFixture, signal: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "dropping the signal" in r.getMessage() and signal in r.getMessage()]


async def test_item3_a_forged_clear_text_signal_never_finishes_a_job(
    lanes: Client, attacker: Client, settings: Settings, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tag = uuid.uuid4().hex
    handle = await lanes.start_workflow(
        ModelTaskWorkflow.run, held_job(tag), id=f"sec-forge-{tag}", task_queue=settings.task_queue
    )
    status = await wait_for_phase(handle, "running")
    response_id = status.response_id
    assert response_id

    forged = {
        "response_id": response_id,
        "outcome": {"response_id": response_id, "status": "completed", "output_text": "FORGED"},
    }
    await attacker.get_workflow_handle(handle.id).signal("provider_finished", forged)
    await _signalled_and_processed(handle)
    assert (await handle.query(ModelTaskWorkflow.status)).phase == "running"
    assert emulator.release(metadata={"security": tag}) == 1
    result: ModelTaskResult = await handle.result()

    assert result.status == "completed"
    assert result.output_text
    assert "FORGED" not in result.output_text
    (dropped,) = _dropped(caplog, "provider_finished")
    assert dropped.levelno == logging.WARNING
    assert dropped.exc_info is None
    refusals = [r for r in caplog.records if r.name == "lanes.codec"]
    assert refusals
    assert all("LANES_ENCRYPTION_ALLOW_PLAINTEXT" in r.getMessage() for r in refusals)
    assert "FORGED" not in caplog.text


async def test_item2_a_broken_cancel_signal_is_dropped_and_the_job_keeps_answering(
    lanes: Client, attacker: Client, settings: Settings, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tag = uuid.uuid4().hex
    handle = await lanes.start_workflow(
        ModelTaskWorkflow.run, held_job(tag), id=f"sec-cancel-{tag}", task_queue=settings.task_queue
    )
    await wait_for_phase(handle, "running")
    # A malformed encrypted payload (its nonce cut short), sent as a raw payload by a client without key.
    broken = Payload(metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: b"tests"}, data=b"short")
    await attacker.workflow_service.signal_workflow_execution(
        _signal_request(handle.id, "cancel", broken, attacker.namespace)
    )
    await _signalled_and_processed(handle)

    assert (await handle.query(ModelTaskWorkflow.status)).phase == "running"
    # A real cancel after the broken one still works: the job was never wedged.
    await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="security test"))
    result: ModelTaskResult = await handle.result()
    assert result.status == "cancelled"
    (dropped,) = _dropped(caplog, "cancel")
    assert dropped.levelno == logging.WARNING
    emulator.release(metadata={"security": tag})


def _signal_request(workflow_id: str, name: str, argument: Payload, namespace: str) -> Any:
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest

    return SignalWorkflowExecutionRequest(
        namespace=namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        signal_name=name,
        input=Payloads(payloads=[argument]),
        identity="attacker",
        request_id=str(uuid.uuid4()),
    )


async def test_item4_an_input_copied_into_a_new_workflow_never_runs(
    lanes: Client, attacker: Client, settings: Settings, emulator: Emulator
) -> None:
    tag = uuid.uuid4().hex
    victim = await lanes.start_workflow(
        ModelTaskWorkflow.run, held_job(tag), id=f"sec-victim-{tag}", task_queue=settings.task_queue
    )
    await wait_for_phase(victim, "running")
    started = (await attacker.get_workflow_handle(victim.id).fetch_history()).events[0]
    stolen = started.workflow_execution_started_event_attributes.input
    assert stolen.payloads[0].metadata["encoding"] == ENCRYPTED_ENCODING

    copy_id = f"sec-copy-{tag}"
    await attacker.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=attacker.namespace,
            workflow_id=copy_id,
            workflow_type=WorkflowType(name="ModelTaskWorkflow"),
            task_queue=TaskQueue(name=settings.task_queue),
            input=stolen,
            identity="attacker",
            request_id=str(uuid.uuid4()),
        )
    )
    copy = attacker.get_workflow_handle(copy_id)
    try:
        await history_has(copy, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
        kinds = {e.event_type for e in (await copy.fetch_history()).events}
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
        assert emulator.ledger.tagged("lanes_workflow_id", copy_id) == []
    finally:
        await copy.terminate("security test")
    assert emulator.release(metadata={"security": tag}) == 1
    assert (await victim.result()).status == "completed"
