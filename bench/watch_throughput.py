"""Watch events handled per second by an informer while 2k pods churn.

2k pods (never scheduled: a schedulerName nobody serves) live in a member cluster of the local
environment. A separate writer process patches every pod R times (32 in flight) while an
informer in this process watches them and feeds a deduplicating WorkQueue, as a controller
would. Reports events/s handled, the writer's patch rate in the same run (the baseline: the
informer cannot see more than is written), how long after the writer saw its last response the
last event arrived (negative: before it), and the informer process's CPU per event (its
capacity when the apiserver is not the bottleneck).

Usage: .venv/bin/python bench/watch_throughput.py [--pods 2000] [--rounds 5] [--cleanup]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _cluster import (
    client_for,
    create_pods,
    delete_namespace,
    ensure_environment,
    ensure_namespace,
    report,
)

from kosmos.api.resources import PODS
from kosmos.kube.informer import Informer
from kosmos.kube.workqueue import WorkQueue

NAMESPACE = "bench-watch"


async def churn(cluster: str, pods: int, rounds: int, concurrency: int = 32) -> None:
    """Writer mode: patch every pod ``rounds`` times; print timing as JSON."""
    client = await client_for(cluster)
    names = [f"p{i}" for i in range(pods)]
    started = time.monotonic()
    for r in range(rounds):
        queue = list(names)

        async def worker(r: int = r, queue: list[str] = queue) -> None:
            while queue:
                name = queue.pop()
                patch = {"metadata": {"annotations": {"bench/round": str(r)}}}
                await client.patch(PODS, name, patch, namespace=NAMESPACE)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finished = time.monotonic()
    await client.close()
    print(
        json.dumps(
            {"writes": pods * rounds, "seconds": finished - started, "finished_wall": time.time()}
        )
    )


async def main(args: argparse.Namespace) -> None:
    cluster = ensure_environment()
    client = await client_for(cluster)
    await ensure_namespace(client, NAMESPACE)
    await create_pods(client, NAMESPACE, args.pods, schedulerName="bench-none")

    informer = Informer(client, PODS, namespace=NAMESPACE)
    queue: WorkQueue[str] = WorkQueue("bench")
    times: list[float] = []

    class Handler:
        def on_add(self, obj: dict) -> None:
            pass

        def on_update(self, old: dict, new: dict) -> None:
            times.append(time.time())
            queue.add(new["metadata"]["name"])

        def on_delete(self, obj: dict) -> None:
            pass

    informer.add_handler(Handler())
    task = asyncio.create_task(informer.run())
    await informer.wait_for_sync()
    expected = args.pods * args.rounds
    cpu_before = time.process_time()
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--writer",
        cluster,
        "--pods",
        str(args.pods),
        "--rounds",
        str(args.rounds),
        stdout=subprocess.PIPE,
    )
    out, _ = await writer.communicate()
    written = json.loads(out)
    deadline = time.monotonic() + 60
    while len(times) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu_before
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    window = times[-1] - times[0] if len(times) > 1 else float("nan")
    report(
        f"watch_throughput: {args.pods} pods x {args.rounds} rounds in {cluster}",
        [
            ("events_expected", str(expected)),
            ("events_handled", str(len(times))),
            ("events_per_s_handled", f"{len(times) / window:.0f}"),
            ("writes_per_s_baseline", f"{written['writes'] / written['seconds']:.0f}"),
            (
                "last_event_after_last_write_ms",
                f"{(times[-1] - written['finished_wall']) * 1000:.0f}",
            ),
            ("informer_cpu_us_per_event", f"{cpu / max(len(times), 1) * 1e6:.0f}"),
            ("informer_capacity_events_per_s_one_core", f"{len(times) / cpu:.0f}"),
            ("queue_pending_keys_after", str(len(queue))),
        ],
    )
    if args.cleanup:
        await delete_namespace(client, NAMESPACE)
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cleanup", action="store_true")
    parser.add_argument("--writer", metavar="CLUSTER", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.writer:
        asyncio.run(churn(parsed.writer, parsed.pods, parsed.rounds))
    else:
        asyncio.run(main(parsed))
