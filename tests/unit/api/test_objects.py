"""The object vocabulary: conditions follow apimachinery's SetStatusCondition rules."""

from __future__ import annotations

import pytest

from kosmos.api import resources
from kosmos.api.cluster import Cluster
from kosmos.api.kubenest import GlobalNode, VirtualCluster
from kosmos.api.mcs import ServiceExport, ServiceImport
from kosmos.api.migration import PromotePolicy
from kosmos.api.network import ClusterNode, NodeConfig
from kosmos.api.objects import (
    key_of,
    node_ready,
    pod_terminal,
    set_condition,
    with_condition,
)
from kosmos.api.policy import (
    ClusterDistributionPolicy,
    ClusterPodConvertPolicy,
    DistributionPolicy,
    PodConvertPolicy,
)
from kosmos.api.schema import kind_info

READY = {"type": "Ready", "status": "True", "reason": "Up", "message": "fine"}


def test_new_condition_is_appended_with_the_given_time() -> None:
    conditions: list[dict[str, object]] = []
    assert set_condition(conditions, READY, at="2026-01-01T00:00:00Z")
    assert conditions == [{**READY, "lastTransitionTime": "2026-01-01T00:00:00Z"}]


def test_same_status_keeps_the_transition_time_but_updates_reason_and_message() -> None:
    conditions = [{**READY, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    changed = set_condition(
        conditions, {**READY, "message": "still fine"}, at="2026-02-02T00:00:00Z"
    )
    assert changed
    assert conditions[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert conditions[0]["message"] == "still fine"


def test_flipped_status_takes_a_new_transition_time() -> None:
    conditions = [{**READY, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    down = {"type": "Ready", "status": "False", "reason": "Down", "message": "gone"}
    assert set_condition(conditions, down, at="2026-02-02T00:00:00Z")
    assert conditions[0] == {**down, "lastTransitionTime": "2026-02-02T00:00:00Z"}


def test_unchanged_condition_reports_no_change_and_with_condition_copies() -> None:
    original = [{**READY, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    assert not set_condition([dict(original[0])], READY)
    updated = with_condition(original, {**READY, "status": "False"}, at="2026-03-03T00:00:00Z")
    assert original[0]["status"] == "True"
    assert updated[0]["status"] == "False"


@pytest.mark.parametrize(
    ("conditions", "ready"),
    [
        ([{"type": "Ready", "status": "True"}], True),
        ([{"type": "Ready", "status": "Unknown"}], False),
        ([{"type": "MemoryPressure", "status": "True"}], False),
        ([], False),
    ],
)
def test_node_ready(conditions: list[dict[str, str]], ready: bool) -> None:
    assert node_ready({"status": {"conditions": conditions}}) is ready


def test_pod_terminal_and_keys() -> None:
    assert pod_terminal({"status": {"phase": "Succeeded"}})
    assert not pod_terminal({"status": {"phase": "Running"}})
    assert not pod_terminal({})
    assert key_of({"metadata": {"name": "a", "namespace": "ns"}}) == "ns/a"
    assert key_of({"metadata": {"name": "n1"}}) == "n1"


@pytest.mark.parametrize(
    ("resource", "model"),
    [
        (resources.CLUSTERS, Cluster),
        (resources.CLUSTERNODES, ClusterNode),
        (resources.NODECONFIGS, NodeConfig),
        (resources.POD_CONVERT_POLICIES, PodConvertPolicy),
        (resources.CLUSTER_POD_CONVERT_POLICIES, ClusterPodConvertPolicy),
        (resources.DISTRIBUTION_POLICIES, DistributionPolicy),
        (resources.CLUSTER_DISTRIBUTION_POLICIES, ClusterDistributionPolicy),
        (resources.PROMOTE_POLICIES, PromotePolicy),
        (resources.VIRTUAL_CLUSTERS, VirtualCluster),
        (resources.GLOBAL_NODES, GlobalNode),
        (resources.SERVICE_EXPORTS, ServiceExport),
        (resources.SERVICE_IMPORTS, ServiceImport),
    ],
)
def test_resource_constants_match_the_generated_crds(resource: object, model: type) -> None:
    assert resource == kind_info(model).resource
