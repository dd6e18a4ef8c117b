"""The data behind a leaf node's kubelet read API, from the member nodes it stands for.

The member figures come from the member nodes' own kubelets through the member
apiserver's node proxy (``/api/v1/nodes/<node>/proxy/stats/summary`` and
``.../metrics/resource``), only for the member nodes the leaf stands for (its leaf model:
the whole cluster, a group, or one member node). A member node that does not answer
(a kwok node has no kubelet behind its address) is left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from kosmos.api import names
from kosmos.api.leafmodel import LeafModelError
from kosmos.api.objects import Obj, annotations_of, name_of
from kosmos.api.resources import PODS
from kosmos.clustertree import kubeletstats
from kosmos.clustertree.kubeletstats import Copies, HostPod
from kosmos.clustertree.podforge import host_uid, is_kosmos_pod
from kosmos.clustertree.tree import Tree
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clustertree.leafread")

MEMBER_TIMEOUT = 10.0


class LeafReader:
    """The data behind a leaf's ``/pods``, ``/stats/summary`` and ``/metrics/resource``."""

    def __init__(self, tree: Tree) -> None:
        self._tree = tree

    def leaf_of(self, port: int) -> str | None:
        return self._tree.leaf_ports.leaf_of(port)

    def pods(self, leaf: str) -> Obj:
        return kubeletstats.pod_list(self._tree.pods.store.by_index("node", leaf))

    def _members(self, leaf: str) -> tuple[Client, list[str], Copies] | None:
        """The member's client, the member nodes behind ``leaf``, this leaf's copies."""
        cluster = self._tree.cluster_of_node(leaf)
        if cluster is None:
            return None
        try:
            model = self._tree.leaf(cluster, leaf)
            if model is None:
                return None
            client = self._tree.manager.client(cluster)
            chosen = [name_of(n) for n in self._tree.member_nodes(cluster, model)]
            member_pods = self._tree.member(cluster, PODS).store.list()
        except (LeafModelError, ClusterNotFound):
            return None
        return client, chosen, self._copies(leaf, member_pods)

    def _copies(self, leaf: str, member_pods: Iterable[Obj]) -> Copies:
        copies: dict[tuple[str, str], HostPod] = {}
        for pod in member_pods:
            meta = pod.get("metadata", {})
            if (
                not is_kosmos_pod(pod, self._tree.options.owner)
                or annotations_of(pod).get(names.ANNOTATION_HOST_NODE) != leaf
            ):
                continue
            host = self._tree.pods.store.get(f"{meta.get('namespace')}/{meta.get('name')}")
            uid = host_uid(pod)
            if host is None or (uid and host.get("metadata", {}).get("uid") != uid):
                continue
            key = (str(meta.get("namespace")), str(meta.get("name")))
            copies[key] = HostPod(key[0], key[1], str(host["metadata"].get("uid", "")))
        return copies

    async def _gather(self, client: Client, nodes: list[str], path: str, text: bool) -> list[Any]:
        async def one(node: str) -> Any:
            proxy = f"/api/v1/nodes/{node}/proxy{path}"
            try:
                if text:
                    return await client.get_text(proxy, timeout=MEMBER_TIMEOUT)
                return await client.get_raw(proxy, timeout=MEMBER_TIMEOUT)
            except KubeError as exc:
                log.debug("member node %s: %s: %s", node, path, exc)
                return None

        answers = await asyncio.gather(*(one(n) for n in nodes))
        return [a for a in answers if a is not None]

    async def summary(self, leaf: str) -> Obj | None:
        found = self._members(leaf)
        if found is None:
            return None
        client, nodes, copies = found
        answers = await self._gather(client, nodes, "/stats/summary", text=False)
        return kubeletstats.summary(leaf, [a for a in answers if isinstance(a, dict)], copies)

    async def resource_metrics(self, leaf: str) -> str | None:
        found = self._members(leaf)
        if found is None:
            return None
        client, nodes, copies = found
        texts = await self._gather(client, nodes, "/metrics/resource", text=True)
        return kubeletstats.resource_metrics(texts, copies, failed=not texts)
