"""Draining a real node before it changes clusters, as ``kubectl drain`` would.

Its pods are evicted through the Eviction API, so PodDisruptionBudgets hold (a refused
eviction is tried again on the next pass). DaemonSet pods stay (their controller would put
them back; the node's kubelet drops them once it serves another cluster), mirror pods stay
(the kubelet owns them), finished pods do not count. The call does not wait: it returns the
pods still on the node, and the caller comes back until none is left.
"""

from __future__ import annotations

import contextlib

from kosmos.api.objects import (
    Obj,
    annotations_of,
    is_deleting,
    name_of,
    namespace_of,
    pod_terminal,
)
from kosmos.api.resources import NODES, PODS
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound, TooManyRequests

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def stays(pod: Obj) -> bool:
    """A pod a drain leaves where it is: DaemonSet-owned, a mirror pod, or finished."""
    if MIRROR_ANNOTATION in annotations_of(pod):
        return True
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    if any(ref.get("kind") == "DaemonSet" for ref in owners):
        return True
    return pod_terminal(pod)


def eviction(pod: Obj) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name_of(pod), "namespace": namespace_of(pod)},
    }


async def cordon(client: Client, node: str, *, unschedulable: bool = True) -> None:
    with contextlib.suppress(NotFound):
        await client.patch(NODES, node, {"spec": {"unschedulable": unschedulable or None}})


async def drain(client: Client, node: str) -> list[str]:
    """Evict what must leave ``node`` (cordoned first); ``namespace/name`` of those left."""
    await cordon(client, node)
    pods = await client.list(PODS, field_selector=f"spec.nodeName={node}")
    left = []
    for pod in pods.items:
        if stays(pod):
            continue
        left.append(f"{namespace_of(pod)}/{name_of(pod)}")
        if is_deleting(pod):
            continue  # leaving already
        path = PODS.path(namespace_of(pod), name_of(pod), "eviction")
        with contextlib.suppress(NotFound, TooManyRequests):  # gone; a budget says not yet
            await client.request("POST", path, what=f"evict pod {left[-1]}", body=eviction(pod))
    return left
