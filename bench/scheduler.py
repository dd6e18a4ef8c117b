"""Scheduling throughput of the kosmos-scheduler profile vs kube-scheduler's default profile.

In the same run, against the local environment (`kosmosctl local up`), each member given
one big kwok node so capacity is not the limit:
  * for each profile, N pending pods are created first (nobody schedules them: that
    profile's kube-scheduler is stopped), then one kube-scheduler process is started and the
    pods' bindings are watched; throughput = pods bound per second between the first and the
    last binding, so creation speed and leader election do not count;
  * default: the toolchain's kube-scheduler with profile ``bench-default`` (the default
    plugins, no extender);
  * kosmos: the same binary with the kosmos-scheduler profile and the extender, the pods
    governed by a DistributionPolicy (nodeType leaf), so every pod goes through policy
    matching, the true-capacity check and prioritize;
  * both processes get the same client rate limits (--qps/--burst) and the same pods
    (leaf-node selector and tolerations, 10m cpu, 16Mi);
  * extender latency: p50/p99 of the extender's own handler time per verb (its histogram,
    before/after), and kube-scheduler's per-pod scheduling-algorithm time per profile;
  * the two profiles run alternately for --rounds rounds, which one goes first alternating
    too; before each run the previous run's pods are gone from the members and the machine
    is quiet again (the cluster-manager deleting 1000 member pods would otherwise slow
    whichever profile runs second); the ratio is the median.
Goal: kosmos/default throughput >= 0.7.

Usage: .venv/bin/python bench/scheduler.py [--pods 1000] [--qps 500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from _apimetrics import buckets, quantile
from _procstat import busy_share, cpu_seconds
from _cluster import (
    BENCH_NODE,
    client_for,
    create_pods,
    delete_namespace,
    ensure_bench_node,
    ensure_namespace,
    report,
)

from kosmos.api.resources import DISTRIBUTION_POLICIES, NODES, PODS
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.local import components, environment, paths
from kosmos.local import kosmos_plan as local
from kosmos.ops import local_setup
from kosmos.ops.progress import Progress
from kosmos.local.topology import ClusterPlan
from kosmos.scheduler import profile

HOST, MEMBERS = "host", ("cluster1", "cluster2")
TOLERATIONS = [
    {"key": "bench", "operator": "Exists"},
    {"key": "kosmos.io/node", "operator": "Exists"},
]
DEFAULT_PROFILE = "bench-default"


def scrape(port: int) -> str:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10, context=insecure) as response:
        return str(response.read().decode())


async def watch_bindings(
    client: Client, namespace: str, seen: dict[str, float], total: int
) -> None:
    while len(seen) < total:
        with contextlib.suppress(Exception):
            async for event in client.watch(PODS, namespace=namespace, timeout_seconds=300):
                obj = event["object"]
                name = obj.get("metadata", {}).get("name", "")
                if name not in seen and (obj.get("spec") or {}).get("nodeName"):
                    seen[name] = time.monotonic()
                if len(seen) >= total:
                    return


def start_scheduler(config: dict[str, object], port: int, tag: str) -> subprocess.Popen[bytes]:
    directory = components.directory()
    path = directory / f"bench-{tag}.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (directory / f"bench-{tag}.log").open("ab")
    argv = [
        str(paths.bin_dir() / "kube-scheduler"),
        *profile.flags(str(path), secure_port=port, bind_address="127.0.0.1"),
    ]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


async def run_profile(
    host: Client, name: str, total: int, config: dict[str, object], port: int, extender_port: int
) -> tuple[dict[str, float], str]:
    """The run's figures, and its (deleted) namespace."""
    namespace = f"bench-sched-{name}-{secrets.token_hex(2)}"
    await ensure_namespace(host, namespace)
    spec = {
        "schedulerName": name,
        "tolerations": TOLERATIONS,
        "nodeSelector": {"kosmos.io/node": "true"},
    }
    if name == local.SCHEDULER:
        await host.create(
            DISTRIBUTION_POLICIES,
            {
                "apiVersion": "kosmos.io/v1alpha1",
                "kind": "DistributionPolicy",
                "metadata": {"name": "bench", "namespace": namespace},
                "spec": {
                    "resourceSelectors": [
                        {"labelSelector": {"matchLabels": {"app": "bench"}}, "policyName": "leaf"}
                    ],
                    "policyTerms": [{"name": "leaf", "nodeType": "leaf"}],
                },
            },
        )
    created = await create_pods(host, namespace, total, **spec)
    extender = components.running(local.EXTENDER)
    cpu_before = cpu_seconds(extender) if extender else 0.0
    seen: dict[str, float] = {}
    watcher = asyncio.create_task(watch_bindings(host, namespace, seen, total))
    ext_before = scrape(extender_port) if name == local.SCHEDULER else ""
    process = start_scheduler(config, port, name)
    try:
        await asyncio.wait_for(watcher, timeout=900)
        sched = scrape(port)
    finally:
        process.terminate()
        process.wait(timeout=30)
    stamps = sorted(seen.values())
    extender_cpu = (cpu_seconds(extender) - cpu_before) if extender else 0.0
    out = {
        "extender_cpu_per_1k": extender_cpu / total * 1000,
        "create_s": created,
        "throughput": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "algo_p50": quantile(
            {}, buckets(sched, "scheduler_scheduling_algorithm_duration_seconds", ""), 0.5
        ),
        "algo_p99": quantile(
            {}, buckets(sched, "scheduler_scheduling_algorithm_duration_seconds", ""), 0.99
        ),
        "namespace_deleted": 0.0,
    }
    if name == local.SCHEDULER:
        ext_after = scrape(extender_port)
        for verb in ("filter", "prioritize"):
            series = "kosmos_scheduler_extender_request_duration_seconds"
            before = buckets(ext_before, series, f'verb="{verb}"')
            after = buckets(ext_after, series, f'verb="{verb}"')
            out[f"{verb}_p50"] = quantile(before, after, 0.5)
            out[f"{verb}_p99"] = quantile(before, after, 0.99)
    started = time.monotonic()
    await delete_namespace(host, namespace)
    out["namespace_deleted"] = time.monotonic() - started
    return out, namespace


async def has_pods(client: Client, namespace: str) -> bool:
    async for page in client.list_pages(PODS, namespace, limit=1):
        return bool(page.items)
    return False


async def settle(members: dict[str, Client], namespace: str, timeout: float = 300) -> float:
    """Wait until the members hold no pod of ``namespace`` and the machine is quiet."""
    started = time.monotonic()
    deadline = started + timeout
    for client in members.values():
        while time.monotonic() < deadline:
            if not await has_pods(client, namespace):
                break
            await asyncio.sleep(1)
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        quiet = quiet + 1 if await asyncio.to_thread(busy_share) < 0.35 else 0
    return time.monotonic() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def prepare() -> ClusterPlan:
    """The environment up with Kosmos and kosmos-scheduler running; returns the host plan."""
    options = environment.load_options()
    if options is None:
        raise SystemExit("the local environment is not up: run `kosmosctl local up` first")
    clusters = environment.up(options, Progress())
    local_setup.set_up(clusters, False, Progress())
    return clusters[0]


async def main(plan: ClusterPlan, total: int, qps: float, repeat: int, prioritize: bool) -> None:
    ports = local.scheduler_ports(plan)
    host = await client_for(HOST)
    members = {m: await client_for(m) for m in MEMBERS}
    for client in members.values():
        await ensure_bench_node(client, total)
    await asyncio.sleep(3)  # leaf nodes pick up the new capacity
    kubeconfig = str(environment.cluster_kubeconfig(plan.name))
    components.stop(local.SCHEDULER)  # the bench runs its own, with the bench's rate limits
    kosmos_config = yaml.safe_load(components.scheduler_config_file().read_text())
    kosmos_config["leaderElection"]["leaderElect"] = False
    kosmos_config["clientConnection"] = {"kubeconfig": kubeconfig, "qps": qps, "burst": int(qps)}
    if not prioritize:  # what the extender's scoring costs: filter calls only
        kosmos_config["extenders"][0].pop("prioritizeVerb")
    default_config = {
        "apiVersion": profile.API_VERSION,
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig, "qps": qps, "burst": int(qps)},
        "leaderElection": {"leaderElect": False},
        "profiles": [{"schedulerName": DEFAULT_PROFILE}],
    }
    rounds: list[tuple[dict[str, float], dict[str, float]]] = []
    try:
        for index in range(repeat):  # alternate, so drift of the machine hits both alike
            order = [(DEFAULT_PROFILE, default_config), (local.SCHEDULER, kosmos_config)]
            results: dict[str, dict[str, float]] = {}
            for name, config in order if index % 2 == 0 else order[::-1]:
                out, namespace = await run_profile(
                    host, name, total, config, ports.scheduler, ports.extender
                )
                out["settled"] = await settle(members, namespace)
                results[name] = out
            rounds.append((results[DEFAULT_PROFILE], results[local.SCHEDULER]))
    finally:
        for client in members.values():  # leave the members as the environment made them
            with contextlib.suppress(NotFound):
                await client.delete(NODES, BENCH_NODE)
        for client in (host, *members.values()):
            await client.close()
        await local_setup.ensure_scheduler(plan, Progress())
    rows = [
        ("pods per profile per round", str(total)),
        ("rounds", str(len(rounds))),
        ("client qps/burst (both)", f"{qps:g}/{int(qps)}"),
        ("extender verbs", "filter, prioritize" if prioritize else "filter"),
    ]
    for i, (default, kosmos) in enumerate(rounds, start=1):
        first = "default" if i % 2 else "kosmos"
        rows += [
            (f"round {i} default pods/s", f"{default['throughput']:.1f}"),
            (f"round {i} kosmos pods/s", f"{kosmos['throughput']:.1f} ({first} first)"),
        ]
    waits = [r["settled"] for pair in rounds for r in pair]
    rows.append(("settle wait after a run s (max)", f"{max(waits):.0f}"))
    ratios = sorted(k["throughput"] / d["throughput"] for d, k in rounds)
    default, kosmos = rounds[-1]
    rows += [
        ("throughput ratio kosmos/default (median)", f"{statistics.median(ratios):.2f}"),
        ("throughput ratio per round", " ".join(f"{r:.2f}" for r in ratios)),
        (
            "extender CPU s per 1k pods (during default / kosmos)",
            f"{default['extender_cpu_per_1k']:.1f} / {kosmos['extender_cpu_per_1k']:.1f}",
        ),
        ("default algorithm p50/p99 ms", f"{ms(default['algo_p50'])} / {ms(default['algo_p99'])}"),
        ("kosmos algorithm p50/p99 ms", f"{ms(kosmos['algo_p50'])} / {ms(kosmos['algo_p99'])}"),
        ("extender filter p50/p99 ms", f"{ms(kosmos['filter_p50'])} / {ms(kosmos['filter_p99'])}"),
        (
            "extender prioritize p50/p99 ms",
            f"{ms(kosmos['prioritize_p50'])} / {ms(kosmos['prioritize_p99'])}"
            if prioritize
            else "-",
        ),
    ]
    report("scheduling throughput: kosmos-scheduler profile vs default profile", rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--qps", type=float, default=500.0)
    parser.add_argument("--rounds", type=int, default=2, help="default+kosmos runs, alternated")
    parser.add_argument(
        "--no-prioritize", action="store_true", help="configure the extender's filter verb only"
    )
    args = parser.parse_args()
    asyncio.run(main(prepare(), args.pods, args.qps, args.rounds, not args.no_prioritize))
