"""How an operation fails: one line that says what went wrong and what to do next."""

from __future__ import annotations


class OperationError(Exception):
    """An operation refused or could not finish; ``str()`` is the message for the user.

    ``kosmosctl`` prints it as ``Error: <message>`` and exits 1, like every other failure
    it reports without a traceback.
    """
