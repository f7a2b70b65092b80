"""The compiled policy: a validated, cross-checked policy document with its digest and index.

A ``Policy`` is only the file's data: pydantic checks each table on its own, so a ``Policy`` may still
point at data classes that do not exist, loosen the sensitivity scale or let background reach a zdr
class. ``CompiledPolicy`` is the only form the engine decides with (``evaluate``, ``PolicySource``, the
matrix and the diff accept nothing else), and it can only be built by running every cross-check of
``policy.checks``. So a policy that skipped the checks (say ``Policy.model_validate(...)``) cannot
decide a job, and every decision carries the digest of the rules that made it.

It is a frozen dataclass rather than private attributes on the pydantic model, so the state evaluation
depends on is visible, typed and immutable, and reading the index on the hot path is a slot read.

Usage::

    policy = load_policy()            # the usual way: read, validate, cross-check, compile
    policy.digest, policy.version, policy.source
    evaluate(policy, PolicyQuery(job_type="public_research"))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import final

from policy.checks import policy_problems
from policy.digest import policy_digest
from policy.errors import PolicyFileError
from policy.index import PolicyIndex, build_index
from policy.models import Policy

__all__ = ["CompiledPolicy"]


@final
@dataclass(frozen=True, slots=True, eq=False, init=False)
class CompiledPolicy:
    """A policy that passed every cross-check, with its digest and the index evaluation reads.

    Build it with ``load_policy`` or ``load_policy_text``; constructing it directly from a ``Policy``
    runs the same cross-checks, so no instance can exist for a policy that fails them. Instances are
    immutable; equality is identity (compare ``digest`` to compare rules).

    Attributes:
        document: The validated policy file. Its models are frozen; do not mutate its dicts, the digest
            and index were computed from them.
        source: The file path as given to the loader (or the label passed to ``load_policy_text``), for
            messages and logs.
        digest: ``sha256:<hex>`` of the document's canonical JSON (``policy.digest``): identifies the
            rules, whatever their layout. Never empty.
        index: The document compiled for evaluation (``policy.index``): one merged view per tenant.
        background_off: ``None``, or where an emergency kill switch outside the file came from (see
            ``PolicySource``): every decision then loses the background lane
            (``stateless.kill-switch-override``). Not part of the digest: the rules are unchanged.
        signed_by: Key ids of trusted signatures that verified (``with_signatures``); empty otherwise.
    """

    document: Policy
    source: str
    digest: str
    index: PolicyIndex
    background_off: str | None
    signed_by: tuple[str, ...]

    def __init__(self, document: Policy, *, source: str = "<memory>") -> None:
        """Cross-check, digest and index a validated policy document.

        Args:
            document: A policy whose keys and types pydantic validated.
            source: The name used in error messages and as ``source``.

        Raises:
            TypeError: ``document`` is not a ``Policy``.
            PolicyFileError: The document fails a cross-check; ``errors`` lists every problem, each
                prefixed with ``source``.
        """
        if not isinstance(document, Policy):
            raise TypeError(f"CompiledPolicy needs a Policy document, not {type(document).__name__}")
        problems = policy_problems(document)
        if problems:
            raise PolicyFileError([f"{source}: {problem}" for problem in problems], source=source)
        # Frozen: the generated __setattr__ refuses, so set the slots the way dataclasses do.
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "digest", policy_digest(document))
        object.__setattr__(self, "index", build_index(document))
        object.__setattr__(self, "background_off", None)
        object.__setattr__(self, "signed_by", ())

    def without_background(self, origin: str) -> CompiledPolicy:
        """Return this policy with the background lane switched off from outside the file.

        Args:
            origin: Where the switch came from, for the decision's reasons (e.g. ``environment
                LANES_BACKGROUND_ENABLED='false'``).

        Returns:
            A copy sharing document, digest and index (nothing is recompiled), with ``background_off``.
        """
        return self._with(background_off=origin)

    def with_signatures(self, key_ids: tuple[str, ...]) -> CompiledPolicy:
        """Return this policy recording the trusted keys whose signatures over its digest verified.

        Set by ``PolicySource`` after ``policy.signatures`` verified them; every decision then carries
        them (``PolicyDecision.policy_signed_by``). Not part of the digest: the rules are unchanged.
        """
        return self._with(signed_by=key_ids)

    def _with(self, **changes: object) -> CompiledPolicy:
        """A copy sharing document, digest and index (nothing is recompiled), with ``changes`` set."""
        other = object.__new__(CompiledPolicy)
        for field in fields(self):
            object.__setattr__(other, field.name, changes.get(field.name, getattr(self, field.name)))
        return other

    def __repr__(self) -> str:
        # The document and index are large; name the policy instead of dumping it.
        off = f", background_off={self.background_off!r}" if self.background_off else ""
        return (
            f"CompiledPolicy(source={self.source!r}, version={self.version!r}, digest={self.digest!r}{off})"
        )

    @property
    def version(self) -> str:
        """The ``policy_version`` the file declares; decisions carry it next to the digest."""
        return self.document.policy_version

    @property
    def class_names(self) -> list[str]:
        """Data class ids from least to most sensitive."""
        return list(self.document.data_class_order)

    @property
    def job_type_names(self) -> list[str]:
        """Job type ids, sorted."""
        return sorted(self.document.job_types)
