"""``python -m lanes.worker``: the worker, as ``python worker.py`` runs it, for installed wheels."""

from lanes.telemetry import end_process
from lanes.worker.serving import main

end_process(main())
