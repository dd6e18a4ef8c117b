"""The ClusterLink planner at 1k ClusterNodes: full plan time, the cost of one change, sizes.

Synthetic Clusters and ClusterNodes built in this run (no cluster needed), as the
network-manager's informers would hold them, for three scenarios:
  * gateway: 1000 ClusterNodes in 10 gateway-mode clusters (IPv4);
  * p2p: 1000 ClusterNodes in 10 p2p clusters (IPv4), each node with its own pod CIDR;
  * mixed: 5 gateway-mode + 5 p2p clusters, 1000 ClusterNodes, dual stack.
Every cluster has an elected gateway (node 0, epoch 1), as the elector marks them.

For each scenario:
  * full plan: wall time of ``inputs.read`` + ``plan.compute`` (what the controller runs on
    every change), median of ``--runs``;
  * one change, recomputed from scratch: (1) one node's IP changes, (2) its cluster's gateway
    fails over to another node (newer epoch): the planner time (median) and how many
    NodeConfigs differ from the previous plan -- the controller writes only those
    (``kosmos.clusterlink.nodeconfigs``);
  * the largest NodeConfig: entries (routes, FDB, ARP, iptables rules, ipset entries,
    tunnels) and JSON bytes of the object, against etcd's 1.5 MiB request limit and the
    CRD's 4096 items per list.

Usage: .venv/bin/python bench/planner.py [--nodes 1000] [--clusters 10] [--runs 5]
       [--profile SCENARIO]   (cProfile of one full plan, top functions by own time)
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

from kosmos.clusterlink import nodeconfigs
from kosmos.clusterlink.planner import inputs, plan

Obj = dict[str, Any]
ETCD_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes (1.5 MiB)
CRD_LIST_LIMIT = 4096  # maxItems of routes/fdbs/arps/iptables/ipset entries in the NodeConfig CRD


# --- synthetic inputs ----------------------------------------------------------------------


def cluster(index: int, mode: str, dual: bool) -> Obj:
    pods = [f"10.{index}.0.0/16"] + ([f"fd00:{index:x}::/48"] if dual else [])
    services = [f"10.{100 + index}.0.0/16"] + ([f"fd96:{index:x}::/112"] if dual else [])
    return {
        "metadata": {"name": f"c{index:02d}", "generation": 1},
        "spec": {
            "clusterLinkOptions": {
                "enable": True,
                "networkType": mode,
                "ipFamily": "all" if dual else "ipv4",
                "localCIDRs": {"ip": "210.0.0.0/8", "ip6": "9480::/16"},
                "bridgeCIDRs": {"ip": "220.0.0.0/8", "ip6": "9470::/16"},
                "encryption": {"mode": "auto"},
            }
        },
        "status": {"clusterLinkStatus": {"podCIDRs": pods, "serviceCIDRs": services}},
    }


def clusternode(index: int, n: int, dual: bool) -> Obj:
    name = f"c{index:02d}"
    pods = [f"10.{index}.{n}.0/24"] + ([f"fd00:{index:x}:0:{n:x}::/64"] if dual else [])
    spec: Obj = {
        "clusterName": name,
        "nodeName": f"node-{n}",
        "interfaceName": "eth0",
        "ip": f"172.16.{index}.{n + 1}",
        "podCIDRs": pods,
    }
    if dual:
        spec["ip6"] = f"fd10:{index:x}::{n + 1:x}"
    meta: Obj = {"name": f"{name}-node-{n}", "labels": {"kosmos.io/cluster": name}}
    if n == 0:
        spec["roles"] = ["gateway"]
        meta["annotations"] = {"kosmos.io/gateway-epoch": "1"}
    return {"metadata": meta, "spec": spec}


def scenario(name: str, total: int, count: int) -> tuple[list[Obj], list[Obj]]:
    per = total // count
    modes = {
        "gateway": ["gateway"] * count,
        "p2p": ["p2p"] * count,
        "mixed": ["gateway" if i % 2 == 0 else "p2p" for i in range(count)],
    }[name]
    dual = name == "mixed"
    clusters = [cluster(i, mode, dual) for i, mode in enumerate(modes)]
    nodes = [clusternode(i, n, dual) for i in range(count) for n in range(per)]
    return clusters, nodes


# --- changes -------------------------------------------------------------------------------


def change_ip(clusters: list[Obj], nodes: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """Node 5 of the first cluster gets a new underlay address (DHCP, a NIC swap)."""
    nodes = copy.deepcopy(nodes)
    node = next(n for n in nodes if n["metadata"]["name"] == "c00-node-5")
    node["spec"]["ip"] = "172.16.200.5"
    if "ip6" in node["spec"]:
        node["spec"]["ip6"] = "fd10:c8::5"
    return clusters, nodes


def change_ip_p2p(clusters: list[Obj], nodes: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """The same in the first p2p cluster (the mixed scenario's c01)."""
    nodes = copy.deepcopy(nodes)
    node = next(n for n in nodes if n["metadata"]["name"] == "c01-node-5")
    node["spec"]["ip"] = "172.16.201.5"
    node["spec"]["ip6"] = "fd10:c9::5"
    return clusters, nodes


def failover(clusters: list[Obj], nodes: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """The first cluster's gateway dies: node 1 wins the lease (epoch 2); the old mark goes."""
    nodes = copy.deepcopy(nodes)
    for node in nodes:
        name = node["metadata"]["name"]
        if name == "c00-node-0":
            node["spec"].pop("roles", None)
        elif name == "c00-node-1":
            node["spec"]["roles"] = ["gateway"]
            node["metadata"]["annotations"] = {"kosmos.io/gateway-epoch": "2"}
    return clusters, nodes


# --- measuring -----------------------------------------------------------------------------


def compute(clusters: list[Obj], nodes: list[Obj]) -> plan.Plan:
    return plan.compute(inputs.read(clusters, nodes))


def timed(fn: Callable[[], plan.Plan], runs: int) -> tuple[float, float, plan.Plan]:
    """(median wall s, median CPU s, result): CPU time says more on a shared machine."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert result is not None
    return statistics.median(walls), statistics.median(cpus), result


def differing(before: plan.Plan, after: plan.Plan) -> tuple[int, int]:
    """(NodeConfigs the controller writes, JSON bytes of their specs)."""
    names = set(before.configs) | set(after.configs)
    changed = [n for n in names if before.configs.get(n) != after.configs.get(n)]
    size = sum(len(json.dumps(after.configs.get(n, {})).encode()) for n in changed)
    return len(changed), size


def entries(spec: Obj) -> int:
    lists = ("devices", "routes", "fdbs", "arps", "iptables", "tunnels")
    return sum(len(spec.get(k, [])) for k in lists) + sum(
        len(s.get("entries", [])) for s in spec.get("ipsets", [])
    )


def largest(result: plan.Plan, nodes: list[Obj]) -> tuple[str, int, int, int]:
    """(name, entries, JSON bytes of the NodeConfig object, longest list) of the biggest."""
    clusters = {n["metadata"]["name"]: n["spec"]["clusterName"] for n in nodes}
    best = ("", 0, 0, 0)
    for name, spec in result.configs.items():
        size = len(json.dumps(nodeconfigs.nodeconfig(name, clusters[name], spec)).encode())
        longest = max(
            [len(v) for v in spec.values()]
            + [len(s.get("entries", [])) for s in spec.get("ipsets", [])]
        )
        if size > best[2]:
            best = (name, entries(spec), size, longest)
    return best


def run(name: str, total: int, count: int, runs: int) -> dict[str, Any]:
    clusters, nodes = scenario(name, total, count)
    full, full_cpu, base = timed(lambda: compute(clusters, nodes), runs)
    assert not base.problems, base.problems
    assert len(base.configs) == total, (len(base.configs), base.skipped)
    out: dict[str, Any] = {
        "scenario": name,
        "clusternodes": total,
        "clusters": count,
        "full_plan_s": round(full, 4),
        "full_plan_cpu_s": round(full_cpu, 4),
    }
    changes = {"ip": change_ip, "failover": failover}
    if name == "mixed":
        changes["ip_p2p"] = change_ip_p2p
    for label, change in changes.items():
        changed_clusters, changed_nodes = change(clusters, nodes)
        seconds, cpu, after = timed(lambda: compute(changed_clusters, changed_nodes), runs)  # noqa: B023
        out[f"{label}_plan_s"] = round(seconds, 4)
        out[f"{label}_plan_cpu_s"] = round(cpu, 4)
        written, size = differing(base, after)
        out[f"{label}_nodeconfigs_written"] = written
        out[f"{label}_bytes_written"] = size
    big, n_entries, size, longest = largest(base, nodes)
    out.update(
        largest_nodeconfig=big,
        largest_entries=n_entries,
        largest_bytes=size,
        largest_share_of_etcd_limit=round(size / ETCD_LIMIT, 3),
        largest_list=longest,
        total_bytes=sum(len(json.dumps(s).encode()) for s in base.configs.values()),
    )
    return out


def table(rows: list[dict[str, Any]]) -> None:
    labels = [
        ("full plan (read+compute), median wall s", "full_plan_s"),
        ("full plan, median CPU s", "full_plan_cpu_s"),
        ("node IP change: plan wall s", "ip_plan_s"),
        ("node IP change: plan CPU s", "ip_plan_cpu_s"),
        ("node IP change: NodeConfigs written", "ip_nodeconfigs_written"),
        ("node IP change: spec bytes written", "ip_bytes_written"),
        ("p2p node IP change: plan wall s", "ip_p2p_plan_s"),
        ("p2p node IP change: plan CPU s", "ip_p2p_plan_cpu_s"),
        ("p2p node IP change: NodeConfigs written", "ip_p2p_nodeconfigs_written"),
        ("p2p node IP change: spec bytes written", "ip_p2p_bytes_written"),
        ("gateway failover: plan wall s", "failover_plan_s"),
        ("gateway failover: plan CPU s", "failover_plan_cpu_s"),
        ("gateway failover: NodeConfigs written", "failover_nodeconfigs_written"),
        ("gateway failover: spec bytes written", "failover_bytes_written"),
        ("largest NodeConfig", "largest_nodeconfig"),
        ("  entries", "largest_entries"),
        ("  longest list (CRD max 4096)", "largest_list"),
        ("  JSON bytes", "largest_bytes"),
        ("  share of etcd 1.5 MiB", "largest_share_of_etcd_limit"),
        ("all NodeConfig specs, bytes", "total_bytes"),
    ]
    width = max(len(label) for label, _ in labels)
    first = rows[0]
    print(
        f"\nClusterLink planner: {first['clusternodes']} ClusterNodes, {first['clusters']} clusters"
    )
    print(f"  {'':<{width}}  " + "  ".join(f"{r['scenario']:>14}" for r in rows))
    for label, key in labels:
        cells = "  ".join(f"{r.get(key, '-')!s:>14}" for r in rows)
        print(f"  {label:<{width}}  {cells}")


def profile(name: str, total: int, count: int) -> None:
    clusters, nodes = scenario(name, total, count)
    profiler = cProfile.Profile()
    profiler.enable()
    compute(clusters, nodes)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", choices=["gateway", "p2p", "mixed"])
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.nodes, args.clusters)
        return
    rows = [run(name, args.nodes, args.clusters, args.runs) for name in ("gateway", "p2p", "mixed")]
    table(rows)
    print(json.dumps({"bench": "clusterlink-planner", "scenarios": rows}))


if __name__ == "__main__":
    main()
