"""``python -m lanes``: the ``lanes`` command, for environments whose ``PATH`` lacks the script."""

from lanes.cli.main import main

main()
