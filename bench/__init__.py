"""Benchmarks of lanes against the obvious alternatives, measured side by side in one run.

``make bench`` (or ``python -m bench``) starts the embedded stack, drives the same jobs through every
contender against the same emulator, prints one table, and writes ``bench/results/latest.json`` and
``latest.png``. ``python -m bench capacity --mode poll --jobs 10000`` runs the capacity section alone.
See ``docs/performance.md``.
"""
