"""Link state per node: read from the NodeConfig cache when /metrics is scraped."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api import link
from kosmos.clusterlink import metrics
from kosmos.kube.metrics import REGISTRY


def nodeconfig(name: str, generation: int, applied: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "generation": generation,
            "labels": {link.LABEL_CLUSTER: "c1"},
        },
        "status": {"conditions": [{"type": "Applied", **applied}] if applied else []},
    }


def state_of(node: str) -> str:
    values = {
        state: REGISTRY.get_sample_value(
            metrics.NODE_LINK_STATE, {"cluster": "c1", "node": node, "state": state}
        )
        for state in metrics.LINK_STATES
    }
    (current,) = [state for state, value in values.items() if value == 1]
    assert sorted(v for v in values.values() if v is not None) == [0, 0, 1]
    return current


def test_each_node_has_one_current_state(monkeypatch: pytest.MonkeyPatch) -> None:
    configs = [
        nodeconfig("n1", 2, {"status": "True", "observedGeneration": 2}),
        nodeconfig("n2", 2, {"status": "False", "observedGeneration": 2}),
        nodeconfig("n3", 3, {"status": "True", "observedGeneration": 2}),  # not seen yet
        nodeconfig("n4", 1, None),
    ]
    monkeypatch.setattr(metrics.node_link_states, "source", lambda: configs)
    assert [state_of(n) for n in ("n1", "n2", "n3", "n4")] == [
        "in_sync",
        "failed",
        "pending",
        "pending",
    ]
    configs.pop()  # the node left: its series go with it
    labels = {"cluster": "c1", "node": "n4", "state": "pending"}
    assert REGISTRY.get_sample_value(metrics.NODE_LINK_STATE, labels) is None
