"""Pod startup and API call latency at a fixed pod creation rate: ClusterLoader2's density method.

Against the local environment (`kosmosctl local up --members M`), every member given
``--nodes`` kwok nodes (the bench adds those ``local up`` does not make) and its leaves in the
host made per ``--leaf-model`` (``whole``: one leaf per member; ``one-to-one``: one per member
node). Two arms on the same member nodes:
  * direct: the Deployments are created in the members, spread evenly over them (each
    member's controller-manager, scheduler and kwok start the pods);
  * kosmos: the same Deployments are created in the host; their pods tolerate and select leaf
    nodes, the host scheduler places them on leaves, the cluster-manager creates them in the
    members and writes their status back.
Load (open loop): ``--pods`` pods per arm as Deployments of ``--replicas`` pods each, over
``--namespaces`` namespaces. Deployment k is created at start + k * replicas / rate, each by
its own task: the schedule never waits for an earlier call, let alone an earlier pod. The
achieved rate (pods first seen per second between the first and the last) and the
schedule's worst lag are printed.
Per pod (one watch per cluster, ``kosmos.local``'s clock for all): the SLI is
``creationTimestamp`` -> Ready seen by the watch. ``creationTimestamp`` is truncated to the
second (adds 0..1 s), so the headline is the watch's first sight of the pod (ms) -> Ready,
and the creationTimestamp-based figure is printed beside it. Kosmos's phases: host created ->
host scheduled -> member pod created -> member Ready -> host Ready.
API calls: ``apiserver_request_duration_seconds`` of every apiserver, scraped before and after
each arm (``_apimetrics``: mutating p99 <= 1 s, read-only 1/5/30 s). Cost: the
cluster-manager's CPU seconds and peak RSS, and every component's CPU (``_procstat``).
Arms alternate (which one goes first alternates too), ``--reps`` times per ``--rate``; each
arm's namespaces are deleted and the members emptied before the next arm.

Usage: .venv/bin/python bench/density.py [--nodes 50] [--leaf-model whole|one-to-one]
    [--pods 300] [--rate 10 --rate 20] [--replicas 5] [--namespaces 10] [--reps 3]
    [--arms direct,kosmos] [--idle 20] [--cleanup]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _apimetrics import call_latencies
from _cluster import (
    client_for,
    delete_namespace,
    ensure_kwok_nodes,
    ensure_namespace,
    pod,
)
from _densityreport import ArmResult, print_report
from _leaves import ONE_TO_ONE, WHOLE, member_node_names, set_leaf_model, wait_leaves
from _podwatch import PodWatch
from _procstat import Usage, environment_pids, settle
from _stats import percentile

from kosmos.api import names
from kosmos.api.resources import DEPLOYMENTS, NODES, PODS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.local import components, environment
from kosmos.local import kosmos_plan as local
from kosmos.local.topology import ClusterPlan, plan

LEAF_SPEC = {
    "tolerations": [{"key": names.LABEL_NODE, "operator": "Exists"}],
    "nodeSelector": {names.LABEL_NODE: "true"},
}
RUN_LABEL = "kosmos.io/density-run"
KOSMOS_PROCESSES = (local.CLUSTER_MANAGER, local.EXTENDER, local.SCHEDULER)


class Env:
    """Clients of the host and the members, and what the run measures them with."""

    def __init__(self, clusters: list[ClusterPlan], host: Client, members: dict[str, Client]):
        self.clusters, self.host, self.members = clusters, host, members
        self.cm_pid = components.running(local.CLUSTER_MANAGER) or 0
        self.groups = environment_pids([c.name for c in clusters], KOSMOS_PROCESSES)
        self.idle_cores = 0.3  # what "quiet again" means after an arm; idle() measures it

    def all(self) -> dict[str, Client]:
        return {"host": self.host, **self.members}


async def connect() -> Env:
    """The running environment, or a clear error saying how to bring it up."""
    options = environment.load_options()
    hint = "run `kosmosctl local up --members 2 --nodes 50` (KOSMOS_LOCAL_DIR as for this run)"
    if options is None:
        raise SystemExit(f"no local environment in {environment.state_file().parent}: {hint}")
    if options.members < 1:
        raise SystemExit(f"the environment has no member cluster: {hint}")
    if components.running(local.CLUSTER_MANAGER) is None:
        raise SystemExit(f"no cluster-manager running: {hint}")
    clusters = plan(options)
    host = await client_for("host")
    members = {c.name: await client_for(c.name) for c in clusters[1:]}
    for name, client in {"host": host, **members}.items():
        try:
            await client.get_raw("/readyz", timeout=10)
        except (KubeError, OSError) as exc:
            raise SystemExit(f"cluster {name} does not answer ({exc}): {hint}") from exc
    return Env(clusters, host, members)


async def prepare(env: Env, nodes: int, model: str) -> None:
    for cluster in env.clusters[1:]:
        made = await ensure_kwok_nodes(env.members[cluster.name], cluster, nodes)
        print(f"  {cluster.name}: {made} kwok nodes created (want {nodes})", flush=True)
    want = {}
    for name, member in env.members.items():
        have = await member_node_names(member)
        if len(have) < nodes:
            raise SystemExit(f"{name} has {len(have)} kwok nodes, fewer than --nodes {nodes}")
        want[name] = await set_leaf_model(env.host, name, model, have)
    waited = await wait_leaves(env.host, want, timeout=max(900.0, sum(want.values())))
    print(f"  leaf nodes ({model}) Ready after {waited:.0f}s: {want}", flush=True)


def deployment(name: str, namespace: str, replicas: int, run: str, kosmos: bool) -> dict:
    template = pod(name, namespace, **(LEAF_SPEC if kosmos else {}))
    labels = {**template["metadata"]["labels"], RUN_LABEL: run, "density-deployment": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"density-deployment": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": template["metadata"]["annotations"]},
                "spec": template["spec"],
            },
        },
    }


async def open_loop(
    targets: list[Client], namespaces: list[str], args: argparse.Namespace, run: str, kosmos: bool
) -> tuple[float, int]:
    """Create the Deployments on schedule; returns the worst lag behind it and the failures."""
    count = args.pods // args.replicas
    interval = args.replicas / args.rate
    tasks: list[asyncio.Task[object]] = []
    lag = 0.0
    start = time.monotonic()
    for k in range(count):
        due = start + k * interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        lag = max(lag, time.monotonic() - due)
        target, namespace = targets[k % len(targets)], namespaces[k % len(namespaces)]
        body = deployment(f"d{k}", namespace, args.replicas, run, kosmos)
        tasks.append(asyncio.create_task(target.create(DEPLOYMENTS, body)))
        if k and k % max(1, count // 5) == 0:
            print(f"    {k}/{count} deployments created, lag {lag:.2f}s", flush=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"    {len(failed)} creates failed, first: {failed[0]}", flush=True)
    return lag, len(failed)


async def wait_ready(watches: list[PodWatch], total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (ready := sum(w.ready_count() for w in watches)) < total:
        if time.monotonic() > deadline:
            print(f"    timed out: {ready}/{total} Ready after {timeout:.0f}s", flush=True)
            return
        seen = sum(len(w.pods) for w in watches)
        print(f"    pods seen {seen}/{total}, Ready {ready}", flush=True)
        await asyncio.sleep(5)


async def scrape_all(env: Env) -> dict[str, str]:
    return {name: await c.get_text("/metrics") for name, c in env.all().items()}


async def run_arm(env: Env, arm: str, rep: int, args: argparse.Namespace) -> ArmResult:
    kosmos = arm == "kosmos"
    run = f"{arm}-{secrets.token_hex(3)}"
    names_ = [f"density-{run}-{i}" for i in range(args.namespaces)]
    targets = [env.host] if kosmos else list(env.members.values())
    for client in targets:
        for namespace in names_:
            await ensure_namespace(client, namespace)
    label = f"{RUN_LABEL}={run}"
    member_watches = [PodWatch(c, label) for c in env.members.values()]
    host_watch = PodWatch(env.host, label)
    for watch in [*member_watches, *([host_watch] if kosmos else [])]:
        await watch.start()
    usage = Usage(env.groups, env.cm_pid)
    before = await scrape_all(env)
    print(f"  {arm} rep {rep}: {args.pods} pods at {args.rate:g}/s ({run})", flush=True)
    usage.start()
    lag, failed = await open_loop(targets, names_, args, run, kosmos)
    total = (args.pods // args.replicas) * args.replicas
    await wait_ready([host_watch] if kosmos else member_watches, total, args.timeout)
    await usage.stop()
    after = await scrape_all(env)
    for watch in [*member_watches, host_watch]:
        await watch.stop()
    members: dict[str, object] = {}
    for watch in member_watches:
        members.update(watch.pods)
    result = ArmResult(
        arm=arm,
        rate=args.rate,
        pods=total,
        lag=lag,
        failed=failed,
        host=host_watch.pods if kosmos else {},
        members=members,  # type: ignore[arg-type]
        calls={n: call_latencies(before[n], after[n]) for n in before},
        usage=usage,
    )
    print(
        f"    {arm}: p99 {percentile(result.startup(), 99):.2f}s,"
        f" achieved {result.achieved():.1f} pods/s, busiest: {usage.busiest()}",
        flush=True,
    )
    result.cleanup = clean_arm(env, targets, names_, total)
    return result


async def clean_arm(env: Env, targets: list[Client], namespaces: list[str], pods: int) -> None:
    """Delete the arm's namespaces (host and members) and wait until the environment is
    quiet again (the cluster-manager deleting the members' copies would otherwise slow
    whichever arm runs next)."""
    started = time.monotonic()
    timeout = max(600.0, pods / 10)
    print(f"    deleting {len(namespaces)} namespaces and {pods} pods", flush=True)
    for client in [*targets, *env.members.values()]:  # the cluster-manager's copies too
        await asyncio.gather(*(delete_namespace(client, n, timeout) for n in namespaces))
    await settle(env.groups, cores=env.idle_cores)
    print(f"    cleaned up in {time.monotonic() - started:.0f}s", flush=True)


async def cleanup(env: Env) -> None:
    """Back to what `local up` made: whole leaves, the plan's kwok nodes only."""
    want = {n: await set_leaf_model(env.host, n, WHOLE, []) for n in env.members}
    for cluster in env.clusters[1:]:
        client = env.members[cluster.name]
        planned = {n.name for n in cluster.nodes}
        extra = [n for n in await member_node_names(client) if n not in planned]
        for name in extra:
            with contextlib.suppress(NotFound):
                await client.delete(NODES, name)
        print(f"  {cluster.name}: {len(extra)} extra kwok nodes deleted", flush=True)
    await wait_leaves(env.host, want)


async def idle(env: Env, seconds: float, nodes: int) -> None:
    """What the environment costs with no pods starting: kwok's node heartbeats, the leaf
    nodes' leases and capacity passes (the per-node part of the projection in docs/scale.md)."""
    if seconds <= 0:
        return
    usage = Usage(env.groups, env.cm_pid)
    usage.start()
    await asyncio.sleep(seconds)
    await usage.stop()
    total = sum(usage.cpu.values()) / usage.wall
    env.idle_cores = total + 0.2
    print(
        f"  idle {seconds:.0f}s with {len(env.members)} x {nodes} kwok nodes: {total:.2f} cores"
        f" ({usage.busiest(6)}); machine busy {usage.machine:.0%}",
        flush=True,
    )


async def leftovers(env: Env) -> None:
    for name, client in env.all().items():
        pods = await client.list(PODS, label_selector=RUN_LABEL, limit=1)
        if pods.items:
            print(f"  warning: {name} still holds density pods of an earlier run", flush=True)


async def main(args: argparse.Namespace) -> None:
    env = await connect()
    try:
        nodes = max(args.nodes, len(env.clusters[1].nodes))
        print(f"members {len(env.members)} x {nodes} kwok nodes, leaf model {args.leaf_model}")
        await prepare(env, nodes, args.leaf_model)
        await leftovers(env)
        await idle(env, args.idle, nodes)
        results: list[ArmResult] = []
        arms = args.arms.split(",")
        for rate in args.rate:
            args_rate = argparse.Namespace(**{**vars(args), "rate": rate})
            for rep in range(1, args.reps + 1):
                order = arms if rep % 2 else arms[::-1]
                for arm in order:
                    if results:  # the previous arm's namespaces go before this one starts
                        await results[-1].cleanup
                    results.append(await run_arm(env, arm, rep, args_rate))
        print_report(results, len(env.members), nodes, args)  # before the last clean-up
        await results[-1].cleanup
        if args.cleanup:
            await cleanup(env)
    finally:
        for client in env.all().values():
            await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50, help="kwok nodes per member")
    parser.add_argument("--leaf-model", choices=(WHOLE, ONE_TO_ONE), default=WHOLE)
    parser.add_argument("--pods", type=int, default=300, help="pods per arm and repetition")
    parser.add_argument("--rate", type=float, action="append", help="pods/s (repeatable)")
    parser.add_argument("--replicas", type=int, default=5, help="pods per Deployment")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every arm")
    parser.add_argument("--arms", default="direct,kosmos")
    parser.add_argument("--timeout", type=float, default=600, help="per arm, for Ready")
    parser.add_argument("--idle", type=float, default=20, help="seconds of idle cost first")
    parser.add_argument("--cleanup", action="store_true", help="extra nodes, leaf model back")
    parsed = parser.parse_args()
    parsed.rate = parsed.rate or [10.0]
    asyncio.run(main(parsed))
