"""The embedded stack of ``lanes dev`` and ``make demo``: dev server, emulator, worker, Phoenix.

Nothing here is needed in production; it lives apart so that a worker image never imports it.
"""
