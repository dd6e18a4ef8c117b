"""Application migration: a namespace of --deployments x --replicas pods moved under the host.

Against the local environment (`scripts/up`: Kosmos in-cluster, members joined with
ClusterTree). The pods run on one big kwok node in cluster1 (`bench-node`): the point is the
control-plane work, and no real node holds 200 pods here.

Arms, on the same member, node and pod shape, order alternated per repetition:
  * migrate: the namespace is made in cluster1 (Deployments, a Service, a ConfigMap), then a
    PromotePolicy moves it; the makespan is the policy's creationTimestamp -> the status's
    completionTimestamp (server clock, 1 s resolution), and per pod the host pod's
    creationTimestamp -> the first write of its status (ClusterTree adopted the member pod);
  * redeploy (baseline): the same Deployments created in the host, placed on cluster1's leaf
    (the other way to bring an app under the host, with a restart of every pod); makespan =
    first Deployment created -> last host pod Ready, per pod its creationTimestamp -> Ready;
  * member (physical path): the same Deployments created in cluster1 itself; per pod
    creationTimestamp -> Ready, as the member alone does it.
Per-pod latencies are server timestamps (1 s resolution). Every repetition is printed, then
medians and spread.

Usage: .venv/bin/python bench/migration.py [--deployments 20] [--replicas 10] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _cluster import BENCH_NODE, client_for, delete_namespace, ensure_bench_node, ensure_namespace
from _stats import summary

from kosmos.api import names
from kosmos.api.objects import Obj, condition_of, parse_time
from kosmos.api.resources import CONFIGMAPS, DEPLOYMENTS, PODS, PROMOTE_POLICIES, SERVICES
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound

HOST, MEMBER = "host", "cluster1"
EXCLUDED = ["events", "events.events.k8s.io", "endpoints", "endpointslices.discovery.k8s.io"]


def deployment(name: str, namespace: str, replicas: int, leaf: bool) -> Obj:
    labels = {"app": name}
    spec: Obj = {
        "nodeSelector": {names.LABEL_HOSTNAME: BENCH_NODE},
        "tolerations": [{"key": "bench", "operator": "Exists"}],
        "containers": [
            {
                "name": "app",
                "image": "registry.example/bench/app:1.0",
                "ports": [{"containerPort": 8080}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/app"}],
            }
        ],
        "volumes": [{"name": "conf", "configMap": {"name": "conf"}}],
    }
    template: Obj = {"metadata": {"labels": labels}, "spec": spec}
    if leaf:  # the host's copy goes to cluster1's leaf; the member copy to the bench node
        template["metadata"]["annotations"] = {
            names.ANNOTATION_CLUSTER_SELECTOR: json.dumps(
                {"nodeSelector": spec["nodeSelector"], "tolerations": spec["tolerations"]}
            )
        }
        spec["nodeSelector"] = {names.LABEL_OWNER_CLUSTER: MEMBER}
        spec["tolerations"] = [{"key": names.LABEL_NODE, "operator": "Exists"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
    }


async def make_app(client: Client, ns: str, count: int, replicas: int, leaf: bool) -> float:
    await ensure_namespace(client, ns)
    await client.create(
        CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"a": "b"}},
        namespace=ns,
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "d0"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    await client.create(SERVICES, service, namespace=ns)
    started = time.monotonic()
    await asyncio.gather(
        *(
            client.create(DEPLOYMENTS, deployment(f"d{i}", ns, replicas, leaf), namespace=ns)
            for i in range(count)
        )
    )
    return started


def adoption_latencies(pods: list[Obj]) -> list[float]:
    """Host pod created -> the member's status first written onto it (ClusterTree adopted the
    member pod): the status write's managedFields time. A migrated pod's Ready condition is
    the member's, older than the host pod, so it cannot serve here."""
    out = []
    for pod in pods:
        times = [
            parse_time(f["time"])
            for f in pod["metadata"].get("managedFields") or []
            if f.get("subresource") == "status" and f.get("time")
        ]
        if times:
            created = parse_time(pod["metadata"]["creationTimestamp"])
            out.append((min(times) - created).total_seconds())
    return out


def ready_latencies(pods: list[Obj]) -> list[float]:
    out = []
    for pod in pods:
        ready = condition_of(pod, "Ready")
        if ready and ready.get("status") == "True":
            created = parse_time(pod["metadata"]["creationTimestamp"])
            out.append((parse_time(ready["lastTransitionTime"]) - created).total_seconds())
    return out


async def wait_ready(client: Client, ns: str, total: int, timeout: float = 600) -> list[Obj]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = (await client.list(PODS, ns)).items
        if len(ready_latencies(pods)) >= total:
            return pods
        await asyncio.sleep(0.5)
    raise SystemExit(f"{client.cluster}/{ns}: fewer than {total} pods Ready after {timeout}s")


async def arm_member(member: Client, ns: str, args: argparse.Namespace) -> list[float]:
    total = args.deployments * args.replicas
    await make_app(member, ns, args.deployments, args.replicas, leaf=False)
    return ready_latencies(await wait_ready(member, ns, total))


async def arm_redeploy(
    host: Client, ns: str, args: argparse.Namespace
) -> tuple[float, list[float]]:
    total = args.deployments * args.replicas
    started = await make_app(host, ns, args.deployments, args.replicas, leaf=True)
    pods = await wait_ready(host, ns, total)
    makespan = time.monotonic() - started
    return makespan, ready_latencies(pods)


async def arm_migrate(
    host: Client, member: Client, ns: str, args: argparse.Namespace
) -> tuple[float, float, list[float]]:
    total = args.deployments * args.replicas
    await make_app(member, ns, args.deployments, args.replicas, leaf=False)
    await wait_ready(member, ns, total)
    policy = {
        "apiVersion": PROMOTE_POLICIES.api_version,
        "kind": "PromotePolicy",
        "metadata": {"name": ns, "namespace": "default"},
        "spec": {
            "clusterName": MEMBER,
            "includedNamespaces": [ns],
            "excludedNamespaceScopedResources": EXCLUDED,
        },
    }
    started = time.monotonic()
    await host.create(PROMOTE_POLICIES, policy, namespace="default")
    while True:
        found = await host.get(PROMOTE_POLICIES, ns, "default")
        status = found.get("status") or {}
        if status.get("phase") == "Completed":
            break
        if status.get("phase", "").startswith("Failed") or time.monotonic() - started > 600:
            raise SystemExit(f"migration {ns}: {status}")
        await asyncio.sleep(0.2)
    observed = time.monotonic() - started
    server = (
        parse_time(status["completionTimestamp"])
        - parse_time(found["metadata"]["creationTimestamp"])
    ).total_seconds()
    pods = await wait_ready(host, ns, total)
    return server, observed, adoption_latencies(pods)


async def clean(host: Client, member: Client, ns: str) -> None:
    with contextlib.suppress(NotFound):
        await host.delete(PROMOTE_POLICIES, ns, "default")
    await delete_namespace(host, ns)
    await delete_namespace(member, ns)


async def run(args: argparse.Namespace) -> None:
    host, member = await client_for(HOST), await client_for(MEMBER)
    total = args.deployments * args.replicas
    await ensure_bench_node(member, total * 2)
    results: dict[str, list[Any]] = {"migrate": [], "redeploy": [], "member": []}
    try:
        for rep in range(args.reps):
            order = ["migrate", "redeploy", "member"]
            if rep % 2:
                order.reverse()
            for arm in order:
                ns = f"bench-mig-{arm}-{rep}"
                if arm == "migrate":
                    results[arm].append(await arm_migrate(host, member, ns, args))
                    await clean(host, member, ns)
                elif arm == "redeploy":
                    results[arm].append(await arm_redeploy(host, ns, args))
                    await clean(host, member, ns)
                else:
                    results[arm].append(await arm_member(member, ns, args))
                    await delete_namespace(member, ns)
                print(f"  rep {rep + 1} {arm}: done", file=sys.stderr)
    finally:
        await host.close()
        await member.close()
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[Any]]) -> None:
    total = args.deployments * args.replicas
    print(
        f"command: python bench/migration.py --deployments {args.deployments} "
        f"--replicas {args.replicas} --reps {args.reps}"
    )
    print(f"a namespace of {args.deployments} Deployments x {args.replicas} = {total} pods")
    server = [r[0] for r in results["migrate"]]
    observed = [r[1] for r in results["migrate"]]
    redeploy = [r[0] for r in results["redeploy"]]
    for label, values in (
        ("migrate makespan (policy created -> Completed, server)", server),
        ("migrate makespan (client observed)", observed),
        ("redeploy makespan (first create -> last host pod Ready)", redeploy),
    ):
        spread = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {label}: median {statistics.median(values):.1f}s ({spread})")
    ratio = statistics.median(server) / statistics.median(redeploy)
    print(f"  migrate / redeploy makespan: {ratio:.2f}")
    adoption = [r[2] for r in results["migrate"]]
    for line in summary("migrate: host pod created -> member status on it", adoption):
        print(line)
    for line in summary("redeploy: host pod created -> Ready", [r[1] for r in results["redeploy"]]):
        print(line)
    for line in summary("member only: pod created -> Ready", results["member"]):
        print(line)
    goal = statistics.median(server) <= 30
    print(f"  goal (migrate {total} pods <= 30 s): {'met' if goal else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
