"""Every leaf node's own kubelet port: the port a kubelet request came in on names the leaf.

All leaf nodes share the cluster-manager's address, and the apiserver's node proxy sends a
leaf's ``/pods`` or ``/stats/summary`` without the node's name; so every leaf node gets a
kubelet port of its own (``status.daemonEndpoints.kubeletEndpoint.Port``): the first free
one from ``--listen-port`` on, kept for the node's life (a restarted manager takes the
ports back from the nodes). ``kubectl logs/exec/port-forward`` name the pod, so they are
served on every port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kosmos.api.objects import name_of
from kosmos.kube.store import Store


def allocate_port(claimed: dict[str, int], name: str, current: int | None, base: int) -> int:
    """The kubelet port of leaf ``name``: the one it has if no other leaf claimed it,
    otherwise the lowest port from ``base`` that no leaf uses. Records the claim."""
    taken = {port for leaf, port in claimed.items() if leaf != name}
    if current is not None and current >= base and current not in taken:
        port = current
    else:
        port = base
        while port in taken:
            port += 1
    claimed[name] = port
    return port


class LeafPorts:
    """The port of every leaf node, and the hook that opens a listener for a new one."""

    def __init__(self, leaf_nodes: Store, base: int) -> None:
        self._nodes = leaf_nodes
        self._base = base
        self._claimed: dict[str, int] = {}
        self._restored = False
        #: set by the kubelet endpoint: open a listener on a newly claimed port
        self.on_port: Callable[[int], Awaitable[None]] | None = None

    def _current(self, name: str) -> int | None:
        node = self._nodes.get(name)
        endpoint = ((node or {}).get("status") or {}).get("daemonEndpoints") or {}
        port = (endpoint.get("kubeletEndpoint") or {}).get("Port")
        return int(port) if port else None

    async def port_of(self, name: str) -> int:
        """Claim (or keep) the leaf's port and make sure it is served."""
        if not self._restored and name not in self._claimed:
            # claims from before a restart, once: per new leaf it made creating N leaves O(N²)
            for node in self._nodes.list():
                other = name_of(node)
                if other not in self._claimed and (port := self._current(other)):
                    allocate_port(self._claimed, other, port, self._base)
            self._restored = len(self._nodes) > 0
        port = self._claimed.get(name)  # claims are unique: a claimed leaf keeps its port
        if port is None:  # (allocating scans every claim: not once per leaf recomputed)
            port = allocate_port(self._claimed, name, self._current(name), self._base)
        if self.on_port is not None:
            await self.on_port(port)
        return port

    def forget(self, name: str) -> None:
        self._claimed.pop(name, None)

    def leaf_of(self, port: int) -> str | None:
        for name, claimed in self._claimed.items():
            if claimed == port and self._nodes.get(name) is not None:
                return name
        return None
