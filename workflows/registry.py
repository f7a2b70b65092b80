"""Every workflow class a lanes worker runs; :class:`~lanes.plugin.LanesPlugin` registers exactly these."""

from workflows.model_task import ModelTaskWorkflow

WORKFLOWS = [ModelTaskWorkflow]
"""Every workflow class a lanes worker runs."""
