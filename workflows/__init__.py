"""Workflows of lanes and what they share: activity options, task queues, search attributes, spans.

The workflow classes a worker runs are listed in :mod:`workflows.registry`; importing this package
imports none of them, so a client that only starts and reads jobs does not load the activities.
"""
