"""Helpers shared by the test tiers: prerequisites, polling, and kubectl get/apply."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from kosmos.local.kubectl import Kubectl

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

T = TypeVar("T")

#: What a poll is waiting for: a sentence, or a function that says it when the time is up
#: (for a description that is only worth computing, or only true, at the end).
What = str | Callable[[], str]


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing; fail in CI, where nothing may be missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing prerequisite in CI: {reason}")
    pytest.skip(reason)


def get(kubectl: Kubectl, *args: str) -> Any:
    """``kubectl get ARGS -o json``, decoded: one object, or a List with ``items``."""
    return json.loads(kubectl.run("get", *args, "-o", "json"))


def apply(
    kubectl: Kubectl,
    *objects: dict[str, Any],
    namespace: str | None = None,
    server_side: bool = False,
) -> None:
    """``kubectl apply`` the objects as one List (``server_side``: as their owner, forcing)."""
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    if server_side:
        args += ["--server-side", "--force-conflicts"]
    body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl.run(*args, stdin=json.dumps(body))


class _Poll:
    """One poll: its pauses until the deadline, and the last outcome for the timeout message."""

    def __init__(
        self,
        timeout: float,
        what: What,
        interval: float,
        ignoring: tuple[type[BaseException], ...],
    ) -> None:
        self.timeout, self.what, self.interval, self.ignoring = timeout, what, interval, ignoring
        self.deadline = time.monotonic() + timeout
        self.last: Any = None
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[float]:
        """Seconds to sleep before each try (none before the first); AssertionError at the end."""
        yield 0
        while (left := self.deadline - time.monotonic()) > 0:
            yield min(self.interval, left)
        raise self._timed_out()

    @contextlib.contextmanager
    def trying(self) -> Iterator[None]:
        """One try: an exception of an ignored type counts as "not yet"."""
        try:
            yield
        except self.ignoring as error:
            self.last, self.error = None, error

    def _timed_out(self) -> AssertionError:
        what = self.what() if callable(self.what) else self.what
        seen = f"last value: {self.last!r}"
        if self.error is not None:
            seen += f"; last error: {self.error!r}"
        return AssertionError(f"timed out after {self.timeout:g}s waiting for {what} ({seen})")


def wait_for(
    check: Callable[[], T],
    timeout: float,
    what: What,
    *,
    interval: float = 0.5,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    ``check`` is called at least once, also with ``timeout`` 0. An exception of a type in
    ``ignoring`` counts as "not yet"; any other propagates at once. On timeout the
    AssertionError names ``what`` and the last value and ignored exception seen.
    """
    poll = _Poll(timeout, what, interval, ignoring)
    for pause in poll:
        time.sleep(pause)
        with poll.trying():
            poll.last = check()
        if poll.last:
            return poll.last
    raise AssertionError("unreachable: the poll raises when its time is up")


async def wait_for_async(
    check: Callable[[], T | Awaitable[T]],
    timeout: float,
    what: What,
    *,
    interval: float = 0.1,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """:func:`wait_for` for the event loop: sleeps without blocking it; ``check`` may be async."""
    poll = _Poll(timeout, what, interval, ignoring)
    for pause in poll:
        await asyncio.sleep(pause)
        with poll.trying():
            value = check()
            poll.last = await value if inspect.isawaitable(value) else value
        if poll.last:
            return poll.last
    raise AssertionError("unreachable: the poll raises when its time is up")
