"""Rate limiters for workqueues, with the semantics of client-go's ``util/workqueue``.

A controller that fails to reconcile an object retries it, and two things must hold: one
broken object must back off exponentially so it cannot spin a CPU, and all objects together
must not exceed an overall rate so a mass failure cannot flood the apiserver. client-go's
``DefaultControllerRateLimiter`` is the max of a per-item exponential backoff and a shared
token bucket; ``default_controller_rate_limiter`` is the same here, with the same numbers,
so operators' intuition from Go controllers carries over.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from kosmos.kube.clock import Clock

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    """Decides how long an item waits before its next retry."""

    def when(self, item: K_contra) -> float:
        """Seconds to wait before retrying ``item``; calling it counts as one more retry."""
        ...

    def forget(self, item: K_contra) -> None:
        """Stop tracking ``item`` (it succeeded), so its next failure starts from scratch."""
        ...

    def retries(self, item: K_contra) -> int:
        """How many times ``item`` has been retried since it was last forgotten."""
        ...


class TokenBucket:
    """``qps`` tokens a second, at most ``burst`` saved up (golang.org/x/time/rate semantics).

    ``reserve`` always succeeds and may leave the bucket in debt: the caller is told how long
    to wait instead of being refused, which is what lets a workqueue schedule every retry.
    """

    def __init__(self, qps: float, burst: int, clock: Clock) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"token bucket needs qps > 0 and burst >= 1 (got {qps}, {burst})")
        self._qps = qps
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)  # a new bucket starts full, as in x/time/rate
        self._last = clock.now()

    def reserve(self) -> float:
        """Take one token now; return the seconds until that token is really available."""
        now = self._clock.now()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    async def acquire(self) -> None:
        """Wait, on the bucket's clock, until the caller may proceed."""
        delay = self.reserve()
        if delay > 0:
            await self._clock.sleep(delay)


class ItemExponentialBackoff(Generic[K]):
    """``base * 2**failures`` per item, capped: one broken object slows down, others do not."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self._base = base
        self._cap = cap
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        try:
            delay = math.ldexp(self._base, exponent)
        except OverflowError:  # thousands of failures: 2**n no longer fits in a float
            return self._cap
        return min(delay, self._cap)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def retries(self, item: K) -> int:
        return self._failures.get(item, 0)


class ItemBucketLimiter:
    """A token bucket shared by all items: bounds the total retry rate, tracks no item."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket

    def when(self, item: object) -> float:
        return self._bucket.reserve()

    def forget(self, item: object) -> None:
        """Nothing to forget: the bucket is shared, not per item."""

    def retries(self, item: object) -> int:
        return 0


class MaxOfLimiter(Generic[K]):
    """The strictest of several limiters: every one of them is consulted for every retry."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: K) -> float:
        # Every limiter must see the retry (to count it or spend a token), so no short-cut.
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: K) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def retries(self, item: K) -> int:
        return max(limiter.retries(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock) -> MaxOfLimiter[K]:
    """client-go's default: 5ms..1000s per-item backoff, and 10 qps (burst 100) overall."""
    backoff: ItemExponentialBackoff[K] = ItemExponentialBackoff(0.005, 1000.0)
    overall = ItemBucketLimiter(TokenBucket(qps=10.0, burst=100, clock=clock))
    return MaxOfLimiter(backoff, overall)
