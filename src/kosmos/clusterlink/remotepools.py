"""Calico IPPools for other clusters' CIDRs, as pure data (the calicoIPPool controller's plan).

Calico masquerades pod traffic to any destination outside its own IPPools and may hand out
addresses from any range it does not know is taken. A disabled IPPool per remote pod and
service CIDR — no NAT, no BGP export, no encapsulation — tells Calico in a member "this
range is real, not the internet": pods keep their source address towards the other
cluster and nothing is allocated from it (docs/clusterlink.md).

Other clusters are seen through their ``globalCIDRsMap`` (a real CIDR is reached as its
global one). A remote range that overlaps one of the member's own pools is left out — a
pool over its own pod network would break the member — and reported, so the user can map
one of the two clusters to a global CIDR.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.link import seen  # the pure rule, shared with the MCS controller
from kosmos.api.objects import Obj
from kosmos.clusterlink.discovery import OWN_POOL_PREFIX, Network, normalize
from kosmos.clusterlink.forge import MANAGED_BY

Kind = Literal["pod", "service"]
MAX_NAME = 253


@dataclass(frozen=True)
class Overlap:
    """A remote range not added because it overlaps one of the member's own pools."""

    cluster: str
    kind: Kind
    cidr: str
    pool: str

    def __str__(self) -> str:
        return (
            f"{self.kind} CIDR {self.cidr} of cluster {self.cluster} overlaps IPPool {self.pool}; "
            f"map one of them to a global CIDR (spec.clusterLinkOptions.globalCIDRsMap)"
        )


def pool_name(cluster: str, kind: Kind, cidr: str) -> str:
    """``clusterlink-<cluster>-<pod|service>-<cidr>`` with ``.``, ``:`` and ``/`` as ``-``."""
    flat = cidr.replace(".", "-").replace(":", "-").replace("/", "-")
    return f"{OWN_POOL_PREFIX}{cluster}-{kind}-{flat}"


def pool_object(cluster: str, kind: Kind, cidr: str) -> Obj:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "IPPool",
        "metadata": {
            "name": pool_name(cluster, kind, cidr),
            "labels": {names.LABEL_CLUSTER: cluster, names.LABEL_MANAGED_BY: MANAGED_BY},
        },
        "spec": {
            "cidr": cidr,
            "natOutgoing": False,
            "disabled": True,
            "disableBGPExport": True,
            "vxlanMode": "Never",
            "ipipMode": "Never",
        },
    }


def _own(pools: Iterable[Obj]) -> list[tuple[str, Network]]:
    out = []
    for pool in pools:
        name = pool["metadata"]["name"]
        cidr = (pool.get("spec") or {}).get("cidr")
        if name.startswith(OWN_POOL_PREFIX) or not cidr:
            continue
        try:
            out.append((name, ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            continue
    return out


def remote_pools(
    member: str, clusters: Iterable[Obj], pools: Iterable[Obj]
) -> tuple[dict[str, Obj], list[Overlap]]:
    """The pools ``member`` should hold for every other cluster, and what was left out.

    ``clusters`` are the linked Clusters (the member's own is skipped); ``pools`` the
    member's current IPPools (its own pools decide overlaps).
    """
    own = _own(pools)
    wanted: dict[str, Obj] = {}
    overlaps: list[Overlap] = []
    for cluster in sorted(clusters, key=lambda c: c["metadata"]["name"]):
        name = cluster["metadata"]["name"]
        if name == member:
            continue
        link = (cluster.get("status") or {}).get("clusterLinkStatus") or {}
        global_map = (cluster.get("spec", {}).get("clusterLinkOptions") or {}).get(
            "globalCIDRsMap"
        ) or {}
        kinds: tuple[tuple[Kind, str], ...] = (("pod", "podCIDRs"), ("service", "serviceCIDRs"))
        for kind, key in kinds:
            for text in link.get(key) or []:
                cidr = seen(normalize(text, f"Cluster {name} status"), global_map)
                clash = next((p for p, net in own if _overlaps(cidr, net)), None)
                if clash is not None:
                    overlaps.append(Overlap(name, kind, str(cidr), clash))
                    continue
                pool = pool_object(name, kind, str(cidr))
                if len(pool["metadata"]["name"]) <= MAX_NAME:
                    wanted[pool["metadata"]["name"]] = pool
    return wanted, overlaps


def _overlaps(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


def needs_apply(existing: Obj | None, want: Obj) -> bool:
    if existing is None:
        return True
    spec = existing.get("spec") or {}
    labels = existing["metadata"].get("labels") or {}
    return any(spec.get(k) != v for k, v in want["spec"].items()) or any(
        labels.get(k) != v for k, v in want["metadata"]["labels"].items()
    )


def stale(pools: Iterable[Obj], wanted: Mapping[str, Obj]) -> list[str]:
    """Our pools (name prefix and label) that are no longer wanted."""
    return sorted(
        p["metadata"]["name"]
        for p in pools
        if p["metadata"]["name"].startswith(OWN_POOL_PREFIX)
        and (p["metadata"].get("labels") or {}).get(names.LABEL_MANAGED_BY) == MANAGED_BY
        and p["metadata"]["name"] not in wanted
    )
