"""A leaf's kubelet port: claimed once, then a lookup on every recompute of the leaf."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.clustertree import leafports
from kosmos.clustertree.leafports import LeafPorts
from kosmos.kube.store import Store


def leaf(name: str, port: int | None = None) -> dict[str, Any]:
    status = {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}} if port else {}
    return {"metadata": {"name": name}, "status": status}


async def test_ports_are_kept_and_claimed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    store.upsert(leaf("a", 10251))  # from before a restart
    store.upsert(leaf("b"))
    ports = LeafPorts(store, 10250)
    calls = [0]
    allocate = leafports.allocate_port

    def counting(*args: Any) -> int:
        calls[0] += 1
        return allocate(*args)

    monkeypatch.setattr(leafports, "allocate_port", counting)
    assert await ports.port_of("b") == 10250
    assert await ports.port_of("a") == 10251  # its port taken back
    claimed = calls[0]
    for _ in range(10):  # recomputing a leaf looks its port up, never scans the claims
        assert await ports.port_of("a") == 10251
        assert await ports.port_of("b") == 10250
    assert calls[0] == claimed
    assert await ports.port_of("c") == 10252
    assert ports.leaf_of(10251) == "a"
