"""How many lane decisions per second one core makes with the shipped policy.

Every job's first activity evaluates the policy, so ``evaluate`` must stay far below the cost of a
model call; the target is over 100,000 decisions per second on one core. The query mix covers every
job type and data class, missing and unknown classes, approvals, tenants and oversized inputs, so every
branch of the evaluation is timed.

Usage::

    .venv/bin/python bench/policy_decisions.py --seconds 3
"""

from __future__ import annotations

import argparse
import itertools
import time
from datetime import UTC, datetime

from policy import PolicyQuery, evaluate, load_policy


def _queries(job_types: list[str], classes: list[str]) -> list[PolicyQuery]:
    queries = [
        PolicyQuery(job_type=job, data_class=cls, input_chars=1_000)
        for job, cls in itertools.product(job_types, [*classes, None, "unknown"])
    ]
    queries += [PolicyQuery(job_type=job, approval="SEC-0000", tenant="acme") for job in job_types]
    queries += [PolicyQuery(job_type=job, input_chars=10_000_000) for job in job_types]
    return queries


def measure(seconds: float) -> tuple[float, int, int, str]:
    """Evaluate the query mix for ``seconds``; return decisions/s, decisions, distinct queries, digest."""
    policy = load_policy()
    queries = _queries(policy.job_type_names, policy.class_names)
    now = datetime(2026, 4, 24, tzinfo=UTC)
    for query in queries:  # warm up, and prove every query evaluates
        evaluate(policy, query, now=now)

    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    batch = len(queries)
    while time.perf_counter() < deadline:
        for query in queries:
            evaluate(policy, query, now=now)
        count += batch
    elapsed = time.perf_counter() - start
    return count / elapsed, count, batch, policy.digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to measure")
    args = parser.parse_args()
    rate, count, batch, digest = measure(args.seconds)
    print(
        f"{rate:,.0f} decisions/s on one core "
        f"({count:,} decisions in {args.seconds:.2f} s, {batch} distinct queries, policy {digest[:19]})"
    )


if __name__ == "__main__":
    main()
