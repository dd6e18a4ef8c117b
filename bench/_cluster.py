"""Shared set-up for benchmarks: the local environment, a client, bulk pod creation."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from typing import Any

from kosmos.api.resources import NAMESPACES, NODES, PODS
from kosmos.kube.client import Client
from kosmos.kube.config import from_kubeconfig
from kosmos.kube.errors import AlreadyExists, NotFound
from kosmos.local import environment
from kosmos.local.topology import (
    KWOK_NODE_KEY,
    KWOK_NODE_VALUE,
    NODE_SHAPES,
    ZONE_SUFFIXES,
    ClusterPlan,
    NodePlan,
    Options,
    node_manifest,
)
import contextlib

BENCH_NODE = "bench-node"


def ensure_environment() -> str:
    """Bring the local environment up if needed; return the first member's name."""
    options = environment.load_options() or Options()
    clusters = environment.up(options, logging.info)
    return clusters[1].name


async def client_for(cluster: str, qps: float = 2000, burst: int = 2000) -> Client:
    config = await from_kubeconfig(cluster, environment.cluster_kubeconfig(cluster))
    config.qps, config.burst = qps, burst
    return Client(config)


async def ensure_namespace(client: Client, name: str) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
    for _ in range(100):  # the namespace's default ServiceAccount is created by kcm
        try:
            await client.get_raw(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            return
        except NotFound:
            await asyncio.sleep(0.1)


async def delete_namespace(client: Client, name: str, timeout: float = 600) -> None:
    """Delete a namespace and wait until it is gone (its pods finalized)."""
    with contextlib.suppress(NotFound):
        await client.delete(NAMESPACES, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await client.get(NAMESPACES, name)
        except NotFound:
            return
        await asyncio.sleep(2)
    raise SystemExit(f"namespace {name} still terminating after {timeout}s")


def kwok_node(name: str, allocatable: dict[str, str], **spec: Any) -> dict[str, Any]:
    """A Node kwok manages (its label and annotation), as big as ``allocatable``."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {KWOK_NODE_KEY: KWOK_NODE_VALUE, "kubernetes.io/hostname": name},
            "annotations": {KWOK_NODE_KEY: KWOK_NODE_VALUE},
        },
        "spec": spec,
        "status": {"allocatable": dict(allocatable), "capacity": dict(allocatable)},
    }


async def ensure_bench_node(client: Client, pods: int) -> None:
    """One kwok node big enough for every bench pod (its own /16 of pod IPs)."""
    node = kwok_node(
        BENCH_NODE,
        {"cpu": "10k", "memory": "10Ti", "pods": str(pods + 100)},
        podCIDR="10.250.0.0/16",
        podCIDRs=["10.250.0.0/16"],
        taints=[{"key": "bench", "value": "true", "effect": "NoSchedule"}],
    )
    try:
        await client.create(NODES, node)
    except AlreadyExists:  # made by an earlier run, perhaps for fewer pods: resize it
        await client.patch(NODES, BENCH_NODE, {"status": node["status"]}, subresource="status")


def extra_node_plans(cluster: ClusterPlan, count: int) -> list[NodePlan]:
    """Kwok nodes ``count`` beyond the plan's (``local up`` stops at 250: one /24 each of the
    cluster's /16), named, shaped and labelled like the plan's. Each gets a /26 of
    10.<150 + index>.0.0/16 for kwok's pod IPs, so at most 64 pods (and 1024 extra nodes)."""
    if not cluster.nodes:
        return []
    template = cluster.nodes[0].labels
    subnets = ipaddress.ip_network(f"10.{150 + cluster.index}.0.0/16").subnets(new_prefix=26)
    plans = []
    for j, subnet in zip(range(len(cluster.nodes), count), subnets, strict=False):
        name = f"{cluster.name}-node{j + 1}"
        cpu, memory = NODE_SHAPES[j % len(NODE_SHAPES)]
        labels = {
            **template,
            "kubernetes.io/hostname": name,
            "node.kubernetes.io/instance-type": f"kwok.c{cpu}m{memory}",
            "topology.kubernetes.io/zone": cluster.region + ZONE_SUFFIXES[j % len(ZONE_SUFFIXES)],
        }
        plans.append(NodePlan(name, labels, str(subnet), cpu, memory, max_pods=64))
    return plans


async def create_all(
    client: Client, resource: Any, objects: list[Any], concurrency: int = 24
) -> int:
    """Create ``objects`` (those that exist already are kept); returns how many were new."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for obj in objects:
        queue.put_nowait(obj)
    created = 0

    async def worker() -> None:
        nonlocal created
        while not queue.empty():
            with contextlib.suppress(AlreadyExists):
                await client.create(resource, queue.get_nowait())
                created += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return created


async def ensure_kwok_nodes(client: Client, cluster: ClusterPlan, count: int) -> int:
    """The cluster has ``count`` kwok nodes (the plan's, then ``extra_node_plans``)."""
    version = json.loads(environment.state_file().read_text())["kubernetes"]
    extra = [node_manifest(n, version) for n in extra_node_plans(cluster, count)]
    return await create_all(client, NODES, extra)


def pod(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A pod of typical size: labels, annotations, one container with env, ports, requests."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "bench", "tier": "web", "release": "v1"},
            "annotations": {"kosmos.io/bench": "true"},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/bench/app:1.0",
                    "env": [{"name": f"VAR_{i}", "value": f"value-{i}"} for i in range(5)],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
            "tolerations": [{"key": "bench", "operator": "Exists"}],
            **spec,
        },
    }


async def create_pods(
    client: Client, namespace: str, count: int, concurrency: int = 24, **spec: Any
) -> float:
    """Create pods ``p0..p{count-1}`` that do not exist yet; returns seconds spent."""
    existing = {o["metadata"]["name"] for o in (await client.list(PODS, namespace)).items}
    todo = [f"p{i}" for i in range(count) if f"p{i}" not in existing]
    started = time.monotonic()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in todo:
        queue.put_nowait(name)

    async def worker() -> None:
        while not queue.empty():
            name = queue.get_nowait()
            with contextlib.suppress(AlreadyExists):
                await client.create(PODS, pod(name, namespace, **spec))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print(json.dumps(dict(rows)))
