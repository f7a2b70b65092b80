"""One Temporal plugin that carries everything lanes needs from Temporal, for clients, workers and replayers.

As sdk-python's ``OpenAIAgentsPlugin`` and pydantic-ai's Temporal plugin do, :class:`LanesPlugin` owns
the data converter (pydantic, because every workflow and activity payload is a pydantic model) and the
workflows a worker runs. It is registered once, on the client (``lanes/connect.py``); workers built
from that client inherit it, and the replayer takes the same list, so nothing is configured twice and
nothing is forgotten on one of the three.

With a payload codec (``lanes/codec.py``: encryption, then a claim check for large payloads) the plugin's
converter encodes every payload with it and encodes failure messages and stack traces too, so nothing a
job carries is readable in history without the key.

Its payload converter refuses a payload that does not fit its type with pydantic's error *without the
values*: field names, rules and counts only (:class:`PayloadConverter`). A workflow input, signal or
activity argument that fails validation is logged by the SDK (a failed workflow task, a dropped signal),
and pydantic's default message quotes the input (``input_value={'input': 'the prompt...'}``), so the
refusal itself would put a job's prompt or output in the worker's log.

It also carries the worker interceptor that records lanes' job metrics (``lanes/worker/job_metrics.py``).
Activities are not in the plugin: they are methods of objects that own an OpenAI client and a policy
source, which only the worker builds (``worker.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)
from temporalio.plugin import SimplePlugin
from temporalio.worker import ReplayerConfig, WorkerConfig

from lanes.codec import KeylessCodec, configure_replayer, configure_worker
from lanes.failure_text import FailureTextInterceptor
from lanes.worker.benign_failures import (
    BenignFailureInterceptor,
    EncodedAttributesFailureConverter,
    FailureConverter,
)
from lanes.worker.job_metrics import JobMetricsInterceptor
from workflows.task_queues import runs_workflows


def without_input(error: ValidationError) -> ValidationError:
    """``error`` with the same title, types, locations, messages and context, but no input values.

    Its string form, ``repr`` and ``errors()`` hold no part of the validated data: pydantic's
    ``hide_input`` drops ``input_value`` from the message, and each line's input is replaced by ``None``
    so that code logging ``errors()`` cannot quote it either.
    """
    lines: list[InitErrorDetails] = []
    for line in error.errors(include_url=False):
        details: InitErrorDetails = {"type": line["type"], "loc": line["loc"], "input": None}
        if "ctx" in line:
            details["ctx"] = line["ctx"]
        lines.append(details)
    return ValidationError.from_exception_data(error.title, lines, input_type="json", hide_input=True)


class _JSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            return super().from_payload(payload, type_hint)
        except ValidationError as error:
            refused = without_input(error)
        # Raised outside the handler, so the refusal does not keep the original (with the values) as its
        # __context__ for a traceback or an error reporter to print.
        raise refused


class PayloadConverter(CompositePayloadConverter):
    """temporalio's pydantic payload converter, whose validation errors never quote the payload.

    Built as :class:`temporalio.contrib.pydantic.PydanticPayloadConverter` is (the default encodings, JSON
    through pydantic), and raises the same :class:`~pydantic.ValidationError` (same locations, types and
    messages, so the SDK and callers handle it as before), built by :func:`without_input`.
    """

    def __init__(self) -> None:
        super().__init__(
            *(
                _JSONPayloadConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter,
    payload_converter_class=PayloadConverter,
    failure_converter_class=FailureConverter,
    payload_codec=KeylessCodec(),
)
"""Converter of every client, worker, replayer and test environment when no codec is configured: pydantic
payloads whose refusals quote no value, benign failures without stack traces
(``lanes/worker/benign_failures.py``), and :class:`~lanes.codec.KeylessCodec`, which refuses encrypted
payloads in one line instead of the SDK's ``KeyError``."""


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
    """Add lanes' workflows to a worker's or replayer's list, once.

    The workflows (and through them the activities and the OpenAI SDK) are imported only here, when a
    worker or replayer is built: a client that only starts and reads jobs never loads them.
    """
    from workflows.registry import WORKFLOWS

    workflows = list(existing or ())
    return workflows + [w for w in WORKFLOWS if w not in workflows]


class LanesPlugin(SimplePlugin):
    """lanes' data converter and workflows, for a client, the workers it builds and a replayer.

    Workers on the activity-only queues (stream, poll, and a separate stateless queue: see
    :func:`workflows.task_queues.runs_workflows`) get no workflows: jobs never start there.

    Args:
        codec: Payload codec (from :func:`lanes.codec.build_codec`); ``None`` writes clear text.
        stateless_task_queue: ``LANES_STATELESS_TASK_QUEUE`` when it differs from the main queue.
    """

    def __init__(self, codec: PayloadCodec | None = None, *, stateless_task_queue: str | None = None) -> None:
        self.codec = codec
        self.stateless_task_queue = stateless_task_queue
        super().__init__(
            "lanes.LanesPlugin",
            data_converter=data_converter(codec),
            workflows=_with_workflows,
            # Worker-only: jobs, decisions, tokens and completion lag from results (no-op without metrics).
            # Benign "not yet" failures without tracebacks (``lanes/worker/benign_failures.py``).
            interceptors=[JobMetricsInterceptor(), BenignFailureInterceptor(), FailureTextInterceptor()],
        )

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """Add the workflows where jobs run; give the worker a client whose codec drops refused signals.

        A codec exception while the SDK decodes an activation fails the workflow task, and the signal that
        caused it stays in history: the job would be stuck for good. See :func:`lanes.codec.for_workers`.
        """
        config = super().configure_worker(config)
        if not runs_workflows(config.get("task_queue", ""), stateless_task_queue=self.stateless_task_queue):
            from workflows.registry import WORKFLOWS

            config["workflows"] = [w for w in config.get("workflows", ()) if w not in WORKFLOWS]
        return configure_worker(config, self.codec)

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        """Also decode as a worker does, so a history in which a worker dropped a signal replays."""
        return configure_replayer(super().configure_replayer(config), self.codec)
