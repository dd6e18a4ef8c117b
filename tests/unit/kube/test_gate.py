"""The gate informers wait at while a latency-bound request is served."""

import asyncio
import time

from kosmos.kube.gate import Gate


async def test_pause_returns_at_once_when_no_request_holds_the_gate():
    gate = Gate()
    started = time.perf_counter()
    await gate.pause()
    assert time.perf_counter() - started < 0.01 and not gate.held


async def test_pause_waits_until_the_last_request_is_answered():
    gate = Gate(max_wait=5)
    order = []

    async def request(name, seconds):
        with gate.urgent():
            await asyncio.sleep(seconds)
            order.append(name)

    async def upkeep():
        await asyncio.sleep(0)  # the requests took the gate first
        await gate.pause()
        order.append("upkeep")

    await asyncio.gather(request("a", 0.02), request("b", 0.05), upkeep())
    assert order == ["a", "b", "upkeep"] and not gate.held


async def test_a_stream_of_requests_delays_upkeep_by_at_most_max_wait():
    gate = Gate(max_wait=0.03)
    with gate.urgent():
        started = time.perf_counter()
        await gate.pause()
        waited = time.perf_counter() - started
    assert 0.02 <= waited < 0.5
