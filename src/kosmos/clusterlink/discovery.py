"""What a member's own objects say about its pod and service CIDRs, as pure functions.

ClusterLink routes a member's pod and service ranges to it, so they must be right, and
nobody should have to type them: they are read from where the member already keeps them.
Pod CIDRs come from the CNI's configuration (Calico IPPools, Flannel's ``net-conf.json``,
Cilium's cluster pool) or, for any other CNI, from the nodes' ``spec.podCIDRs``; the
Cluster's ``clusterPodCIDRs`` overrides all of it. Service CIDRs come from the apiserver's
``--service-cluster-ip-range`` flag when the apiserver runs as a pod, else from the
apiserver itself: a Service dry-run with an address no range can hold is rejected with a
message naming the range (the "invalid Service" probe).

The controller (``cidrs.py``) picks the sources and feeds them cached objects; everything
here is deterministic and table-tested. A source that exists but cannot be used raises
``DiscoveryError`` with a message meant for the user who has to fix it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from kosmos.api import names
from kosmos.api.objects import Obj

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Family = Literal[4, 6]
PodSource = Literal["override", "calico", "flannel", "cilium", "nodes"]


class DiscoveryError(ValueError):
    """A source says something unusable; the message names the object and the fix."""


# -- CIDR text -----------------------------------------------------------------------------


def normalize(text: str, source: str) -> Network:
    """``text`` as a network (host bits cleared, IPv6 compressed), or a DiscoveryError."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise DiscoveryError(f"{source}: {text!r} is not a CIDR") from None


def aggregate(networks: Iterable[Network]) -> list[str]:
    """Fewest networks covering the same addresses: IPv4 first, each family sorted.

    Adjacent and nested ranges merge (``10.0.0.0/24`` + ``10.0.1.0/24`` = ``10.0.0.0/23``),
    so one route per range is planned, not one per node or per Calico block.
    """
    networks = list(networks)
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    out = [str(n) for n in ipaddress.collapse_addresses(v4)]
    out += [str(n) for n in ipaddress.collapse_addresses(v6)]
    return out


def parse_list(texts: Iterable[str], source: str) -> list[str]:
    return aggregate(normalize(text, source) for text in texts if text.strip())


def _split(value: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", value) if part]


# -- pod CIDRs -----------------------------------------------------------------------------

#: IPPools ClusterLink creates for other clusters' ranges (``ippools.py``) carry this prefix.
OWN_POOL_PREFIX = "clusterlink-"
FLANNEL_CONFIGMAP = "kube-flannel-cfg"
FLANNEL_KEY = "net-conf.json"
CILIUM_NAMESPACE = "kube-system"
CILIUM_CONFIGMAP = "cilium-config"


def cni_of(cluster: Obj) -> str:
    options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
    return str(options.get("cni", "calico")).lower()


def pod_source(cluster: Obj) -> PodSource:
    """Where this Cluster's pod CIDRs come from: its override, its CNI, or its nodes."""
    options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
    if options.get("clusterPodCIDRs"):
        return "override"
    cni = cni_of(cluster)
    if cni in ("calico", "flannel", "cilium"):
        return cni  # type: ignore[return-value]
    return "nodes"


def override_cidrs(cluster: Obj) -> list[str]:
    options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
    return parse_list(options.get("clusterPodCIDRs") or [], "spec.clusterLinkOptions")


def calico_pool_cidrs(pools: Iterable[Obj]) -> list[str]:
    """Enabled IPPools' CIDRs, minus the pools ClusterLink made for remote clusters."""
    networks = []
    for pool in pools:
        name = pool["metadata"]["name"]
        spec = pool.get("spec") or {}
        if name.startswith(OWN_POOL_PREFIX) or spec.get("disabled") is True:
            continue
        if not spec.get("cidr"):
            raise DiscoveryError(f"Calico IPPool {name} has no spec.cidr")
        networks.append(normalize(spec["cidr"], f"Calico IPPool {name} spec.cidr"))
    return aggregate(networks)


def flannel_cidrs(configmaps: Sequence[Obj]) -> list[str]:
    """``Network`` and ``IPv6Network`` of ``net-conf.json`` (every kube-flannel-cfg found)."""
    networks = []
    for cm in configmaps:
        where = f"ConfigMap {cm['metadata'].get('namespace')}/{cm['metadata']['name']}"
        text = (cm.get("data") or {}).get(FLANNEL_KEY)
        if not text:
            raise DiscoveryError(f"{where} has no key {FLANNEL_KEY}")
        try:
            conf = json.loads(text)
        except ValueError as exc:
            raise DiscoveryError(f"{where}: {FLANNEL_KEY} is not JSON ({exc})") from None
        if not isinstance(conf, dict):
            raise DiscoveryError(f"{where}: {FLANNEL_KEY} is not a JSON object")
        found = [conf[key] for key in ("Network", "IPv6Network") if conf.get(key)]
        if not found:
            raise DiscoveryError(f"{where}: {FLANNEL_KEY} has neither Network nor IPv6Network")
        networks += [normalize(str(c), f"{where} {FLANNEL_KEY}") for c in found]
    return aggregate(networks)


def cilium_cidrs(configmap: Obj) -> list[str] | None:
    """The cluster-pool CIDRs of ``cilium-config``; None when Cilium uses the nodes' podCIDRs.

    With ``ipam: kubernetes`` Cilium allocates from ``node.spec.podCIDRs``, so the cluster
    pool keys (often left at their defaults) do not describe the pod network.
    """
    data = configmap.get("data") or {}
    where = f"ConfigMap {CILIUM_NAMESPACE}/{CILIUM_CONFIGMAP}"
    ipam = data.get("ipam", "cluster-pool")
    if ipam == "kubernetes":
        return None
    found = []
    for family in ("ipv4", "ipv6"):
        if data.get(f"enable-{family}", "true" if family == "ipv4" else "false") == "false":
            continue
        found += _split(data.get(f"cluster-pool-{family}-cidr", ""))
    if not found:
        raise DiscoveryError(
            f"{where} (ipam {ipam}) has no cluster-pool-ipv4-cidr or cluster-pool-ipv6-cidr; "
            "list the pod CIDRs in spec.clusterLinkOptions.clusterPodCIDRs"
        )
    return parse_list(found, where)


def node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return parse_list(cidrs, f"Node {node['metadata']['name']} spec.podCIDRs")


def is_leaf_node(node: Obj) -> bool:
    """A Kosmos leaf node (a member seen from a host): virtual, it has no pod network."""
    return (node["metadata"].get("labels") or {}).get(names.LABEL_NODE) == "true"


def nodes_pod_cidrs(nodes: Iterable[Obj]) -> list[str]:
    networks = []
    for node in nodes:
        if not is_leaf_node(node):
            where = f"Node {node['metadata']['name']} spec.podCIDRs"
            networks += [normalize(c, where) for c in node_cidrs(node)]
    return aggregate(networks)


def affinity_node(affinity: Obj) -> str | None:
    """The node a Calico BlockAffinity gives its block to, once confirmed."""
    spec = affinity.get("spec") or {}
    if spec.get("state", "confirmed") != "confirmed" or str(spec.get("deleted")) == "true":
        return None
    node = spec.get("node")
    return str(node) if node else None


def block_cidrs(affinities: Iterable[Obj]) -> list[str]:
    return parse_list(
        [str((a.get("spec") or {}).get("cidr", "")) for a in affinities], "Calico BlockAffinity"
    )


# -- service CIDRs -------------------------------------------------------------------------

SERVICE_RANGE_FLAG = "--service-cluster-ip-range"
APISERVER = "kube-apiserver"


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value``; the last one wins, as in pflag."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def is_apiserver_pod(pod: Obj) -> bool:
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    return labels.get("component") == APISERVER or meta["name"].startswith(APISERVER)


def apiserver_service_cidrs(pods: Iterable[Obj]) -> tuple[list[str], str] | None:
    """The flag's CIDRs and the pod that has it (the first by name), or None."""
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if not is_apiserver_pod(pod) or pod["metadata"].get("deletionTimestamp"):
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            argv = [*(container.get("command") or []), *(container.get("args") or [])]
            value = flag_value(argv, SERVICE_RANGE_FLAG)
            if value:
                where = f"pod kube-system/{pod['metadata']['name']} {SERVICE_RANGE_FLAG}"
                return parse_list(value.split(","), where), pod["metadata"]["name"]
    return None


#: Addresses no real service range holds (0.0.0.1 is in "this network" 0.0.0.0/8, ::1 is the
#: loopback address), so the apiserver always rejects them and names its range.
PROBE_IPS: dict[Family, str] = {4: "0.0.0.1", 6: "::1"}
PROBE_NAME = "kosmos-service-cidr-probe"
PROBE_NAMESPACE = "default"
_RANGE = re.compile(r"The range of valid IPs is (?P<cidr>[0-9A-Fa-f.:]+/\d+)")
_NOT_CONFIGURED = re.compile(r"not configured on this cluster")


def probe_service(family: Family) -> Obj:
    """A Service the apiserver must reject: a single-stack ClusterIP outside every range."""
    ip = PROBE_IPS[family]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": PROBE_NAME, "namespace": PROBE_NAMESPACE},
        "spec": {
            "type": "ClusterIP",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": [f"IPv{family}"],
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ports": [{"name": "probe", "port": 443, "protocol": "TCP"}],
        },
    }


def parse_probe_rejection(message: str) -> str | None:
    """The service CIDR named in the apiserver's rejection; None: family not configured.

    kube-apiserver (v1.36.3) answers 422 with ``spec.clusterIPs: Invalid value:
    ["0.0.0.1"]: failed to allocate IP 0.0.0.1: the provided IP (0.0.0.1) is not in the
    valid range. The range of valid IPs is 10.111.0.0/16``, and for a family the cluster
    does not serve ``spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this
    cluster``.
    """
    match = _RANGE.search(message)
    if match:
        return str(normalize(match["cidr"], "the apiserver's answer"))
    if _NOT_CONFIGURED.search(message):
        return None
    raise DiscoveryError(f"unexpected answer to the service CIDR probe: {message[:300]}")


def service_cidr_objects(objects: Iterable[Obj]) -> list[str]:
    """CIDRs of networking.k8s.io ServiceCIDRs (ranges added at runtime, k8s >= 1.33)."""
    cidrs: list[str] = []
    for obj in objects:
        if not obj["metadata"].get("deletionTimestamp"):
            cidrs += (obj.get("spec") or {}).get("cidrs") or []
    return parse_list(cidrs, "ServiceCIDR")
