import asyncio

import pytest

from kosmos.kube.clock import FakeClock
from kosmos.kube.ratelimit import (
    ItemBucketLimiter,
    ItemExponentialBackoff,
    MaxOfLimiter,
    TokenBucket,
    default_controller_rate_limiter,
)


def test_backoff_doubles_from_5ms_and_is_capped_at_1000s():
    backoff = ItemExponentialBackoff()
    delays = [backoff.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36s, still under the cap
    assert delays[18:] == [1000.0, 1000.0]
    assert backoff.retries("a") == 20


def test_backoff_survives_more_failures_than_a_float_exponent_holds():
    backoff = ItemExponentialBackoff(base=1.0, cap=60.0)
    for _ in range(2000):
        assert backoff.when("a") <= 60.0
    assert backoff.when("a") == 60.0


def test_backoff_is_per_item_and_reset_by_forget():
    backoff = ItemExponentialBackoff(base=0.005, cap=1000.0)
    backoff.when("a")
    backoff.when("a")
    assert backoff.when("b") == 0.005
    backoff.forget("a")
    assert backoff.retries("a") == 0
    assert backoff.when("a") == 0.005
    assert backoff.retries("b") == 1


def test_token_bucket_allows_burst_then_spaces_at_qps():
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=100, clock=clock)
    assert [bucket.reserve() for _ in range(100)] == [0.0] * 100
    waits = [bucket.reserve() for _ in range(3)]
    assert waits == pytest.approx([0.1, 0.2, 0.3])


def test_token_bucket_refills_at_qps_up_to_burst():
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=100, clock=clock)
    for _ in range(100):
        bucket.reserve()
    clock.advance(0.1)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)
    clock.advance(3600)  # a long idle period saves up no more than the burst
    assert [bucket.reserve() for _ in range(100)] == [0.0] * 100
    assert bucket.reserve() == pytest.approx(0.1)


def test_token_bucket_debt_is_paid_off_by_time():
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=1, clock=clock)
    bucket.reserve()
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)
    clock.advance(0.2)
    assert bucket.reserve() == pytest.approx(0.1)


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_token_bucket_rejects_a_bucket_that_never_fills(qps, burst):
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(qps=qps, burst=burst, clock=FakeClock())


async def test_acquire_sleeps_on_the_clock_only_when_in_debt():
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=1, clock=clock)
    await bucket.acquire()
    assert clock.pending_sleepers == 0
    waiter = asyncio.ensure_future(bucket.acquire())
    await clock.settle()
    assert not waiter.done()
    assert clock.pending_sleepers == 1
    clock.advance(0.05)
    await clock.settle()
    assert not waiter.done()
    clock.advance(0.05)
    await clock.settle()
    assert waiter.done()


def test_item_bucket_limiter_spends_tokens_and_tracks_no_item():
    limiter = ItemBucketLimiter(TokenBucket(qps=1, burst=1, clock=FakeClock()))
    assert limiter.when("a") == 0.0
    assert limiter.when("b") == pytest.approx(1.0)
    limiter.forget("a")
    assert limiter.retries("a") == 0


def test_max_of_limiter_takes_the_strictest_and_forgets_in_all():
    backoff = ItemExponentialBackoff(base=0.005, cap=1000.0)
    bucket = ItemBucketLimiter(TokenBucket(qps=1, burst=1, clock=FakeClock()))
    limiter = MaxOfLimiter(backoff, bucket)
    assert limiter.when("a") == 0.005  # bucket has a token: backoff wins
    assert limiter.when("a") == pytest.approx(1.0)  # bucket in debt: bucket wins
    assert limiter.retries("a") == 2
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert backoff.retries("a") == 0


def test_max_of_limiter_needs_a_limiter():
    with pytest.raises(ValueError, match="at least one"):
        MaxOfLimiter()


def test_default_controller_rate_limiter_is_backoff_and_10qps_burst_100():
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock)
    assert [limiter.when(i) for i in range(100)] == [0.005] * 100
    assert limiter.when(100) == pytest.approx(0.1)  # 101st retry overall: the bucket is empty
    assert limiter.when(0) == pytest.approx(0.2)
    clock.advance(1000)
    assert [limiter.when(0) for _ in range(3)] == [0.02, 0.04, 0.08]
