"""Time to a synced pod cache vs `kubectl get pods -A -o json`, and cache bytes per pod.

With N pods (default 10k, kwok marks them Running on one bench node) in a member cluster of
the local environment, in the same run and against the same apiserver:
  * baseline: wall time of `kubectl get pods -A -o json` (output discarded), median of runs;
  * ours: wall time from a fresh client to `Informer(pods).wait_for_sync()`, median of runs;
  * ratio ours / baseline (the goal is <= 1.5);
  * cache memory per pod: Python heap held by the synced store (tracemalloc), per pod, with
    the default transform (``strip_bulk``) and with the cluster-manager's pod transform
    (``kosmos.clustertree.podcache``: token volume dropped, equal parts shared between pods).

Usage: .venv/bin/python bench/informer_sync.py [--pods 10000] [--runs 3] [--cleanup]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from _cluster import (
    BENCH_NODE,
    client_for,
    delete_namespace,
    create_pods,
    ensure_bench_node,
    ensure_environment,
    ensure_namespace,
    report,
)

from kosmos.api.resources import NODES, PODS
from kosmos.clustertree.podcache import pod_transform
from kosmos.kube.compact import Sharer
from kosmos.kube.informer import Informer, Transform, strip_bulk
from kosmos.local import environment, paths

NAMESPACE = "bench-informer"


async def wait_running(client, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = await client.list(PODS, NAMESPACE, field_selector="status.phase=Running")
        print(f"  {len(running.items)}/{count} pods Running", flush=True)
        if len(running.items) >= count:
            return
        await asyncio.sleep(10)
    raise SystemExit(f"pods not Running after {timeout}s")


def kubectl_seconds(cluster: str) -> float:
    argv = [
        str(paths.bin_dir() / "kubectl"),
        "--kubeconfig",
        str(environment.cluster_kubeconfig(cluster)),
        "get",
        "pods",
        "-A",
        "-o",
        "json",
    ]
    started = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - started


async def informer_seconds(
    cluster: str, transform: Transform = strip_bulk
) -> tuple[float, Informer]:
    started = time.monotonic()
    client = await client_for(cluster)
    informer = Informer(client, PODS, transform=transform)
    task = asyncio.create_task(informer.run())
    await informer.wait_for_sync()
    elapsed = time.monotonic() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    return elapsed, informer


async def held_bytes(cluster: str, transform: Transform) -> int:
    """Python heap a synced pod informer holds with ``transform`` (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _, informer = await informer_seconds(cluster, transform)
    gc.collect()
    held: int = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del informer
    return held


async def main(args: argparse.Namespace) -> None:
    cluster = ensure_environment()
    client = await client_for(cluster)
    await ensure_namespace(client, NAMESPACE)
    await ensure_bench_node(client, args.pods)
    print(f"creating up to {args.pods} pods in {cluster}/{NAMESPACE} ...", flush=True)
    created = await create_pods(client, NAMESPACE, args.pods, nodeName=BENCH_NODE)
    print(f"  created in {created:.0f}s; waiting for kwok to run them", flush=True)
    await wait_running(client, args.pods)

    baseline, ours = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        baseline.append(kubectl_seconds(cluster))
        seconds, informer = await informer_seconds(cluster)
        ours.append(seconds)
    cached = len(informer.store)

    held = await held_bytes(cluster, strip_bulk)
    shared = await held_bytes(cluster, pod_transform(Sharer()))
    sample = informer.store.list()[:200]
    json_bytes = sum(len(orjson.dumps(o)) for o in sample) / len(sample)

    b, o = statistics.median(baseline), statistics.median(ours)
    report(
        f"informer_sync: {cached} pods cached from {cluster}",
        [
            ("pods", str(cached)),
            ("kubectl_get_pods_json_s", f"{b:.2f}"),
            ("informer_sync_s", f"{o:.2f}"),
            ("ratio_informer_over_kubectl", f"{o / b:.2f}"),
            ("cache_bytes_per_pod", f"{held / cached:.0f}"),
            ("cache_bytes_per_pod_cluster_manager", f"{shared / cached:.0f}"),
            ("json_bytes_per_pod", f"{json_bytes:.0f}"),
            (
                "runs",
                f"kubectl {[round(x, 2) for x in baseline]} informer {[round(x, 2) for x in ours]}",
            ),
        ],
    )
    if args.cleanup:  # pods first (kwok finalizes them on the node), then the node
        await delete_namespace(client, NAMESPACE)
        await client.delete(NODES, BENCH_NODE)
    await client.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cleanup", action="store_true", help="delete the pods afterwards")
    asyncio.run(main(parser.parse_args()))
