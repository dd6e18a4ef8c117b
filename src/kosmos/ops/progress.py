"""Progress lines of a long operation, on stderr so that stdout stays machine-readable."""

from __future__ import annotations

import sys
import time

#: ANSI "dim" on and "reset": the elapsed time is de-emphasized on a terminal.
_DIM, _RESET = "\x1b[2m", "\x1b[0m"


class Progress:
    """Prints each step with the time elapsed since the operation began (``[  12.3s] ...``)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        stamp = f"[{elapsed:6.1f}s]"
        if sys.stderr.isatty():
            stamp = f"{_DIM}{stamp}{_RESET}"
        sys.stderr.write(f"{stamp} {message}\n")
        sys.stderr.flush()
