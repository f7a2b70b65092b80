"""One Temporal plugin that carries everything lanes needs from Temporal, for clients, workers and replayers.

As sdk-python's ``OpenAIAgentsPlugin`` and pydantic-ai's Temporal plugin do, :class:`LanesPlugin` owns
the data converter (pydantic, because every workflow and activity payload is a pydantic model) and the
workflows a worker runs. It is registered once, on the client (``client/connect.py``); workers built
from that client inherit it, and the replayer takes the same list, so nothing is configured twice and
nothing is forgotten on one of the three.

With a payload codec (``client/codec.py``: encryption, then a claim check for large payloads) the plugin's
converter encodes every payload with it and encodes failure messages and stack traces too, so nothing a
job carries is readable in history without the key.

It also carries the worker interceptor that records lanes' job metrics (``client/job_metrics.py``).
Activities are not in the plugin: they are methods of objects that own an OpenAI client and a policy
source, which only the worker builds (``worker.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.plugin import SimplePlugin

from client.benign_failures import (
    BenignFailureInterceptor,
    EncodedAttributesFailureConverter,
    FailureConverter,
)
from client.job_metrics import JobMetricsInterceptor
from workflows import WORKFLOWS

DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, failure_converter_class=FailureConverter
)
"""Converter of every client, worker, replayer and test environment when no codec is configured: pydantic
payloads, and benign failures without stack traces (``client/benign_failures.py``)."""


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic converter, with ``codec`` on every payload and on failure messages when given."""
    if codec is None:
        return DATA_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=codec,
        failure_converter_class=EncodedAttributesFailureConverter,
    )


def _with_workflows(existing: Sequence[type] | None) -> Sequence[type]:
    """Add lanes' workflows to a worker's or replayer's list, once."""
    workflows = list(existing or ())
    return workflows + [w for w in WORKFLOWS if w not in workflows]


class LanesPlugin(SimplePlugin):
    """lanes' data converter and workflows, for a client, the workers it builds and a replayer.

    Args:
        codec: Payload codec (from :func:`client.codec.build_codec`); ``None`` writes clear text.
    """

    def __init__(self, codec: PayloadCodec | None = None) -> None:
        self.codec = codec
        super().__init__(
            "lanes.LanesPlugin",
            data_converter=data_converter(codec),
            workflows=_with_workflows,
            # Worker-only: jobs, decisions, tokens and completion lag from results (no-op without metrics).
            # Benign "not yet" failures without tracebacks (``client/benign_failures.py``).
            interceptors=[JobMetricsInterceptor(), BenignFailureInterceptor()],
        )
