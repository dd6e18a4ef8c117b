"""kubenest: how long a VirtualCluster takes to reach Completed, alone and five at once.

An environment of its own (``--port-base``, default 19200; ``KOSMOS_LOCAL_DIR`` under
~/.kosmos/bench-kubenest): the host only, kwok nodes only, no Kosmos control plane but the
CRDs, and ``kosmos virtual-cluster-operator`` (local provider) as a process of this machine.
Each VirtualCluster asks for one of the bench's kwok worker nodes (``bench-kubenest-<i>``),
so Completed means: tenant control plane up (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, CoreDNS, kwok), kubeconfig written back, the node moved out of the host and
Ready in the tenant.

Arms, order alternated per repetition:
  * one: one VirtualCluster; its time is ``creationTimestamp`` -> the moment a watch sees
    ``status.phase: Completed`` (the creation stamp has 1 s resolution: the client's clock at
    the create call is printed too);
  * five: five VirtualClusters created at once; each one's time as above, and the makespan;
  * baseline: ``kosmosctl local up`` of a second environment beside the bench's, one cluster
    (kwokctl's binary runtime: the same etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler and kwok binaries) — the time ``up`` reports for it to be ready — then
    ``local down`` of it.
Then the resident memory of one idle tenant's processes. Every repetition is printed, then
medians and spread. Deleting each VirtualCluster (its node back in the host) is timed too.

Usage: .venv/bin/python bench/virtualcluster.py [--reps 3] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stats import summary

from kosmos.api.objects import Obj, parse_time
from kosmos.api.resources import NAMESPACES, NODES, VIRTUAL_CLUSTERS
from kosmos.kube.client import Client
from kosmos.kube.config import from_kubeconfig
from kosmos.kube.errors import AlreadyExists, NotFound
from kosmos.kubenest import processes

ROOT = Path(__file__).parents[1]
KOSMOSCTL = str(ROOT / ".venv" / "bin" / "kosmosctl")
KOSMOS = str(ROOT / ".venv" / "bin" / "kosmos")
STATE = Path.home() / ".kosmos" / "bench-kubenest"
TENANTS = STATE / "tenants"
NODE_PREFIX = "bench-kubenest"
TIMEOUT = 180.0


def sh(argv: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr


def up(env: dict[str, str], members: int, port_base: int) -> str:
    argv = [KOSMOSCTL, "local", "up", "--members", str(members), "--nodes", "1"]
    return sh([*argv, "--port-base", str(port_base), "--without-kosmos"], env)


def kwok_node(name: str) -> Obj:
    labels = {"kubernetes.io/hostname": name, "kwok.x-k8s.io/node": "fake", "bench": NODE_PREFIX}
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def virtual_cluster(name: str, node: str) -> Obj:
    selector = {"matchLabels": {"kubernetes.io/hostname": node}}
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"name": name, "namespace": name},
        "spec": {"promotePolicies": [{"labelSelector": selector, "nodeCount": 1}]},
    }


async def ensure_nodes(host: Client, count: int) -> list[str]:
    names = [f"{NODE_PREFIX}-{i}" for i in range(count)]
    for name in names:
        with contextlib.suppress(AlreadyExists):
            await host.create(NODES, kwok_node(name))
    return names


async def completed(host: Client, namespace: str) -> tuple[float, float]:
    """(when a poll saw Completed, the VirtualCluster's creationTimestamp), epoch seconds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        vc = await host.get(VIRTUAL_CLUSTERS, namespace, namespace)
        status = vc.get("status") or {}
        if status.get("phase") == "Completed":
            return time.time(), parse_time(vc["metadata"]["creationTimestamp"]).timestamp()
        await asyncio.sleep(0.1)
    raise SystemExit(f"{namespace}: not Completed within {TIMEOUT}s: {status}")


async def create(host: Client, name: str, node: str) -> float:
    """Create the namespace and the VirtualCluster; the client's clock at the create call."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    with contextlib.suppress(AlreadyExists):
        await host.create(NAMESPACES, ns)
    sent = time.time()
    await host.create(VIRTUAL_CLUSTERS, virtual_cluster(name, node), name)
    return sent


async def delete(host: Client, name: str, node: str) -> float:
    started = time.monotonic()
    await host.delete(VIRTUAL_CLUSTERS, name, name)
    while time.monotonic() - started < TIMEOUT:
        try:
            await host.get(VIRTUAL_CLUSTERS, name, name)
        except NotFound:
            try:
                await host.get(NODES, node)
                return time.monotonic() - started
            except NotFound:
                pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{name}: not deleted with its node back within {TIMEOUT}s")


async def run_tenants(
    host: Client, names: list[str], nodes: list[str]
) -> tuple[list[float], list[float], float]:
    """Per tenant: seconds from creationTimestamp and from the create call; the makespan."""
    started = time.monotonic()
    sent = await asyncio.gather(*(create(host, n, nd) for n, nd in zip(names, nodes, strict=True)))
    seen = await asyncio.gather(*(completed(host, n) for n in names))
    stamped = [at - stamp for at, stamp in seen]
    called = [at - t0 for (at, _), t0 in zip(seen, sent, strict=True)]
    return stamped, called, time.monotonic() - started


def tenant_rss(name: str) -> float:
    """MiB of resident memory of the tenant's processes (the pids its directory records)."""
    return processes.rss_bytes(processes.tenant_pids(TENANTS / f"{name}_{name}")) / 2**20


def baseline(env: dict[str, str], port_base: int) -> float:
    """A kwok cluster from nothing in an environment beside the bench's: what ``up`` reports."""
    beside = dict(env, KOSMOS_LOCAL_DIR=str(STATE / "baseline"))
    try:
        out = up(beside, 0, port_base + 100)
    finally:
        subprocess.run([KOSMOSCTL, "local", "down"], env=beside, capture_output=True, check=False)
    found = re.search(r"host: ready in ([0-9.]+)s", out)
    if found is None:
        raise SystemExit(f"no 'host: ready in' line in:\n{out}")
    return float(found.group(1))


async def main_async(args: argparse.Namespace, env: dict[str, str]) -> None:
    config = await from_kubeconfig("host", str(STATE / "kubeconfig" / "host-kubeconfig"))
    config.qps, config.burst = 200, 400
    host = Client(config)
    operator = subprocess.Popen(  # noqa: ASYNC220 (started once, before the timed arms)
        [KOSMOS, "virtual-cluster-operator", "--kubeconfig", str(STATE / "kubeconfig" / "config"),
         "--state-dir", str(TENANTS), "--port-range", "22000-22999", "--health-port", "0"],
        stdout=(STATE / "operator.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        nodes = await ensure_nodes(host, 5)
        one: list[list[float]] = []
        five: list[list[float]] = []
        one_client: list[list[float]] = []
        five_client: list[list[float]] = []
        spans: list[float] = []
        base: list[float] = []
        deletes: list[float] = []
        rss: list[float] = []
        for rep in range(args.reps):
            order = ["one", "five", "baseline"]
            for arm in order if rep % 2 == 0 else order[::-1]:
                if arm == "baseline":
                    base.append(baseline(env, args.port_base))
                    print(f"rep {rep + 1} baseline: a kwok cluster ready in {base[-1]:.1f}s")
                    continue
                count = 1 if arm == "one" else 5
                names = [f"vc-{arm}-{rep}-{i}" for i in range(count)]
                each, called, span = await run_tenants(host, names, nodes[:count])
                (one if arm == "one" else five).append(each)
                (one_client if arm == "one" else five_client).append(called)
                if arm == "five":
                    spans.append(span)
                if arm == "one":
                    await asyncio.sleep(10)  # idle
                    rss.append(tenant_rss(names[0]))
                shown = ", ".join(f"{s:.1f}" for s in each)
                print(f"rep {rep + 1} {arm}: Completed after {shown} s (makespan {span:.1f}s)")
                gone = await asyncio.gather(
                    *(delete(host, n, node) for n, node in zip(names, nodes, strict=False))
                )
                deletes.extend(gone)
        print("\nVirtualCluster -> Completed (1 kwok node each), local provider:")
        print("\n".join(summary("one tenant (from creationTimestamp, 1 s resolution)", one)))
        print("\n".join(summary("one tenant (from the create call)", one_client)))
        print("\n".join(summary("five at once, per tenant (creationTimestamp)", five)))
        print("\n".join(summary("five at once, per tenant (create call)", five_client)))
        print(
            f"  five at once, makespan: median {statistics.median(spans):.1f}s"
            f" (spread {min(spans):.1f}..{max(spans):.1f})"
        )
        print(
            f"  baseline (kwokctl cluster ready): median {statistics.median(base):.1f}s"
            f" (spread {min(base):.1f}..{max(base):.1f})"
        )
        print(
            f"  delete (node back in the host): median {statistics.median(deletes):.1f}s"
            f" (spread {min(deletes):.1f}..{max(deletes):.1f})"
        )
        print(f"  idle tenant RSS: median {statistics.median(rss):.0f} MiB ({rss})")
        ratio = statistics.median([statistics.median(v) for v in one_client]) / statistics.median(
            base
        )
        print(f"  ratio one tenant / baseline cluster: {ratio:.2f}")
        print(json.dumps({"one": one, "five": five, "spans": spans, "baseline": base}))
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        await host.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--port-base", type=int, default=19200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ, KOSMOS_LOCAL_DIR=str(STATE))
    env["PATH"] = f"{Path.home() / '.cache' / 'kosmos' / 'bin'}:{env['PATH']}"
    started = time.monotonic()
    up(env, 0, args.port_base)
    kubeconfig = str(STATE / "kubeconfig" / "config")
    sh(["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", str(ROOT / "deploy" / "crds")], env)
    print(f"environment: host up with the CRDs in {time.monotonic() - started:.1f}s")
    try:
        asyncio.run(main_async(args, env))
    finally:
        if not args.keep:
            subprocess.run([KOSMOSCTL, "local", "down"], env=env, capture_output=True, check=False)


if __name__ == "__main__":
    main()
