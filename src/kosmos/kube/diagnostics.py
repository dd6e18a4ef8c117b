"""``kill -USR1 <pid>``: log the stack of every asyncio task, to see where a component waits.

A wedged asyncio process shows only its idle event loop to thread-level tools (py-spy,
faulthandler); the coroutine stacks are what tell which await never returns.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal

log = logging.getLogger("kosmos.diagnostics")


def _dump() -> None:
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    out.write(f"{len(tasks)} asyncio tasks\n")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"--- {task.get_name()}\n")
        task.print_stack(limit=12, file=out)
    log.warning("%s", out.getvalue())


def install() -> None:
    """Register the dump on SIGUSR1 in the running loop."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump)
