"""Signed policies: a policy source with a trust accepts only what enough distinct trusted keys signed.

Every refusal case is tried on a source that already serves a good policy too: the last good policy
stays in force, and the status names the refused file's reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policy import PolicySource, default_policy_path, load_policy
from policy.signatures import (
    SIGNATURE_SUFFIX,
    PolicySignatureError,
    PolicyTrust,
    SignatureFile,
    generate_key,
    public_key_text,
    sign_digest,
)


def _key() -> tuple[bytes, str]:
    pem, public = generate_key()
    return pem, public_key_text(public)


def _sign(path: Path, *pems: bytes) -> None:
    digest = load_policy(path).digest
    document = SignatureFile(signatures=[sign_digest(digest, pem) for pem in pems])
    Path(str(path) + SIGNATURE_SUFFIX).write_text(document.model_dump_json())


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    shutil.copy(default_policy_path(), path)
    return path


def test_a_correctly_signed_policy_is_loaded_and_its_decisions_name_the_key(policy_file: Path) -> None:
    pem, public = _key()
    _sign(policy_file, pem)
    trust = PolicyTrust.parse(public)
    policy = PolicySource(policy_file, trust=trust).current()
    [key] = trust.keys
    assert policy.signed_by == (key,)
    from policy import PolicyQuery, evaluate

    assert evaluate(policy, PolicyQuery(job_type="public_research")).policy_signed_by == [key]


def _refused(policy_file: Path, trust: PolicyTrust) -> str:
    with pytest.raises(PolicySignatureError) as caught:
        PolicySource(policy_file, trust=trust).current()
    return "; ".join(caught.value.errors)


def test_an_unsigned_policy_is_refused(policy_file: Path) -> None:
    _, public = _key()
    assert "0 of 1 required signatures" in _refused(policy_file, PolicyTrust.parse(public))


def test_a_wrong_signature_is_refused(policy_file: Path) -> None:
    pem, public = _key()
    _sign(policy_file, pem)
    sig = Path(str(policy_file) + SIGNATURE_SUFFIX)
    data = json.loads(sig.read_text())
    forged = _key()[0]
    # The trusted key's id, but another key's signature: it must not verify.
    data["signatures"][0]["signature"] = json.loads(
        SignatureFile(signatures=[sign_digest(load_policy(policy_file).digest, forged)]).model_dump_json()
    )["signatures"][0]["signature"]
    sig.write_text(json.dumps(data))
    assert "does not verify" in _refused(policy_file, PolicyTrust.parse(public))


def test_a_signature_by_an_untrusted_key_is_refused(policy_file: Path) -> None:
    pem, _ = _key()
    _, trusted = _key()
    _sign(policy_file, pem)
    assert "untrusted key" in _refused(policy_file, PolicyTrust.parse(trusted))


def test_a_policy_edited_after_signing_is_refused_and_the_last_good_stays(policy_file: Path) -> None:
    pem, public = _key()
    _sign(policy_file, pem)
    source = PolicySource(policy_file, trust=PolicyTrust.parse(public))
    good = source.current()
    text = policy_file.read_text().replace("require_encryption = true", "require_encryption = false")
    policy_file.write_text(text)
    assert source.current().digest == good.digest  # still the signed one
    status = source.status()
    assert status.refused_error is not None
    assert "signs another digest" in status.refused_error
    # Signed again, the edit is accepted at the next decision.
    _sign(policy_file, pem)
    assert source.current().digest != good.digest
    assert source.status().refused_error is None


def test_two_signatures_required_and_one_given_is_refused(policy_file: Path) -> None:
    pem_a, public_a = _key()
    pem_b, public_b = _key()
    trust = PolicyTrust.parse(f"{public_a},{public_b}", required=2)
    _sign(policy_file, pem_a)
    assert "1 of 2 required signatures" in _refused(policy_file, trust)
    _sign(policy_file, pem_a, pem_a)  # the same key twice is one signer
    assert "1 of 2 required signatures" in _refused(policy_file, trust)
    _sign(policy_file, pem_a, pem_b)
    assert len(PolicySource(policy_file, trust=trust).current().signed_by) == 2


def test_a_trust_that_could_never_be_met_or_a_bad_key_is_refused() -> None:
    _, public = _key()
    with pytest.raises(ValueError, match="2 signatures required but 1 distinct"):
        PolicyTrust.parse(public, required=2)
    with pytest.raises(ValueError, match="key 1 is not an Ed25519 public key"):
        PolicyTrust.parse("not-a-key")


def test_a_malformed_signature_file_is_refused(policy_file: Path) -> None:
    _, public = _key()
    Path(str(policy_file) + SIGNATURE_SUFFIX).write_text("{not json")
    assert "malformed signature file" in _refused(policy_file, PolicyTrust.parse(public))
