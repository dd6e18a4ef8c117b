"""Linked Clusters join and leave the network-manager: ClusterLink's part of the member loop.

``kosmos.kube.members.MemberRegistry`` does the common work for every Cluster with
``clusterLinkOptions.enable``: it loads the member's kubeconfig (Secret reference or
inline), registers the member with the manager — whose cluster hook creates its caches
(``watches.wire_member``) — and holds the ``kosmos.io/network-manager`` finalizer. The root
Cluster is the host itself: with link enabled the host's own client serves as its member,
no kubeconfig needed.

What is ClusterLink's own is said here, in ``LinkMembers``: a kubeconfig that cannot be
loaded is reported by the CIDR controller in the Cluster's status; when the Cluster is
deleted (``kosmosctl unjoin``) or its link disabled, what ClusterLink made for it goes —
its ClusterNodes and NodeConfigs in the host and the IPPools in the member — before the
finalizer does.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import names
from kosmos.api.leafmodel import is_root_cluster
from kosmos.api.objects import Obj, name_of
from kosmos.api.resources import CLUSTERNODES, NODECONFIGS
from kosmos.clusterlink import ippools
from kosmos.clusterlink.link import Link, link_enabled
from kosmos.clusterlink.watches import wire_member
from kosmos.kube.component import HOST
from kosmos.kube.controller import Result
from kosmos.kube.errors import KubeconfigError, NotFound
from kosmos.kube.members import MemberHooks, MemberPolicy, MemberRegistry

log = logging.getLogger("kosmos.clusterlink.members")


def registry(link: Link) -> MemberRegistry:
    """The member reconciler, keyed by Cluster name (``Request(HOST, "", name)``)."""
    rate = (link.options.member_qps, link.options.member_burst)
    policy = MemberPolicy(link_enabled, names.FINALIZER_NETWORK_MANAGER, "host", *rate)
    hooks = LinkMembers(link)
    return MemberRegistry(link.manager, HOST, link.clusters, policy, hooks, secrets=link.secrets)


class LinkMembers(MemberHooks):
    """What ClusterLink does around a member's registration."""

    def __init__(self, link: Link) -> None:
        self.link = link

    async def joined(self, cluster: Obj) -> Result | None:
        name = name_of(cluster)
        if is_root_cluster(cluster) and name == HOST:
            wire_member(self.link, HOST)  # the host's own client and caches
        if self.link.member_errors.pop(name, None) is not None:
            self.link.enqueue("cidrs", name)
        return None

    async def failed(self, cluster: Obj, error: KubeconfigError) -> Result | None:
        """The CIDR controller puts the reason in the Cluster's status; a change of the
        Cluster or its (watched) Secret brings the registry back."""
        name = name_of(cluster)
        self.link.member_errors[name] = str(error)
        self.link.enqueue("cidrs", name)
        return None

    async def leaving(self, name: str) -> None:
        """Delete the member's IPPools, its ClusterNodes, then its NodeConfigs (agents then
        tear down).

        Read from the apiserver, not the cache: the finalizer goes right after, so nothing
        created a moment ago may be missed.
        """
        if name in self.link.manager.cluster_names:
            await ippools.delete_all(self.link.manager.client(name))
        host = self.link.manager.client(HOST)
        selector = f"{names.LABEL_CLUSTER}={name}"
        for resource in (CLUSTERNODES, NODECONFIGS):
            with contextlib.suppress(NotFound):  # NodeConfigs: CRD may not be installed
                for obj in (await host.list(resource, label_selector=selector)).items:
                    with contextlib.suppress(NotFound):
                        await host.delete(resource, name_of(obj))
        log.info("member %s: ClusterNodes, NodeConfigs and IPPools removed", name)

    def forgotten(self, name: str) -> None:
        self.link.member_errors.pop(name, None)
