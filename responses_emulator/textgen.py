"""Deterministic text generation.

The emulator must produce the same bytes for the same request on every run, so that a crash-recovery
test can compare the text a resumed job returns with the text an uninterrupted run returned. Text is
derived from a SHA-256 of the request's semantic fields (and the configured seed) and drawn from a
fixed vocabulary, one token per word.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_WORDS: tuple[str, ...] = (
    "lane",
    "queue",
    "worker",
    "signal",
    "retry",
    "budget",
    "ledger",
    "window",
    "stream",
    "cursor",
    "token",
    "durable",
    "policy",
    "replay",
    "cancel",
    "status",
    "poll",
    "background",
    "result",
    "batch",
    "shard",
    "route",
    "audit",
    "deadline",
    "backoff",
    "heartbeat",
    "timer",
    "schedule",
    "journal",
    "commit",
    "record",
    "schema",
    "event",
    "handler",
    "runtime",
    "sandbox",
    "gateway",
    "quota",
    "limit",
    "sample",
    "summary",
    "answer",
    "report",
    "draft",
    "review",
    "verdict",
)


def request_digest(
    *,
    seed: int,
    model: str,
    input_: Any,
    instructions: Any,
    max_output_tokens: int | None,
) -> bytes:
    """Hash the fields that determine a response's text.

    Returns:
        32 bytes that seed :func:`generate_tokens`; equal requests give equal digests.
    """
    material = json.dumps(
        [seed, model, input_, instructions, max_output_tokens],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).digest()


def generate_tokens(digest: bytes, count: int) -> list[str]:
    """Expand a digest into ``count`` tokens whose concatenation is the output text.

    The first token has no leading space and every later one has one, so the concatenation of any
    prefix is itself readable text; the final token ends with a full stop.

    Returns:
        The tokens, in order.
    """
    tokens: list[str] = []
    block = digest
    counter = 0
    while len(tokens) < count:
        block = hashlib.sha256(block + counter.to_bytes(4, "big")).digest()
        counter += 1
        for i in range(0, len(block), 2):
            if len(tokens) == count:
                break
            word = _WORDS[int.from_bytes(block[i : i + 2], "big") % len(_WORDS)]
            tokens.append(word.capitalize() if not tokens else " " + word)
    tokens[-1] += "."
    return tokens


def count_input_tokens(input_: Any, instructions: Any) -> int:
    """Approximate prompt tokens (about four characters each) for the ``usage`` block.

    Returns:
        A positive token count.
    """
    text = json.dumps([input_, instructions], ensure_ascii=False)
    return max(1, len(text) // 4)
