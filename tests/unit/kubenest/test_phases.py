"""VirtualCluster phases: every transition and every refusal, as pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.kubenest import phases

NS = "test-521-8"


def vc(
    phase: str = "",
    *,
    name: str = "test-521-8",
    created: str = "2026-01-01T00:00:00Z",
    kubeconfig: str = "",
    nodes: tuple[str, ...] = (),
    deleting: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    body: dict[str, Any] = {"metadata": meta, "spec": dict(spec), "status": {}}
    if kubeconfig:
        body["spec"]["kubeconfig"] = kubeconfig
    if nodes:
        body["spec"]["promoteResources"] = {"nodeInfos": [{"nodeName": n} for n in nodes]}
    if phase:
        body["status"]["phase"] = phase
    return body


def types(change: phases.Transition) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in change.conditions}


# -- naming and inputs ------------------------------------------------------------------------


def test_names_of_a_virtual_cluster() -> None:
    obj = vc(name="a")
    assert phases.vc_key(obj) == f"{NS}/a"
    assert phases.label_value(obj) == f"{NS}.a"
    assert (phases.cert_secret(obj), phases.admin_secret(obj)) == ("a-cert", "a-admin-config")


def test_certificate_addresses_gather_every_external_address_once() -> None:
    obj = vc(
        externalIP="192.168.0.1",
        externalIps=["10.0.0.1", "192.168.0.1"],
        kubeInKubeConfig={"tenantEntrypoint": {"externalIps": ["10.0.0.2"]}},
    )
    got = phases.certificate_addresses(obj, "127.0.0.1")
    assert got == ["127.0.0.1", "192.168.0.1", "10.0.0.1", "10.0.0.2"]


# -- one VirtualCluster per namespace ---------------------------------------------------------


def test_the_first_created_holds_the_namespace() -> None:
    first = vc(name="a", created="2026-01-01T00:00:00Z")
    second = vc(name="b", created="2026-01-01T00:00:01Z")
    assert phases.namespace_holder(second, [first, second]) == "a"
    assert phases.namespace_holder(first, [first, second]) is None


def test_a_tie_goes_to_the_name_and_deleting_or_failed_ones_hold_nothing() -> None:
    a, b = vc(name="a"), vc(name="b")
    assert phases.namespace_holder(b, [a, b]) == "a"
    assert phases.namespace_holder(b, [vc(name="a", deleting=True), b]) is None
    assert phases.namespace_holder(b, [vc(phases.FAILED, name="a"), b]) is None


def test_other_namespaces_do_not_count() -> None:
    other = vc(name="a")
    other["metadata"]["namespace"] = "elsewhere"
    assert phases.namespace_holder(vc(name="b"), [other]) is None


# -- the control-plane reconciler -------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "holder", "action"),
    [
        (vc(deleting=True), "a", "teardown"),
        (vc(), "a", "refuse"),
        (vc(phases.PREPARING), "a", "refuse"),
        (vc(phases.COMPLETED, kubeconfig="eA=="), "a", "build"),  # built before: keeps going
        (vc(), None, "start"),
        (vc(phases.FAILED), None, "start"),  # the holder went: try again
        (vc(phases.PREPARING), None, "build"),
        (vc(phases.PENDING), None, "build"),
        (vc(phases.COMPLETED, kubeconfig="eA=="), None, "build"),
    ],
)
def test_init_action(obj: dict[str, Any], holder: str | None, action: str) -> None:
    assert phases.init_action(obj, holder) == action


def test_refused_fails_naming_the_holder() -> None:
    change = phases.refused("a")
    assert change.phase == phases.FAILED
    assert types(change)[phases.CONTROL_PLANE_READY] == ("False", phases.NAMESPACE_TAKEN)
    assert change.event is not None and "'a'" in change.event[2]
    assert "one per namespace" in change.status["reason"]


def test_started_is_preparing() -> None:
    change = phases.started()
    assert change.phase == phases.PREPARING
    assert types(change)[phases.CONTROL_PLANE_READY] == ("False", phases.STARTING)


def test_a_provider_error_before_the_first_build_is_pending_with_the_cause() -> None:
    change = phases.control_plane(vc(phases.PREPARING), error="etcd binary missing")
    assert change.phase == phases.PENDING
    assert types(change)[phases.CONTROL_PLANE_READY] == ("False", phases.PROVIDER_ERROR)
    assert "etcd binary missing" in change.conditions[0]["message"]
    assert change.event is not None and change.event[0] == "Warning"


def test_a_provider_error_after_the_build_keeps_the_phase() -> None:
    change = phases.control_plane(vc(phases.COMPLETED, kubeconfig="eA=="), error="boom")
    assert change.phase == ""
    assert types(change)[phases.CONTROL_PLANE_READY] == ("False", phases.PROVIDER_ERROR)


def test_starting_reports_what_is_pending_and_leaves_pending() -> None:
    change = phases.control_plane(vc(phases.PREPARING), message="apiserver not ready")
    assert change.phase == ""
    assert change.conditions[0]["message"] == "apiserver not ready"
    assert phases.control_plane(vc(phases.PENDING), message="x").phase == phases.PREPARING


def test_ready_the_first_time_is_initialized() -> None:
    change = phases.control_plane(vc(phases.PREPARING), ready=True)
    assert change.phase == phases.INITIALIZED
    assert types(change)[phases.CONTROL_PLANE_READY] == ("True", phases.RUNNING)
    again = phases.control_plane(vc(phases.COMPLETED, kubeconfig="eA=="), ready=True)
    assert again.phase == "" and again.event is None


@pytest.mark.parametrize(
    ("obj", "occupied", "action"),
    [
        (vc(phases.COMPLETED, deleting=True, nodes=("n1",)), [], "mark"),
        (vc(phases.DELETING, deleting=True, nodes=("n1",)), [], "wait"),
        (vc(phases.DELETING, deleting=True), ["n1"], "wait"),
        (vc(phases.DELETING, deleting=True), [], "destroy"),
    ],
)
def test_teardown_returns_nodes_before_the_control_plane(
    obj: dict[str, Any], occupied: list[str], action: str
) -> None:
    assert phases.teardown_action(obj, occupied) == action


# -- the node reconciler ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "action"),
    [
        (vc(phases.PREPARING), "idle"),  # no control plane yet
        (vc(phases.FAILED, kubeconfig="eA=="), "idle"),
        (vc(phases.INITIALIZED, kubeconfig="eA=="), "assign"),
        (vc(phases.COMPLETED, kubeconfig="eA=="), "assign"),
        (vc(phases.PENDING, kubeconfig="eA=="), "assign"),
        (vc(phases.COMPLETED, kubeconfig="eA==", deleting=True), "idle"),  # until Deleting
        (vc(phases.DELETING, kubeconfig="eA==", deleting=True), "return"),
    ],
)
def test_node_action(obj: dict[str, Any], action: str) -> None:
    assert phases.node_action(obj) == action


def test_not_enough_nodes_is_pending_with_the_pools_words() -> None:
    change = phases.short("policy 0 wants 2 nodes matching {}: 1 matches, 0 free")
    assert change.phase == phases.PENDING
    assert types(change)[phases.NODES_READY] == ("False", phases.NOT_ENOUGH_NODES)
    assert "1 matches" in change.conditions[0]["message"]


def test_real_nodes_refused_are_named_with_the_reason() -> None:
    change = phases.real_nodes(["worker-1"], "its apiserver is at a loopback address")
    assert change.phase == phases.PENDING
    assert types(change)[phases.NODES_READY] == ("False", phases.REAL_NODE)
    assert "worker-1" in change.conditions[0]["message"]
    assert "loopback" in change.conditions[0]["message"]


def test_nodes_not_ready_keep_initialized_and_say_which() -> None:
    change = phases.nodes(vc(phases.INITIALIZED), ["n1", "n2"], ["n2"], changed=True)
    assert change.phase == ""
    assert types(change)[phases.NODES_READY] == ("False", phases.NODES_NOT_READY)
    assert "n2" in change.conditions[0]["message"]


def test_a_completed_cluster_whose_nodes_change_is_updating() -> None:
    change = phases.nodes(vc(phases.COMPLETED), ["n1", "n2"], ["n2"], changed=True)
    assert change.phase == phases.UPDATING
    assert change.event is not None and change.event[1] == phases.UPDATING


def test_every_node_ready_completes_once() -> None:
    change = phases.nodes(vc(phases.UPDATING), ["n1"], [], changed=False)
    assert change.phase == phases.COMPLETED
    assert types(change)[phases.NODES_READY] == ("True", phases.ALL_NODES_READY)
    again = phases.nodes(vc(phases.COMPLETED), ["n1"], [], changed=False)
    assert again.phase == "" and again.event is None


def test_ready_needs_both_conditions() -> None:
    plane = phases.condition(phases.CONTROL_PLANE_READY, True, phases.RUNNING, "ok")
    nodes = phases.condition(phases.NODES_READY, False, phases.NOT_ENOUGH_NODES, "short")
    assert phases.ready_condition([plane])["reason"] == "NodesReadyUnknown"
    assert phases.ready_condition([plane, nodes])["reason"] == phases.NOT_ENOUGH_NODES
    nodes["status"] = "True"
    assert phases.ready_condition([plane, nodes])["status"] == "True"


def test_a_completed_cluster_with_a_node_gone_not_ready_stays_completed() -> None:
    change = phases.nodes(vc(phases.COMPLETED), ["n1"], ["n1"], changed=False)
    assert change.phase == ""
    assert types(change)[phases.NODES_READY] == ("False", phases.NODES_NOT_READY)


def test_nodes_found_for_a_pending_cluster_are_an_update() -> None:
    change = phases.nodes(vc(phases.PENDING), ["n1"], ["n1"], changed=True)
    assert change.phase == phases.UPDATING
