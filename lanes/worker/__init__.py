"""What a worker process needs beyond the plugin: tuning, health file, metrics, benign failures.

:mod:`worker` (the entry point) calls :func:`lanes.worker.serving.main`. Client code needs only
:class:`~lanes.worker.tuning.WorkerTuning`, which :class:`~lanes.settings.Settings` composes.
"""
