"""Running the planned pairs: one exec per pair in its source floater, ``maxNum`` at once.

One pair's trouble is that pair's result, never the check's end: a pod that cannot be
exec'd (gone, its container not running, the kubelet unreachable) is an EXCEPTION row with
the apiserver's words, a command that ran and failed is a FAILED row with its output. The
exec is bounded twice: the command's own timeout (curl -m, ping -W...) inside the pod, and
``cmdTimeout`` plus a margin for the exec handshake around the whole call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kosmos.kube import execute
from kosmos.kube.client import Client
from kosmos.ops.netdoctor.plan import CONTAINER, Pair, succeeded

log = logging.getLogger(__name__)
SUCCEEDED, FAILED, EXCEPTION = "SUCCEEDED", "FAILED", "EXCEPTION"
#: Time an exec needs besides the command: the apiserver's upgrade and the kubelet's stream.
HANDSHAKE_MARGIN = 5.0


@dataclass(frozen=True)
class Outcome:
    pair: Pair
    result: str  # SUCCEEDED | FAILED | EXCEPTION
    log: str  # what the command printed, or why it could not run; "" when it succeeded
    seconds: float

    @property
    def ok(self) -> bool:
        return self.result == SUCCEEDED


async def run_pairs(
    client: Client,
    namespace: str,
    pairs: Sequence[Pair],
    *,
    protocol: str,
    max_num: int,
    cmd_timeout: float,
    done: Callable[[Outcome], None] | None = None,
    exec_: execute.Exec = execute.run,
) -> list[Outcome]:
    """Run every pair (at most ``max_num`` at once); outcomes in the pairs' order."""
    gate = asyncio.Semaphore(max_num)

    async def one(pair: Pair) -> Outcome:
        async with gate:
            outcome = await _run_one(client, namespace, pair, protocol, cmd_timeout, exec_)
        if done is not None:
            done(outcome)
        return outcome

    return list(await asyncio.gather(*(one(p) for p in pairs)))


async def _run_one(  # noqa: PLR0917
    client: Client,
    namespace: str,
    pair: Pair,
    protocol: str,
    cmd_timeout: float,
    exec_: execute.Exec,
) -> Outcome:
    started = time.monotonic()
    limit = cmd_timeout + HANDSHAKE_MARGIN
    log.info("%s on %s: %s", pair.src_pod, pair.src_node, " ".join(pair.command))
    try:
        result = await asyncio.wait_for(
            exec_(
                client, namespace, pair.src_pod, pair.command, container=CONTAINER, timeout=limit
            ),
            # the exec bounds itself; this only guards against one that does not
            limit + 1.0,
        )
    except TimeoutError:
        return _outcome(pair, EXCEPTION, f"exec timed out after {limit:g} s", started)
    except Exception as exc:  # one pair's failure is its row, not the check's end
        return _outcome(pair, EXCEPTION, f"exec error: {exc}", started)
    if succeeded(protocol, result.exit_code, result.stdout):
        return _outcome(pair, SUCCEEDED, "", started)
    return _outcome(pair, FAILED, describe(result), started)


def describe(result: execute.ExecResult) -> str:
    """Why a command failed, in netctl's words: how it ended, then what it printed."""
    output = "\n".join(s.strip() for s in (result.stdout, result.stderr) if s.strip())
    if result.exit_code is None:
        head = result.error or "the command did not finish"
    elif result.exit_code == 0:
        head = "unexpected reply (not the floater's)"
    else:
        head = f"command terminated with exit code {result.exit_code}"
    return f"{head}: {output}" if output else head


def _outcome(pair: Pair, result: str, text: str, started: float) -> Outcome:
    outcome = Outcome(pair, result, text, round(time.monotonic() - started, 3))
    log.info("%s on %s -> %s: %s %s", pair.src_pod, pair.src_node, pair.target, result, text)
    return outcome
