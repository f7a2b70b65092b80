"""Signed policies: a worker can be told to accept only a policy that enough trusted reviewers signed.

A signature is Ed25519 (``cryptography``) over the policy's **digest** (``policy.digest``: the canonical
JSON of the rules), so it survives reformatting and comments but not a changed setting. Signatures are
detached, in ``<policy file>.sig`` (JSON: ``{"signatures": [{"key_id", "digest", "signature"}]}``), so
the policy file itself stays the plain TOML a reviewer reads; ``lanes policy sign FILE --key KEYFILE``
adds one, ``lanes policy keygen`` makes a key pair.

A :class:`PolicyTrust` (from ``LANES_POLICY_TRUSTED_KEYS`` and ``LANES_POLICY_REQUIRED_SIGNATURES``)
verifies a policy: it needs signatures over *this* digest from at least ``required`` **distinct**
trusted keys. Anything else (no signature file, a malformed one, a signature by an untrusted key, over
another digest, or that does not verify) is not counted, and too few counted refuses the policy with
:class:`PolicySignatureError`, a :class:`~policy.errors.PolicyFileError`: a worker keeps deciding with
its last good policy, exactly as for an invalid file. The key ids that signed the policy in force are
recorded on every decision (``PolicyDecision.policy_signed_by``).

Key ids are the first 16 hex digits of the SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy.compiled import CompiledPolicy
from policy.errors import PolicyFileError

__all__ = [
    "SIGNATURE_SUFFIX",
    "PolicySignature",
    "PolicySignatureError",
    "PolicyTrust",
    "SignatureCheck",
    "SignatureFile",
    "check_signatures",
    "generate_key",
    "key_id",
    "public_key_text",
    "read_signatures",
    "sign_digest",
]

SIGNATURE_SUFFIX = ".sig"
"""The detached signature file is the policy file's path plus this."""

ANOTHER_DIGEST = "signs another digest (the policy changed after it was signed)"
"""Why a signature over an earlier (or any other) digest does not count."""

DOMAIN = b"lanes-policy-digest\x00"
"""Prefix of every signed message, so a lanes policy signature can never be replayed as another's."""


class PolicySignatureError(PolicyFileError):
    """A policy without enough valid signatures from distinct trusted keys."""


class PolicySignature(BaseModel):
    """One reviewer's signature over a policy digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    signature: str = Field(max_length=200)
    """Base64 of the 64-byte Ed25519 signature over :data:`DOMAIN` + digest."""


class SignatureFile(BaseModel):
    """The detached ``.sig`` file: every signature given for the policy beside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signatures: list[PolicySignature] = Field(default_factory=list, max_length=64)


class SignatureCheck(BaseModel):
    """What one signature proves for a given policy digest and trust."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    valid: bool
    reason: str
    """``verified``, or why it does not count (``untrusted key``, ``signs another digest``, ...)."""


def key_id(public: Ed25519PublicKey) -> str:
    """The key's id: 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    """The public key as ``LANES_POLICY_TRUSTED_KEYS`` takes it: base64 of its 32 raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def generate_key() -> tuple[bytes, Ed25519PublicKey]:
    """A new signing key: its private key as unencrypted PKCS#8 PEM (keep it 0600), and its public key."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, private.public_key()


def sign_digest(digest: str, private_pem: bytes) -> PolicySignature:
    """Sign a policy digest with a PEM private key.

    Raises:
        ValueError: The PEM is not an Ed25519 private key.
    """
    private = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key (make one with `lanes policy keygen`)")
    signature = private.sign(DOMAIN + digest.encode())
    return PolicySignature(
        key_id=key_id(private.public_key()), digest=digest, signature=base64.b64encode(signature).decode()
    )


def read_signatures(policy_path: str | os.PathLike[str]) -> SignatureFile:
    """The signatures beside a policy file; none when there is no ``.sig`` file.

    Raises:
        PolicySignatureError: The file exists but cannot be read or is malformed.
    """
    path = Path(os.fspath(policy_path) + SIGNATURE_SUFFIX)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SignatureFile()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicySignatureError([f"{path}: cannot read signatures: {exc}"], source=str(path)) from None
    try:
        return SignatureFile.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise PolicySignatureError([f"{path}: malformed signature file: {first}"], source=str(path)) from None


@dataclass(frozen=True)
class PolicyTrust:
    """The keys a worker trusts to sign policies, and how many distinct ones must have signed."""

    keys: dict[str, Ed25519PublicKey]
    """Trusted public keys by key id."""
    required: int = 1

    @classmethod
    def parse(cls, keys: str, required: int = 1) -> PolicyTrust:
        """Read ``LANES_POLICY_TRUSTED_KEYS``: comma-separated base64 raw public keys.

        Raises:
            ValueError: A key is not 32 bytes of base64, or ``required`` is below 1 or above the number
                of keys (a policy could then never be accepted).
        """
        parsed: dict[str, Ed25519PublicKey] = {}
        for position, item in enumerate(part.strip() for part in keys.split(",") if part.strip()):
            try:
                raw = base64.b64decode(item, validate=True)
                public = Ed25519PublicKey.from_public_bytes(raw)
            except (binascii.Error, ValueError):
                raise ValueError(
                    f"key {position + 1} is not an Ed25519 public key (base64 of 32 bytes, as "
                    "`lanes policy keygen` prints it)"
                ) from None
            parsed[key_id(public)] = public
        if not 1 <= required <= len(parsed):
            raise ValueError(f"{required} signatures required but {len(parsed)} distinct trusted keys given")
        return cls(keys=parsed, required=required)

    def check(self, policy: CompiledPolicy, signatures: SignatureFile) -> list[SignatureCheck]:
        """What each signature proves for this policy's digest."""
        checks: list[SignatureCheck] = []
        for item in signatures.signatures:
            public = self.keys.get(item.key_id)
            if public is None:
                checks.append(SignatureCheck(key_id=item.key_id, valid=False, reason="untrusted key"))
                continue
            if item.digest != policy.digest:
                checks.append(SignatureCheck(key_id=item.key_id, valid=False, reason=ANOTHER_DIGEST))
                continue
            try:
                public.verify(base64.b64decode(item.signature, validate=True), DOMAIN + item.digest.encode())
            except (InvalidSignature, binascii.Error, ValueError):
                checks.append(SignatureCheck(key_id=item.key_id, valid=False, reason="does not verify"))
                continue
            checks.append(SignatureCheck(key_id=item.key_id, valid=True, reason="verified"))
        return checks

    def signed_by(self, policy: CompiledPolicy, policy_path: str | os.PathLike[str]) -> tuple[str, ...]:
        """The distinct trusted key ids whose signatures over ``policy.digest`` verify.

        Raises:
            PolicySignatureError: Fewer than ``required`` of them, naming the file and every reason.
        """
        checks = self.check(policy, read_signatures(policy_path))
        valid = tuple(sorted({c.key_id for c in checks if c.valid}))
        if len(valid) >= self.required:
            return valid
        source = os.fspath(policy_path)
        found = "; ".join(f"{c.key_id}: {c.reason}" for c in checks) or f"no {SIGNATURE_SUFFIX} file"
        raise PolicySignatureError(
            [
                f"{source}: signatures: {len(valid)} of {self.required} required signatures from distinct "
                f"trusted keys over {policy.digest} ({found}); "
                f"sign it with `lanes policy sign {source} --key KEYFILE`"
            ],
            source=source,
        )


def check_signatures(
    policy: CompiledPolicy, policy_path: str | os.PathLike[str], trust: PolicyTrust | None
) -> list[SignatureCheck]:
    """For ``lanes policy check``: every signature beside the file and whether it verifies.

    Without a trust, a signature can only be checked against the digest (its key is then unknown).
    """
    signatures = read_signatures(policy_path)
    if trust is not None:
        return trust.check(policy, signatures)
    return [
        SignatureCheck(
            key_id=s.key_id,
            valid=False,
            reason="no trusted keys configured (LANES_POLICY_TRUSTED_KEYS)"
            if s.digest == policy.digest
            else ANOTHER_DIGEST,
        )
        for s in signatures.signatures
    ]
