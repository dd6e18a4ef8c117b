"""Multi-cluster services: export-to-resolvable latency, and endpoint propagation on scale-up.

Against the local environment with real nodes (`kosmosctl local up --real-nodes 1`: Kosmos
in-cluster, kosmos-coredns in every cluster, members joined), from the host's network
namespace, which reaches pod IPs on the real nodes over the routes `local up` installs.

(a) export -> resolvable, open loop at --rate services/s, --services per arm and repetition:
  * mcs: a ClusterIP Service + its ServiceExport created in the host; the item ends when
    `<svc>.<ns>.svc.clusterset.local` first answers an A record from cluster1's
    kosmos-coredns (queried at its pod IP);
  * direct (baseline): a Service created in cluster1 itself; the item ends when
    `<svc>.<ns>.svc.cluster.local` first answers from cluster1's cluster DNS (kube-dns pod).
  The item starts when the create call returns: a creationTimestamp has 1 s resolution, too
  coarse for sub-second latencies; the object exists from that moment (an upper bound of the
  server's create time, so latencies are if anything under-, never over-stated by it).
  Pending names are polled every 50 ms (UDP, 0.5 s timeout). Arms alternate order per
  repetition.

(b) endpoint propagation on scale 0 -> --replicas: an exported Deployment in the host on one
  big kwok node; per endpoint, from the pod's Ready condition lastTransitionTime (server) to
  the moment its IP first appears (watch) in
  * mcs: cluster1's imported EndpointSlices (label multicluster.kubernetes.io/service-name),
  * host (baseline, the same pods, same instant): the host's own EndpointSlices (kcm).
  Both arms see the same scale-up, so they share capacity and start; the 1 s truncation of
  lastTransitionTime biases both alike, and "added" (member seen - host seen, per endpoint,
  both client clocks) is free of it. kwok pod IPs answer nothing, so cluster1's prober is
  paused (Deployment scaled to 0) for (b) and restored after: it would rightly mark them.

Every repetition's p50/p99 are printed, then the median and spread over repetitions.

Usage: .venv/bin/python bench/mcs.py [--services 200] [--rate 10] [--replicas 100] [--reps 3]
       [--part a|b|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype

sys.path.insert(0, str(Path(__file__).parent))

from _cluster import BENCH_NODE, client_for, delete_namespace, ensure_bench_node, ensure_namespace
from _stats import summary

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    NODES,
    PODS,
    SERVICE_EXPORTS,
    SERVICE_IMPORTS,
    SERVICES,
)
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound

HOST, MEMBER = "host", "cluster1"
POLL, QUERY_TIMEOUT, ITEM_DEADLINE = 0.05, 0.5, 60.0
PROBER = ("kosmos-system", "kosmos-eps-probe")


# --- (a) export -> resolvable ------------------------------------------------------------


async def pod_ip_of(client: Client, namespace: str, service: str) -> str:
    """A ready endpoint address of ``service`` (a DNS server's pod IP, reachable from here)."""
    slices = await client.list(
        ENDPOINTSLICES, namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    for item in slices.items:
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True):
                return str(endpoint["addresses"][0])
    raise SystemExit(f"no ready endpoint of {namespace}/{service} in {client.cluster}")


async def answers(server: str, name: str) -> bool:
    query = dns.message.make_query(name, dns.rdatatype.A)
    with contextlib.suppress(Exception):
        reply = await dns.asyncquery.udp(query, server, timeout=QUERY_TIMEOUT)
        return reply.rcode() == dns.rcode.NOERROR and any(
            rrset.rdtype == dns.rdatatype.A for rrset in reply.answer
        )
    return False


def service(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }


def export(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": SERVICE_EXPORTS.api_version,
        "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": namespace},
    }


Create = Callable[[str, str], Awaitable[None]]


async def open_loop(
    create: Create,
    server: str,
    fqdn: Callable[[str, str], str],
    namespace: str,
    count: int,
    rate: float,
) -> list[float]:
    """Item i is created at start + i/rate whatever the others do; returns latencies."""
    latencies: list[float] = []
    start = time.monotonic() + 0.2

    async def item(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        name = f"s{i}"
        await create(name, namespace)
        created = time.monotonic()
        while time.monotonic() - created < ITEM_DEADLINE:
            if await answers(server, fqdn(name, namespace)):
                latencies.append(time.monotonic() - created)
                return
            await asyncio.sleep(POLL)

    await asyncio.gather(*(item(i) for i in range(count)))
    return latencies


async def part_a(host: Client, member: Client, count: int, rate: float, reps: int) -> list[str]:
    coredns = await pod_ip_of(member, names.SYSTEM_NAMESPACE, "kosmos-coredns")
    cluster_dns = await pod_ip_of(member, "kube-system", "kube-dns")

    async def create_mcs(name: str, ns: str) -> None:
        await host.create(SERVICES, service(name, ns))
        await host.create(SERVICE_EXPORTS, export(name, ns))

    async def create_direct(name: str, ns: str) -> None:
        await member.create(SERVICES, service(name, ns))

    arms: dict[str, tuple[Create, str, Callable[[str, str], str]]] = {
        "mcs": (create_mcs, coredns, lambda n, ns: f"{n}.{ns}.svc.{names.MCS_ZONE}."),
        "direct": (create_direct, cluster_dns, lambda n, ns: f"{n}.{ns}.svc.cluster.local."),
    }
    results: dict[str, list[list[float]]] = {arm: [] for arm in arms}
    for rep in range(reps):
        order = list(arms) if rep % 2 == 0 else list(reversed(arms))
        for arm in order:
            ns = f"bench-mcs-{arm}-{secrets.token_hex(2)}"
            for client in (host, member):  # the import needs the namespace in the member
                await ensure_namespace(client, ns)
            try:
                create, server, fqdn = arms[arm]
                results[arm].append(await open_loop(create, server, fqdn, ns, count, rate))
            finally:
                for client in (host, member):
                    await delete_namespace(client, ns)
            print(
                f"  (a) rep {rep + 1} {arm}: {len(results[arm][-1])}/{count} resolvable", flush=True
            )
    lines = [
        f"(a) export -> resolvable, {count} services per arm and rep at {rate}/s, cluster1's DNS"
    ]
    lines += summary("mcs  <svc>.<ns>.svc.clusterset.local (kosmos-coredns)", results["mcs"])
    lines += summary("direct <svc>.<ns>.svc.cluster.local (cluster DNS)", results["direct"])
    return lines


# --- (b) endpoint propagation on scale-up ------------------------------------------------


def deployment(name: str, namespace: str) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": BENCH_NODE},
                    "tolerations": [{"key": "bench", "operator": "Exists"}],
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/bench/app:1.0",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                        }
                    ],
                },
            },
        },
    }


def wall(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def follow(
    client: Client, resource: Any, namespace: str, selector: str, on: Callable[[Obj], None]
) -> None:
    """Feed every object of a label-selected watch to ``on`` until cancelled (re-opened on end)."""
    while True:
        with contextlib.suppress(Exception):
            async for event in client.watch(
                resource, namespace=namespace, label_selector=selector, timeout_seconds=300
            ):
                if event["type"] in ("ADDED", "MODIFIED"):
                    on(event["object"])


def slice_seen(seen: dict[str, float]) -> Callable[[Obj], None]:
    def on(obj: Obj) -> None:
        now = time.time()
        for endpoint in obj.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True):
                for address in endpoint.get("addresses") or []:
                    seen.setdefault(address, now)

    return on


def ready_at(ready: dict[str, float]) -> Callable[[Obj], None]:
    def on(obj: Obj) -> None:
        ip = (obj.get("status") or {}).get("podIP")
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if ip and condition["type"] == "Ready" and condition["status"] == "True":
                ready.setdefault(ip, wall(condition["lastTransitionTime"]))

    return on


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def scale(host: Client, name: str, ns: str, replicas: int) -> None:
    await host.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, namespace=ns)


async def member_ips(member: Client, ns: str, name: str) -> int:
    slices = await member.list(
        ENDPOINTSLICES, ns, label_selector=f"{names.LABEL_MCS_SERVICE_NAME}={name}"
    )
    return sum(
        len(e.get("addresses") or []) for s in slices.items for e in s.get("endpoints") or []
    )


async def part_b(host: Client, member: Client, replicas: int, reps: int) -> list[str]:
    name, ns = "bench-scale", f"bench-mcs-scale-{secrets.token_hex(2)}"
    await ensure_bench_node(host, replicas)
    for client in (host, member):
        await ensure_namespace(client, ns)
    await host.create(DEPLOYMENTS, deployment(name, ns))
    await host.create(SERVICES, service(name, ns))
    await host.create(SERVICE_EXPORTS, export(name, ns))
    prober = await member.get(DEPLOYMENTS, PROBER[1], PROBER[0])
    prober_replicas = prober["spec"].get("replicas", 1)
    await member.patch(DEPLOYMENTS, PROBER[1], {"spec": {"replicas": 0}}, namespace=PROBER[0])
    mcs: list[list[float]] = []
    base: list[list[float]] = []
    added: list[list[float]] = []
    try:
        deadline = time.monotonic() + 60
        while True:  # the controller imports into every cluster where the namespace exists
            with contextlib.suppress(NotFound):
                await member.get(SERVICE_IMPORTS, name, ns)
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no ServiceImport {ns}/{name} in {MEMBER} after 60s")
            await asyncio.sleep(0.2)
        for rep in range(reps):
            ready: dict[str, float] = {}
            in_host: dict[str, float] = {}
            in_member: dict[str, float] = {}
            watches = [
                asyncio.create_task(follow(host, PODS, ns, f"app={name}", ready_at(ready))),
                asyncio.create_task(
                    follow(
                        host,
                        ENDPOINTSLICES,
                        ns,
                        f"kubernetes.io/service-name={name}",
                        slice_seen(in_host),
                    )
                ),
                asyncio.create_task(
                    follow(
                        member,
                        ENDPOINTSLICES,
                        ns,
                        f"{names.LABEL_MCS_SERVICE_NAME}={name}",
                        slice_seen(in_member),
                    )
                ),
            ]
            await asyncio.sleep(1.0)  # the watches are open before the scale-up
            await scale(host, name, ns, replicas)
            try:
                await wait_until(
                    lambda r=ready, m=in_member: len(r) >= replicas and set(r) <= set(m),
                    180,
                    f"{replicas} endpoints in {MEMBER}'s imported slices",
                )
            finally:
                for task in watches:
                    task.cancel()
                await asyncio.gather(*watches, return_exceptions=True)
            mcs.append([in_member[ip] - t for ip, t in ready.items()])
            base.append([in_host[ip] - t for ip, t in ready.items() if ip in in_host])
            added.append([in_member[ip] - in_host[ip] for ip in ready if ip in in_host])
            print(f"  (b) rep {rep + 1}: {len(ready)} endpoints", flush=True)
            await scale(host, name, ns, 0)
            deadline = time.monotonic() + 180
            while await member_ips(member, ns, name):
                if time.monotonic() > deadline:
                    raise SystemExit("imported slices not emptied after scale to 0")
                await asyncio.sleep(0.5)
    finally:
        await member.patch(
            DEPLOYMENTS, PROBER[1], {"spec": {"replicas": prober_replicas}}, namespace=PROBER[0]
        )
        for client in (host, member):
            await delete_namespace(client, ns)
        with contextlib.suppress(NotFound):
            await host.delete(NODES, BENCH_NODE)
    lines = [
        f"(b) endpoint propagation, scale 0 -> {replicas} in the host, from pod Ready (server)"
    ]
    lines += summary(f"mcs  {MEMBER}'s imported EndpointSlices", mcs)
    lines += summary("host's own EndpointSlices (kcm, baseline)", base)
    lines += summary("added by MCS (member seen - host seen)", added)
    return lines


async def main(args: argparse.Namespace) -> None:
    host, member = await client_for(HOST), await client_for(MEMBER)
    lines = [f"command: {' '.join([Path(sys.executable).name, *sys.argv])}"]
    try:
        if args.part in ("a", "both"):
            lines += await part_a(host, member, args.services, args.rate, args.reps)
        if args.part in ("b", "both"):
            lines += await part_b(host, member, args.replicas, args.reps)
    finally:
        await host.close()
        await member.close()
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="services created per second")
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    asyncio.run(main(parser.parse_args()))
