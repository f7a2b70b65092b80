"""The task queues a job's activities run on, derived from the workflow's own queue.

Workflows and workers both call these, so a worker started with ``LANES_TASK_QUEUE=q`` serves exactly the
queues its jobs use, with nothing else to configure.
"""

STREAM_SUFFIX = ".streams"
"""Suffix of the stream task queue."""

POLL_SUFFIX = ".polls"
"""Suffix of the poll task queue."""


def stream_queue(task_queue: str) -> str:
    """The queue of followed streams for jobs started on ``task_queue``.

    A followed stream holds a worker slot and a connection for as long as the model generates (minutes to
    hours); on the main queue a hundred of them would hold every slot, and a new job's one-millisecond
    policy decision would wait behind them. On their own queue they get their own slot budget
    (``LANES_WORKER_MAX_CONCURRENT_STREAMS``).
    """
    return task_queue + STREAM_SUFFIX


def poll_queue(task_queue: str) -> str:
    """The queue of poll-mode checks for jobs started on ``task_queue``.

    Ten thousand waiting jobs make hundreds of checks a second; on the main queue a new job's policy
    decision would queue behind that backlog. On their own queue, with their own slots
    (``LANES_WORKER_MAX_CONCURRENT_POLLS``), they never delay a decision, a create or a cancel.
    """
    return task_queue + POLL_SUFFIX


def runs_workflows(task_queue: str, *, stateless_task_queue: str | None = None) -> bool:
    """Whether a worker on ``task_queue`` runs lanes' workflows, or only the one activity its queue carries.

    Jobs start on the main queue only. The stream, poll and stateless queues each carry one activity, so a
    worker there needs no workflows: it neither validates them in a sandbox when it is built nor keeps
    long polls open for workflow tasks that never come.

    Args:
        task_queue: The worker's queue.
        stateless_task_queue: ``LANES_STATELESS_TASK_QUEUE`` when it names a queue of its own (not the main
            queue, which then also carries the stateless activity).
    """
    if task_queue.endswith((STREAM_SUFFIX, POLL_SUFFIX)):
        return False
    return stateless_task_queue is None or task_queue != stateless_task_queue
