"""Helpers of the ClusterLink integration tests: reading Clusters and ClusterNodes, CRDs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kosmos.api.objects import Obj, condition_of
from kosmos.clusterlink import discovery
from tests.fixtures.link import CNI, LinkEnv
from tests.support import get, wait_for


def link_status(link: LinkEnv, cluster: str) -> Obj:
    status: Obj = link.cluster(cluster).get("status", {}).get("clusterLinkStatus", {})
    return status


def discovered(link: LinkEnv, cluster: str) -> Obj:
    return condition_of(link.cluster(cluster), "CIDRsDiscovered") or {}


def node_pod_cidrs(link: LinkEnv, member: str) -> list[str]:
    """The aggregate of the member's live nodes' podCIDRs (what discovery should find)."""
    nodes = get(link.member(member), "nodes")["items"]
    return discovery.nodes_pod_cidrs(nodes)


def cluster_nodes(link: LinkEnv, cluster: str) -> dict[str, Obj]:
    items = get(link.host, "clusternodes", "-l", f"kosmos.io/cluster={cluster}")
    return {cn["metadata"]["name"]: cn for cn in items["items"]}


def cluster_node(link: LinkEnv, name: str) -> Obj | None:
    if not link.host.ok("get", "clusternode", name):
        return None
    result: Obj = get(link.host, "clusternode", name)
    return result


def ready(obj: Obj | None) -> str | None:
    return (condition_of(obj or {}, "Ready") or {}).get("status")


def ippools(link: LinkEnv, member: str) -> dict[str, Obj]:
    items = get(link.member(member), "ippools.crd.projectcalico.org")["items"]
    return {p["metadata"]["name"]: p for p in items}


@contextmanager
def link_options(link: LinkEnv, cluster: str, **options: Any) -> Iterator[None]:
    """Merge ``options`` into the Cluster's clusterLinkOptions for the block, then undo."""
    link.patch_link(cluster, options)
    try:
        yield
    finally:
        undo = dict.fromkeys(options)
        if "cni" in options:
            undo["cni"] = CNI
        link.patch_link(cluster, undo)


def wait_status(
    link: LinkEnv, cluster: str, key: str, want: list[str], timeout: float = 20
) -> None:
    wait_for(
        lambda: link_status(link, cluster).get(key) == want,
        timeout,
        lambda: f"{cluster} status {key} == {want} (condition: {discovered(link, cluster)})",
    )


def wait_reason(link: LinkEnv, cluster: str, reason: str, timeout: float = 20) -> Obj:
    condition: Obj = wait_for(
        lambda: (c := discovered(link, cluster)).get("reason") == reason and c,
        timeout,
        f"{cluster} CIDRsDiscovered reason {reason}",
    )
    return condition


def crd(plural: str, kind: str) -> Obj:
    """A minimal Calico CRD (crd.projectcalico.org/v1, cluster-scoped, schemaless spec)."""
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.crd.projectcalico.org"},
        "spec": {
            "group": "crd.projectcalico.org",
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


CALICO_CRDS = (crd("ippools", "IPPool"), crd("blockaffinities", "BlockAffinity"))


def calico(kind: str, name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
