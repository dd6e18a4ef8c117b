"""``python -m kosmos.launcher``: the same as the ``kosmos`` command."""

from kosmos.launcher import main

main()
