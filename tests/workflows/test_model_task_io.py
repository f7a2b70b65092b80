"""The names clients use to start, signal and query jobs are the workflow's own, and using them loads
neither the workflow nor its activities nor the OpenAI SDK."""

from __future__ import annotations

import subprocess
import sys

from temporalio import workflow

from tests.cli_runner import ROOT
from workflows.model_task import ModelTaskWorkflow
from workflows.model_task_io import (
    CANCEL_SIGNAL,
    PROVIDER_FINISHED_SIGNAL,
    STATUS_QUERY,
    WORKFLOW_TYPE,
    CancelInput,
    ModelTaskResult,
    ProviderFinishedInput,
    StatusResult,
)


def test_the_names_are_the_workflow_definitions() -> None:
    definition = workflow._Definition.must_from_class(ModelTaskWorkflow)
    assert definition.name == WORKFLOW_TYPE
    assert STATUS_QUERY in definition.queries
    assert {CANCEL_SIGNAL, PROVIDER_FINISHED_SIGNAL} <= set(definition.signals)
    assert definition.ret_type is ModelTaskResult
    assert definition.queries[STATUS_QUERY].ret_type is StatusResult
    assert definition.signals[CANCEL_SIGNAL].arg_types == [CancelInput]
    assert definition.signals[PROVIDER_FINISHED_SIGNAL].arg_types == [ProviderFinishedInput]


def test_the_cli_and_the_job_client_load_no_workflow_and_no_provider_sdk() -> None:
    """Each CLI command is a fresh process: the SDK's import (half a second of CPU) is paid only by the
    commands that call the provider (``lanes watch``, the stack, the worker)."""
    probe = (
        "import sys\n"
        "import lanes.cli.main, lanes.jobs, lanes.connect\n"
        "heavy = ('openai', 'activities.responses', 'workflows.model_task')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout
