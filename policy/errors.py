"""The errors the policy engine raises, all of them ``ValueError`` subclasses.

A bad policy file and an unknown job type are configuration mistakes, not transient failures: callers
(the worker's ``evaluate_policy`` activity, the ``lanes policy`` CLI) report them and never retry them.

Hierarchy::

    ValueError
    * PolicyError
      + PolicyFileError       the file cannot be read, parsed or validated (lists every problem)
      + UnknownJobTypeError   a query names a job type the policy does not define
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PolicyError", "PolicyFileError", "UnknownJobTypeError"]


class PolicyError(ValueError):
    """Base class of every policy error, so callers can catch the whole family at once."""


class PolicyFileError(PolicyError):
    """A policy file that cannot be used, with every problem found in it.

    Each entry of ``errors`` is one line that names the file, the key path and the fix, for example
    ``policy/default.toml: job_types.legal_review.min_data_class: 'secret' is not a data class; known:
    public, internal``. All problems are reported at once so a reviewer fixes a file in one pass.

    Attributes:
        errors: One message per problem, in file order where known.
        source: The file path as given, or the label passed to ``load_policy_text``.
    """

    def __init__(self, errors: Sequence[str], *, source: str) -> None:
        self.errors: list[str] = list(errors)
        self.source = source
        super().__init__("\n".join(self.errors))


class UnknownJobTypeError(PolicyError):
    """A query names a job type that the policy does not define.

    Job types are the unit of data-control review, so an unknown one is refused rather than mapped to a
    default: running undeclared work would bypass the review.

    Attributes:
        job_type: The job type the query asked for.
        known: The job types the policy defines, sorted.
    """

    def __init__(self, job_type: str, known: Sequence[str]) -> None:
        self.job_type = job_type
        self.known: list[str] = sorted(known)
        super().__init__(f"unknown job type {job_type!r}; known: {', '.join(self.known)}")
