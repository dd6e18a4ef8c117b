"""The members' leaf model for a run: aggregated (one leaf per member) or one-to-one.

A Cluster without ``leafModels`` has one whole-cluster leaf node; one-to-one declares a leaf
per member node (``kosmos.ops.membership.leaf_models_one_to_one``, what ``kosmosctl join
--leaf-model one-to-one`` writes), so a member with 1000 kwok nodes shows 1000 leaf nodes in
the host and every pod is pinned to its member node (the member's scheduler is bypassed).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kosmos.api import names
from kosmos.api.resources import CLUSTERS, NODES
from kosmos.api.schema import to_json
from kosmos.kube.client import Client
from kosmos.local.topology import KWOK_NODE_SELECTOR
from kosmos.ops.membership import leaf_models_one_to_one

WHOLE, ONE_TO_ONE = "whole", "one-to-one"


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def member_node_names(member: Client) -> list[str]:
    nodes = await member.list(NODES, label_selector=KWOK_NODE_SELECTOR)
    return sorted(n["metadata"]["name"] for n in nodes.items)


async def set_leaf_model(host: Client, member: str, model: str, nodes: list[str]) -> int:
    """Give Cluster ``member`` the model; returns how many leaf nodes it must have."""
    models = to_json(leaf_models_one_to_one(nodes)) if model == ONE_TO_ONE else None
    cluster = await host.get(CLUSTERS, member)
    options = cluster["spec"].get("clusterTreeOptions") or {}
    if options.get("leafModels") != models:
        await host.patch(CLUSTERS, member, {"spec": {"clusterTreeOptions": {"leafModels": models}}})
    return len(nodes) if model == ONE_TO_ONE else 1


async def wait_leaves(host: Client, want: dict[str, int], timeout: float = 900) -> float:
    """Wait until each member has exactly ``want[member]`` Ready leaf nodes (and no stale
    ones from the other model); prints progress; returns the seconds waited."""
    started = time.monotonic()
    last = 0.0
    while True:
        nodes = (await host.list(NODES, label_selector=f"{names.LABEL_NODE}=true")).items
        have: dict[str, tuple[int, int]] = {}
        for node in nodes:
            owner = node["metadata"].get("labels", {}).get(names.LABEL_OWNER_CLUSTER, "")
            total, ready = have.get(owner, (0, 0))
            have[owner] = (total + 1, ready + _ready(node))
        if all(have.get(m) == (n, n) for m, n in want.items()):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise SystemExit(f"leaf nodes not as wanted after {timeout:.0f}s: {have} vs {want}")
        if elapsed - last >= 15:
            last = elapsed
            print(f"  leaf nodes (total, Ready) per member: {have}, want {want}", flush=True)
        await asyncio.sleep(3)
