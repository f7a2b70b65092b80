"""lanes: long model tasks on Temporal, each job on the runtime lane its job type and data class allow.

The package is the public face of the project: the client API, the ``lanes`` command, the servers it
starts (codec server, webhook receiver) and the worker's wiring. The workflows, activities and policy
engine beside it are what a worker runs.
"""
