"""Pod startup latency through Kosmos vs directly in a member, and the cluster-manager's cost.

In the same run, against the local environment with both members joined (`kosmosctl local
up` sets that up), each member given one big kwok node so capacity is not the limit:
  * direct: N pods created in member cluster1 (its scheduler, kwok marks them Running);
  * kosmos: N pods created in the host, tolerating leaf nodes; the host scheduler spreads
    them over kosmos-cluster1/2, the cluster-manager creates them in the members and writes
    their status back;
  * latency of each pod = creator's create call -> the creator's watch sees phase Running;
    p50/p90/p99 per path and the kosmos/direct ratio (goal: p99 ratio <= 1.3);
  * cluster-manager RSS (peak while syncing) and CPU seconds per 1k pods.
Both paths are created by the same creator at the same concurrency.

Usage: .venv/bin/python bench/pod_startup.py [--pods 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _cluster import (
    BENCH_NODE,
    client_for,
    delete_namespace,
    ensure_bench_node,
    ensure_namespace,
    pod,
    report,
)

from kosmos.api.resources import NODES, PODS
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, NotFound
from kosmos.local import components, procs

HOST, MEMBERS = "host", ("cluster1", "cluster2")
LEAF = {"key": "kosmos.io/node", "operator": "Equal", "value": "true"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def watch_running(client: Client, namespace: str, seen: dict[str, float], total: int) -> None:
    """Record when each pod is first seen Running (the creator's view)."""
    while len(seen) < total:
        with contextlib.suppress(Exception):
            async for event in client.watch(PODS, namespace=namespace, timeout_seconds=300):
                obj = event["object"]
                name = obj["metadata"]["name"]
                if name not in seen and obj.get("status", {}).get("phase") == "Running":
                    seen[name] = time.monotonic()
                if len(seen) >= total:
                    return


async def run_path(
    client: Client, namespace: str, total: int, concurrency: int, **spec: object
) -> list[float]:
    await ensure_namespace(client, namespace)
    created: dict[str, float] = {}
    seen: dict[str, float] = {}
    watcher = asyncio.create_task(watch_running(client, namespace, seen, total))
    await asyncio.sleep(0.5)  # the watch is open before the first create
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(f"p{i}")

    async def worker() -> None:
        while not queue.empty():
            name = queue.get_nowait()
            created[name] = time.monotonic()
            with contextlib.suppress(AlreadyExists):
                await client.create(PODS, pod(name, namespace, **spec))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await asyncio.wait_for(watcher, timeout=900)
    return [seen[n] - created[n] for n in created]


def cpu_seconds(pid: int) -> float:
    fields = (procs.PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], procs.rss_bytes([pid]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def main(total: int, concurrency: int) -> None:
    run = secrets.token_hex(2)  # fresh namespaces: an earlier run's may still be terminating
    direct_ns, kosmos_ns = f"bench-direct-{run}", f"bench-kosmos-{run}"
    pid = components.running("cluster-manager")
    if pid is None:
        raise SystemExit("no cluster-manager running: run `kosmosctl local up` first")
    host = await client_for(HOST)
    members = {m: await client_for(m) for m in MEMBERS}
    for client in members.values():
        await ensure_bench_node(client, total)
    await asyncio.sleep(3)  # leaf nodes pick up the new capacity
    try:
        direct = await run_path(members["cluster1"], direct_ns, total, concurrency)
        cpu_before, peak, stop = cpu_seconds(pid), [0], asyncio.Event()
        sampler = asyncio.create_task(sample_rss(pid, peak, stop))
        through = await run_path(
            host,
            kosmos_ns,
            total,
            concurrency,
            tolerations=[{"key": "bench", "operator": "Exists"}, LEAF],
            nodeSelector={"kosmos.io/node": "true"},
        )
        stop.set()
        await sampler
        cpu = cpu_seconds(pid) - cpu_before
        spread = {m: len((await c.list(PODS, kosmos_ns)).items) for m, c in members.items()}
    finally:
        await delete_namespace(host, kosmos_ns)
        await delete_namespace(members["cluster1"], direct_ns)
        for client in members.values():  # leave the members as the environment made them
            with contextlib.suppress(NotFound):
                await client.delete(NODES, BENCH_NODE)
        for client in (host, *members.values()):
            await client.close()
    rows = [("pods per path", str(total)), ("creator concurrency", str(concurrency))]
    for label, values in (("direct in member", direct), ("through kosmos", through)):
        rows += [
            (f"{label} p50 s", f"{percentile(values, 50):.2f}"),
            (f"{label} p90 s", f"{percentile(values, 90):.2f}"),
            (f"{label} p99 s", f"{percentile(values, 99):.2f}"),
            (f"{label} mean s", f"{statistics.mean(values):.2f}"),
        ]
    rows += [
        ("p50 ratio kosmos/direct", f"{percentile(through, 50) / percentile(direct, 50):.2f}"),
        ("p99 ratio kosmos/direct", f"{percentile(through, 99) / percentile(direct, 99):.2f}"),
        ("member copies per cluster", str(spread)),
        ("cluster-manager peak RSS MiB", f"{peak[0] / 2**20:.0f}"),
        ("cluster-manager CPU s per 1k pods", f"{cpu / total * 1000:.1f}"),
    ]
    report("pod startup: create -> Running seen by the creator", rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    subprocess.run([str(Path(sys.executable).parent / "kosmosctl"), "local", "up"], check=True)
    asyncio.run(main(args.pods, args.concurrency))
