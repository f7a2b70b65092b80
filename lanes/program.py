"""Running a program that uses lanes: ``lanes.run(main())`` instead of ``asyncio.run(main())``.

A short-lived process that has used a Temporal client can abort while CPython finalises (``Fatal Python
error: PyGILState_Release ...``, exit 134, after the work is done): the SDK's Rust threads outlive the
event loop (temporalio/sdk-python#300, open). Here one run in five of the README's snippet ended so.
lanes' own entry points leave through ``os._exit`` after flushing (:func:`lanes.telemetry.end_process`);
:func:`run` does the same for a user's program, so its exit code is its own.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Coroutine
from typing import Any, NoReturn

from lanes.telemetry import end_process


def run(main: Coroutine[Any, Any, object]) -> NoReturn:
    """Run ``main`` in a new event loop, then end the process without interpreter finalisation.

    Exit code 0 when ``main`` returns (an ``int`` it returns is the exit code), 130 on Ctrl-C, 1 with the
    traceback printed when it raises; :class:`SystemExit` keeps its code. Spans and output are flushed
    first (``atexit`` handlers are not run: the process leaves through ``os._exit``).
    """
    try:
        result = asyncio.run(main)
    except SystemExit as exc:
        end_process(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
    except KeyboardInterrupt:
        end_process(130)
    except BaseException:
        traceback.print_exc()
        end_process(1)
    end_process(result if isinstance(result, int) and not isinstance(result, bool) else 0)
