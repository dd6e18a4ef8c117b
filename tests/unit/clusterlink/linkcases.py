"""Raw Cluster / ClusterNode dicts for the planner tests, shaped as the API returns them.

The planner reads raw API objects; these builders write only what a test varies, with the
CRD's defaults for the rest (as the apiserver would fill them in).
"""

from __future__ import annotations

from typing import Any

from kosmos.clusterlink.planner import inputs, plan

Obj = dict[str, Any]


def cluster(
    name: str,
    *,
    mode: str = "p2p",
    family: str = "all",
    pods: tuple[str, ...] | list[str] = (),
    services: tuple[str, ...] | list[str] = (),
    deleting: bool = False,
    **options: Any,
) -> Obj:
    meta: Obj = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"clusterLinkOptions": {"networkType": mode, "ipFamily": family, **options}},
        "status": {"clusterLinkStatus": {"podCIDRs": list(pods), "serviceCIDRs": list(services)}},
    }


def node(
    cluster: str,
    name: str,
    ip: str = "",
    ip6: str = "",
    *,
    pods: tuple[str, ...] | list[str] = (),
    gateway: bool = False,
    epoch: int | str | None = None,
    eip: str = "",
    iface: str = "eth0",
    key: str = "",
) -> Obj:
    """ClusterNode ``<cluster>-<name>`` as its agent and the discovery controller fill it."""
    spec: Obj = {"clusterName": cluster, "nodeName": name, "podCIDRs": list(pods)}
    if iface:
        spec["interfaceName"] = iface
    if ip:
        spec["ip"] = ip
    if ip6:
        spec["ip6"] = ip6
    if eip:
        spec["elasticIP"] = eip
    if gateway:
        spec["roles"] = ["gateway"]
    annotations: dict[str, str] = {}
    if epoch is not None:
        annotations["kosmos.io/gateway-epoch"] = str(epoch)
    if key:
        annotations["kosmos.io/wireguard-public-key"] = key
    meta: Obj = {"name": f"{cluster}-{name}", "labels": {"kosmos.io/cluster": cluster}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def compute(clusters: list[Obj], nodes: list[Obj]) -> plan.Plan:
    return plan.compute(inputs.read(clusters, nodes))


def by_dev(items: list[Obj], dev: str) -> list[Obj]:
    return [i for i in items if i.get("dev") == dev]


def routes(spec: Obj) -> dict[str, tuple[str, str]]:
    """cidr -> (gw, dev) of a NodeConfig spec."""
    return {r["cidr"]: (r["gw"], r["dev"]) for r in spec.get("routes", [])}


def devices(spec: Obj) -> dict[str, Obj]:
    return {d["name"]: d for d in spec.get("devices", [])}


def rules(spec: Obj, chain: str | None = None) -> list[str]:
    return [r["rule"] for r in spec.get("iptables", []) if chain in (None, r["chain"])]
