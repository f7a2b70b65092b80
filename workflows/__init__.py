"""Workflows of lanes; :class:`~client.plugin.LanesPlugin` registers exactly :data:`WORKFLOWS`."""

from workflows.model_task import ModelTaskWorkflow

WORKFLOWS = [ModelTaskWorkflow]
"""Every workflow class a lanes worker runs."""

__all__ = ["WORKFLOWS", "ModelTaskWorkflow"]
