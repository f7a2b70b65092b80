from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from lanes.blobs import LocalBlobStore
from lanes.codec import (
    CLAIM_CHECK_ENCODING,
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    ChainCodec,
    ClaimCheckCodec,
    ClaimCheckError,
    CodecError,
    EncryptionCodec,
    PlaintextRefusedError,
    UnknownEncryptionKeyError,
    build_codec,
    codec_encrypts,
    ensure_local_key,
    load_keys,
    parse_keys,
    read_key_file,
)
from lanes.connect import plugins
from lanes.errors import KeyConfigError
from lanes.plugin import DATA_CONVERTER, LanesPlugin
from lanes.settings import Settings
from lanes.worker.benign_failures import EncodedAttributesFailureConverter

CANARY = "canary-7f3e1c"


def key() -> bytes:
    return os.urandom(32)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def payload(text: str = CANARY) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_round_trip_hides_the_plaintext_and_restores_the_payload() -> None:
    codec = EncryptionCodec({"k1": key()})
    original = [payload(), payload("second")]
    encoded = await codec.encode(original)

    assert [p.metadata["encoding"] for p in encoded] == [ENCRYPTED_ENCODING] * 2
    assert [p.metadata[KEY_ID_METADATA] for p in encoded] == [b"k1"] * 2
    for p in encoded:
        assert CANARY.encode() not in p.SerializeToString()
        assert b"json/plain" not in p.SerializeToString()  # the original metadata is inside
    assert encoded[0].data[:12] != (await codec.encode(original))[0].data[:12]  # fresh nonce
    assert await codec.decode(encoded) == original


async def test_tampered_ciphertext_is_an_error() -> None:
    codec = EncryptionCodec({"k1": key()})
    (encoded,) = await codec.encode([payload()])
    flipped = bytearray(encoded.data)
    flipped[20] ^= 1
    tampered = Payload(metadata=dict(encoded.metadata), data=bytes(flipped))
    with pytest.raises(CodecError, match="'k1' failed authentication"):
        await codec.decode([tampered])


async def test_a_relabelled_key_id_fails_even_when_that_key_is_known() -> None:
    # The key id is associated data: moving a payload under another known id is detected.
    shared = key()
    codec = EncryptionCodec({"k1": shared, "k2": shared})
    (encoded,) = await codec.encode([payload()])
    relabelled = Payload(metadata={**encoded.metadata, KEY_ID_METADATA: b"k2"}, data=encoded.data)
    with pytest.raises(CodecError, match="'k2' failed authentication"):
        await codec.decode([relabelled])


async def test_rotation_old_payloads_decrypt_and_new_ones_use_the_new_key() -> None:
    old, new = key(), key()
    before = EncryptionCodec({"old": old})
    (written_before,) = await before.encode([payload()])

    after = EncryptionCodec({"new": new, "old": old})
    assert await after.decode([written_before]) == [payload()]
    (written_after,) = await after.encode([payload()])
    assert written_after.metadata[KEY_ID_METADATA] == b"new"
    with pytest.raises(UnknownEncryptionKeyError):
        await before.decode([written_after])


async def test_unknown_key_id_is_a_clear_error_naming_it() -> None:
    (encoded,) = await EncryptionCodec({"retired-2024": key()}).encode([payload()])
    with pytest.raises(UnknownEncryptionKeyError, match=r"'retired-2024'.*LANES_ENCRYPTION_KEYS") as err:
        await EncryptionCodec({"k1": key()}).decode([encoded])
    assert "k1" not in str(err.value)  # the configured key ids are not the caller's business


async def test_clear_payloads_are_refused_unless_plaintext_is_allowed() -> None:
    clear = [payload(), Payload(metadata={"encoding": b"binary/null"})]
    job = WorkflowSerializationContext(namespace="default", workflow_id="J")
    with pytest.raises(PlaintextRefusedError, match="LANES_ENCRYPTION_ALLOW_PLAINTEXT=true"):
        await EncryptionCodec({"k1": key()}).with_context(job).decode(clear)
    # Histories written before encryption was turned on stay readable when the operator says so.
    assert await EncryptionCodec({"k1": key()}, allow_plaintext=True).with_context(job).decode(clear) == clear
    # Without a context (the codec server, history tools), decoding is for display: clear text is shown.
    assert await EncryptionCodec({"k1": key()}).decode(clear) == clear


def test_keys_parse_in_order_from_commas_or_lines() -> None:
    k1, k2, k3 = key(), key(), key()
    parsed = parse_keys(f"b={b64(k1)}, a={b64(k2)}\n# comment\n\nc={b64(k3)}\n", source="X")
    assert list(parsed) == ["b", "a", "c"]
    assert parsed == {"b": k1, "a": k2, "c": k3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no key configured"),
        ("justakey", "entry 1 is not `id=base64key`"),
        (f"k1={b64(bytes(32))},={b64(bytes(32))}", "entry 2 is not `id=base64key`"),
        ("k1=not*base64", "key 'k1' is not valid base64"),
        (f"k1={b64(bytes(16))}", "key 'k1' is 16 bytes, AES-256 needs 32"),
        (f"k1={b64(bytes(32))},k1={b64(bytes(32))}", "key id 'k1' appears twice"),
    ],
)
def test_malformed_keys_name_the_variable_the_key_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match="LANES_ENCRYPTION_KEYS") as err:
        load_keys(Settings(encryption_keys=text))
    assert message in str(err.value)
    if "base64" in message or "bytes" in message:
        assert "os.urandom(32)" in str(err.value)


def test_malformed_key_error_never_shows_the_key() -> None:
    short = b64(b"s3cr3t-but-short")
    with pytest.raises(KeyConfigError) as err:
        parse_keys(f"k1={short}", source="LANES_ENCRYPTION_KEYS")
    assert short not in str(err.value)
    with pytest.raises(KeyConfigError) as err:
        parse_keys(short, source="LANES_ENCRYPTION_KEYS")
    assert short not in str(err.value)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"k1={b64(key())}\n")
    path.chmod(0o644)
    with pytest.raises(KeyConfigError, match=rf"{path} is accessible by group or others.*chmod 600 {path}"):
        load_keys(Settings(encryption_key_file=path))
    path.chmod(0o600)
    assert list(load_keys(Settings(encryption_key_file=path))) == ["k1"]


def test_key_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    with pytest.raises(KeyConfigError, match=f"LANES_ENCRYPTION_KEY_FILE .{path}.: no such file"):
        read_key_file(path)
    path.write_text("k1=short")
    path.chmod(0o600)
    with pytest.raises(KeyConfigError, match=f"LANES_ENCRYPTION_KEY_FILE .{path}.: key 'k1'"):
        read_key_file(path)


def test_both_key_sources_at_once_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="both LANES_ENCRYPTION_KEYS and LANES_ENCRYPTION_KEY_FILE"):
        load_keys(Settings(encryption_keys=f"k1={b64(key())}", encryption_key_file=tmp_path / "k"))


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LANES_ENCRYPTION_KEYS", f"env1={b64(key())}")
    monkeypatch.setenv("LANES_BLOB_DIR", str(tmp_path))
    monkeypatch.setenv("LANES_CLAIM_CHECK_THRESHOLD", "1000")
    settings = Settings()
    assert settings.encryption_configured
    assert "env1" not in repr(settings)  # key material is a SecretStr
    assert list(load_keys(settings)) == ["env1"]
    assert (settings.blob_dir, settings.claim_check_threshold) == (tmp_path, 1000)


def test_ensure_local_key_creates_a_private_key_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = ensure_local_key(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = read_key_file(path)
    assert len(keys) == 1
    assert len(next(iter(keys.values()))) == 32
    assert ensure_local_key(state) == path
    assert read_key_file(path) == keys  # kept: it decrypts the existing history


def test_ensure_local_key_refuses_an_existing_open_file(tmp_path: Path) -> None:
    path = ensure_local_key(tmp_path)
    path.chmod(0o640)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        ensure_local_key(tmp_path)


def test_without_keys_the_converter_is_unchanged() -> None:
    assert build_codec(Settings()) is None
    (lanes, _) = plugins(Settings())
    assert isinstance(lanes, LanesPlugin)
    assert lanes.codec is None
    assert plugins()[0].configure_client({"data_converter": None})["data_converter"] is DATA_CONVERTER  # type: ignore[typeddict-item]


def test_with_keys_the_converter_encrypts_payloads_and_failure_messages(tmp_path: Path) -> None:
    settings = Settings(encryption_keys=f"k1={b64(key())}", blob_dir=tmp_path)
    (lanes, _) = plugins(settings)
    assert isinstance(lanes, LanesPlugin)
    assert codec_encrypts(lanes.codec)
    converter = lanes.configure_client({"data_converter": None})["data_converter"]  # type: ignore[typeddict-item]
    assert converter.payload_converter_class is DATA_CONVERTER.payload_converter_class
    assert codec_encrypts(converter.payload_codec)
    assert converter.failure_converter_class is EncodedAttributesFailureConverter
    assert issubclass(EncodedAttributesFailureConverter, DefaultFailureConverter)
    failure = Failure()
    converter.failure_converter.to_failure(ApplicationError("secret"), converter.payload_converter, failure)
    assert failure.message == "Encoded failure"
    assert failure.HasField("encoded_attributes")


def chain(tmp_path: Path, threshold: int = 1024) -> tuple[ChainCodec, LocalBlobStore]:
    store = LocalBlobStore(tmp_path / "blobs")
    keys = {"k1": key()}
    return ChainCodec([EncryptionCodec(keys), ClaimCheckCodec(store, keys, threshold=threshold)]), store


async def test_large_payloads_go_to_the_blob_store_encrypted(tmp_path: Path) -> None:
    codec, _ = chain(tmp_path)
    big = payload(CANARY * 1000)
    small = payload()
    encoded = await codec.encode([big, small])

    assert encoded[0].metadata["encoding"] == CLAIM_CHECK_ENCODING
    assert encoded[0].ByteSize() < 400
    assert encoded[1].metadata["encoding"] == ENCRYPTED_ENCODING
    (blob,) = list((tmp_path / "blobs").iterdir())
    assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert CANARY.encode() not in blob.read_bytes()
    assert Payload.FromString(blob.read_bytes()).metadata["encoding"] == ENCRYPTED_ENCODING
    assert await codec.decode(encoded) == [big, small]


async def test_a_blob_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    codec, _ = chain(tmp_path)
    encoded = await codec.encode([payload(CANARY * 1000)])
    (blob,) = list((tmp_path / "blobs").iterdir())
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(CodecError, match="does not match the digest"):
        await codec.decode(encoded)


async def test_a_missing_blob_names_the_setting(tmp_path: Path) -> None:
    codec, _ = chain(tmp_path)
    encoded = await codec.encode([payload(CANARY * 1000)])
    (blob,) = list((tmp_path / "blobs").iterdir())
    blob.unlink()
    with pytest.raises(ClaimCheckError, match="LANES_BLOB_DIR") as err:
        await codec.decode(encoded)
    assert str(tmp_path) not in str(err.value)  # the message can reach a codec server's caller


async def test_claim_check_threshold_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings(encryption_keys=f"k1={b64(key())}", blob_dir=tmp_path, claim_check_threshold=100)
    codec = build_codec(settings)
    assert codec is not None
    (encoded,) = await codec.encode([payload("x" * 200)])
    assert encoded.metadata["encoding"] == CLAIM_CHECK_ENCODING
    assert await codec.decode([encoded]) == [payload("x" * 200)]
