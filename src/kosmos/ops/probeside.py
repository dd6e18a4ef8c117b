"""The endpoint prober's Deployment (``kosmos eps-probe``) in every cluster of the clusterset.

Reachability is a property of the importing cluster's pod network, so the prober runs as a
pod there: in the host (``install``, with ClusterTree) and in each member joined with
ClusterTree (``join``), talking to its own cluster's apiserver through its ServiceAccount.
It only reads ServiceImports and patches their annotation (``rbac.PROBE_RULES``). The
objects are built in :mod:`kosmos.ops.manifests`, which install also uses for the host.
Everything is server-side applied (re-running converges) and removed by unjoin/uninstall.
"""

from __future__ import annotations

import contextlib
import copy

from kosmos.api import crds, names
from kosmos.api import manifests as build
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    NAMESPACES,
    SERVICEACCOUNTS,
)
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.ops import apply as applier
from kosmos.ops import linkside
from kosmos.ops.manifests import (
    FIELD_MANAGER,
    PART_OF,
    PROBE,
    labels,
    probe_objects,
    with_log_format,
)
from kosmos.ops.progress import Progress

CRD_TIMEOUT = 60.0


def mcs_crds() -> list[Obj]:
    """The MCS API's CRDs (ServiceExport, ServiceImport): a member of the clusterset serves
    them too, since its imports (and its own exports) live there."""
    out = []
    for crd in crds.crd_manifests():
        if crd["spec"]["group"] == names.MCS_GROUP:
            body = copy.deepcopy(crd)
            body["metadata"]["labels"] = {**body["metadata"].get("labels", {}), **labels(PART_OF)}
            out.append(body)
    return out


async def prepare_member(member: Client, namespace: str) -> None:
    """What every Kosmos pod of a member needs first: the MCS CRDs (its imports live there)
    and the namespace (one found there stays unlabelled). The CRDs stay at unjoin: they may
    hold the member's own objects."""
    applied = mcs_crds()
    for crd in applied:
        await member.apply(CUSTOMRESOURCEDEFINITIONS, crd, field_manager=FIELD_MANAGER, force=True)
    await applier.wait_established(member, [c["metadata"]["name"] for c in applied], CRD_TIMEOUT)
    if await applier.get_or_none(member, NAMESPACES, namespace) is None:
        body = build.namespace(namespace, labels(PART_OF))
        await member.apply(NAMESPACES, body, field_manager=FIELD_MANAGER, force=True)


async def set_up(
    member: Client,
    cluster: str,
    *,
    namespace: str,
    image: str,
    placement: Obj,
    log_format: str,
    progress: Progress,
) -> None:
    """The prober in a member prepared by ``prepare_member`` (idempotent; its ``--log-format``
    is join's, as install gives the host's prober install's)."""
    for resource, body in probe_objects(namespace, image, placement):
        logged = with_log_format(body, image, log_format)
        await member.apply(resource, logged, field_manager=FIELD_MANAGER, force=True)
    progress(f"{cluster}: endpoint prober (Deployment {namespace}/{PROBE}) set up in the member")


async def tear_down(member: Client, cluster: str, namespace: str, progress: Progress) -> None:
    """Remove what ``set_up`` made; an unreachable member is reported, not fatal."""
    try:
        for resource, ns in (
            (DEPLOYMENTS, namespace),
            (CLUSTERROLEBINDINGS, None),
            (CLUSTERROLES, None),
            (SERVICEACCOUNTS, namespace),
        ):
            with contextlib.suppress(NotFound):
                await member.delete(resource, PROBE, ns, propagation="Background")
    except KubeError as exc:
        progress(f"{cluster}: could not remove the endpoint prober ({exc}); delete {PROBE} there")
        return
    progress(f"{cluster}: endpoint prober removed from the member")


async def tear_down_member(
    host: Client, member: Client | None, cluster: Obj, progress: Progress
) -> None:
    """Unjoin's member side: the prober (with ClusterTree), then ClusterLink's agents (when
    linked); ``member`` is a client from the Cluster's kubeconfig, None if unreadable."""
    spec = cluster.get("spec", {})
    name = cluster["metadata"]["name"]
    if member is not None and (spec.get("clusterTreeOptions") or {}).get("enable", True):
        namespace = spec.get("namespace") or names.SYSTEM_NAMESPACE
        await tear_down(member, name, namespace, progress)
    linked = (spec.get("clusterLinkOptions") or {}).get("enable", False)
    await linkside.tear_down(host, member if linked else None, cluster, progress)
