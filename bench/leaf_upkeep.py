"""Host writes per second that keep N one-to-one leaf nodes alive, and the cluster-manager's CPU.

In the local environment (``kosmosctl local up --members 1``, the cluster-manager a local
process), the first member gets N extra kwok nodes (``leaf-bench-<i>``, Ready, adopted by
the member's kwok through the label the environment gives kwok) and its Cluster one
one-to-one leaf model per member node. Once every leaf node is Ready in the host, the
host apiserver's ``apiserver_request_total`` for write verbs on ``nodes`` and ``leases``
is read before and after a quiet window: writes/s per resource and subresource, the
cluster-manager's CPU seconds per second over the same window (``/proc/<pid>/stat``), and
whether every leaf node stayed Ready.

Usage: .venv/bin/python bench/leaf_upkeep.py [--leaves 1000] [--window 120] [--pid PID]
       [--cleanup]   (the cluster-manager's pid: default, the local environment's)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _cluster import client_for, ensure_environment, kwok_node, report
from _procstat import cpu_seconds

from kosmos.api.objects import node_ready
from kosmos.api.resources import CLUSTERS, NODES
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, NotFound
from kosmos.local import environment

PREFIX = "leaf-bench-"
HOST = "host"
WRITES = ("PATCH", "PUT", "POST", "APPLY")
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")


def bench_node(i: int) -> dict[str, object]:
    return kwok_node(f"{PREFIX}{i}", {"cpu": "32", "memory": "256Gi", "pods": "110"})


async def ensure_nodes(member: Client, count: int) -> None:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            with contextlib.suppress(AlreadyExists):
                await member.create(NODES, bench_node(i))

    await asyncio.gather(*(one(i) for i in range(count)))


async def set_models(host: Client, cluster: str, count: int | None) -> None:
    """One one-to-one model per bench node (None: back to the whole-cluster leaf)."""
    models = [{"nodeSelector": {"nodeName": f"{PREFIX}{i}"}} for i in range(count or 0)]
    patch = {"spec": {"clusterTreeOptions": {"leafModels": models or None}}}
    await host.patch(CLUSTERS, cluster, patch)


async def ready_leaves(host: Client) -> tuple[int, int]:
    nodes = (await host.list(NODES)).items
    ours = [n for n in nodes if n["metadata"]["name"].startswith(PREFIX)]
    return len(ours), sum(1 for n in ours if node_ready(n))


async def writes(host: Client) -> Counter[str]:
    """Cumulative write requests on nodes and leases, by resource/subresource."""
    counts: Counter[str] = Counter()
    for line in (await host.get_text("/metrics")).splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("verb") in WRITES and labels.get("resource") in ("nodes", "leases"):
            key = labels["resource"] + (
                "/" + labels["subresource"] if labels.get("subresource") else ""
            )
            counts[key] += int(float(match.group(2)))
    return counts


def local_pid() -> int:
    """The pid of this environment's local cluster-manager (its kubeconfig is ours)."""
    kubeconfigs = str(environment.kubeconfig_dir()).encode()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"cluster-manager" in argv and any(a.startswith(kubeconfigs) for a in argv):
                return int(proc.name)
    raise SystemExit("no local cluster-manager found: pass --pid")


async def main(args: argparse.Namespace) -> None:
    member_name = ensure_environment()
    host = await client_for(HOST)
    member = await client_for(member_name)
    try:
        if args.cleanup:
            await set_models(host, member_name, None)
            for i in range(args.leaves):
                with contextlib.suppress(NotFound):
                    await member.delete(NODES, f"{PREFIX}{i}")
            return
        await ensure_nodes(member, args.leaves)
        await set_models(host, member_name, args.leaves)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            total, ready = await ready_leaves(host)
            print(f"  leaf nodes {ready}/{total} Ready of {args.leaves}", flush=True)
            if ready >= args.leaves:
                break
            await asyncio.sleep(10)
        await asyncio.sleep(args.settle)
        pid = args.pid or local_pid()
        before, cpu0, t0 = await writes(host), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(args.window)
        after, cpu1, t1 = await writes(host), cpu_seconds(pid), time.monotonic()
        total, ready = await ready_leaves(host)
        elapsed = t1 - t0
        rows = [
            (f"{key} writes/s", f"{(after[key] - before[key]) / elapsed:.1f}")
            for key in sorted(set(after) | set(before))
        ]
        rows.append(
            ("all writes/s", f"{(sum(after.values()) - sum(before.values())) / elapsed:.1f}")
        )
        rows.append(("cluster-manager CPU s/s", f"{(cpu1 - cpu0) / elapsed:.3f}"))
        rows.append(("leaf nodes Ready at the end", f"{ready}/{total}"))
        report(f"leaf upkeep, {args.leaves} one-to-one leaves, {elapsed:.0f} s window", rows)
    finally:
        await host.close()
        await member.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after all Ready")
    parser.add_argument("--pid", type=int, default=0)
    parser.add_argument("--cleanup", action="store_true")
    asyncio.run(main(parser.parse_args()))
