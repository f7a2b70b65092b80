"""Signed policies with a real worker: a worker that requires signatures refuses to start on an unsigned
policy, and a job decided by a signed one records the key that signed it in its decision (history)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from lanes.connect import openai_client
from lanes.jobs import start_job
from lanes.settings import Settings
from lanes.worker.serving import serving
from policy import default_policy_path, load_policy
from policy.signatures import (
    SIGNATURE_SUFFIX,
    PolicySignatureError,
    SignatureFile,
    generate_key,
    key_id,
    public_key_text,
    sign_digest,
)
from workflows.model_task_io import ModelTaskInput


async def test_a_worker_requiring_signatures_runs_a_signed_policy_and_refuses_an_unsigned_one(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.toml"
    shutil.copy(default_policy_path(), policy_file)
    pem, public = generate_key()
    trusted = settings.model_copy(
        update={"policy_path": str(policy_file), "policy_trusted_keys": public_key_text(public)}
    )
    async with openai_client(trusted) as provider:
        with pytest.raises(PolicySignatureError, match="0 of 1 required signatures"):
            async with serving(client, trusted, provider):
                pass
        signature = sign_digest(load_policy(policy_file).digest, pem)
        Path(str(policy_file) + SIGNATURE_SUFFIX).write_text(
            SignatureFile(signatures=[signature]).model_dump_json()
        )
        async with serving(client, trusted, provider) as queue:
            task = ModelTaskInput(job_type="support_analysis", data_class="confidential", input="signed job")
            handle = await start_job(client, task, workflow_id=f"signed-{uuid.uuid4()}", task_queue=queue)
            result = await handle.result()
    assert result.decision.policy_signed_by == [key_id(public)]
