"""The GlobalNode pool: eligibility, the GlobalNode of a host Node, and node assignment."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api import names
from kosmos.kubenest import pool

VC = "test-521-8/vc"


def node(name: str, labels: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "status": status}


def gnode(name: str, state: str = "free", holder: str = "", **labels: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name}, "spec": {"state": state, "labels": labels}}
    if holder:
        obj["status"] = {"virtualCluster": holder}
    return obj


def policy(count: int, **match: str) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": match} if match else None, "nodeCount": count}


# -- eligibility and the wanted GlobalNode ------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, True),
        ({names.LABEL_NODE: "true"}, False),
        ({names.LABEL_EXCLUDE: "true"}, False),
        ({names.LABEL_EXCLUDE: "false"}, True),
        ({"node-role.kubernetes.io/control-plane": ""}, True),
    ],
)
def test_eligible(labels: dict[str, str], expected: bool) -> None:
    assert pool.eligible(node("n1", labels)) is expected


def test_global_node_of_a_worker_is_free_with_the_nodes_labels_and_internal_ip() -> None:
    addresses = [
        {"type": "Hostname", "address": "n1"},
        {"type": "ExternalIP", "address": "203.0.113.9"},
        {"type": "InternalIP", "address": "10.0.0.5"},
    ]
    wanted = pool.global_node(node("n1", {"zone": "a"}, addresses=addresses), None)
    assert wanted == {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "GlobalNode",
        "metadata": {"name": "n1"},
        "spec": {"state": "free", "labels": {"zone": "a"}, "nodeIP": "10.0.0.5"},
    }


def test_global_node_falls_back_to_the_first_ip_and_omits_a_hostname() -> None:
    ext = node("n1", addresses=[{"type": "Hostname", "address": "n1"}, {"address": "192.0.2.1"}])
    assert pool.global_node(ext, None)["spec"]["nodeIP"] == "192.0.2.1"  # type: ignore[index]
    bare = pool.global_node(node("n2", addresses=[{"type": "Hostname", "address": "n2"}]), None)
    assert bare is not None
    assert "nodeIP" not in bare["spec"]


@pytest.mark.parametrize("role", pool.CONTROL_PLANE_LABELS)
def test_control_plane_nodes_are_reserved(role: str) -> None:
    wanted = pool.global_node(node("cp", {role: ""}), None)
    assert wanted is not None
    assert wanted["spec"]["state"] == "reserved"


def test_an_existing_state_is_kept() -> None:
    wanted = pool.global_node(node("n1"), gnode("n1", "occupied", VC))
    assert wanted is not None
    assert wanted["spec"]["state"] == "occupied"
    cp = pool.global_node(node("cp", {"node-role.kubernetes.io/master": ""}), gnode("cp"))
    assert cp is not None
    assert cp["spec"]["state"] == "free"  # an operator freed it on purpose


def test_leaf_and_excluded_nodes_get_no_global_node() -> None:
    assert pool.global_node(node("leaf", {names.LABEL_NODE: "true"}), None) is None
    assert pool.global_node(node("x", {names.LABEL_EXCLUDE: "true"}), gnode("x")) is None


def test_a_bad_state_counts_as_none() -> None:
    assert pool.state_of({"spec": {"state": "weird"}}) == ""
    assert pool.state_of({}) == ""
    wanted = pool.global_node(node("n1"), {"metadata": {"name": "n1"}, "spec": {"state": 3}})
    assert wanted is not None
    assert wanted["spec"]["state"] == "free"


# -- assign ---------------------------------------------------------------------------------------


def test_free_nodes_are_taken_in_name_order() -> None:
    nodes = [gnode("n3"), gnode("n1"), gnode("n2")]
    result = pool.assign(VC, [policy(2)], nodes, [])
    assert result == pool.Assignment(nodes=("n1", "n2"), take=("n1", "n2"))


def test_nodes_already_held_are_kept_and_the_rest_added() -> None:
    nodes = [gnode("n1"), gnode("n2", "occupied", VC), gnode("n3")]
    result = pool.assign(VC, [policy(2)], nodes, ["n2"])
    assert result == pool.Assignment(nodes=("n2", "n1"), take=("n1",))


def test_a_held_node_is_found_by_its_status_even_if_not_recorded() -> None:
    nodes = [gnode("n1"), gnode("n2", "occupied", VC)]
    assert pool.assign(VC, [policy(1)], nodes, []).nodes == ("n2",)


def test_shrinking_gives_back_the_tail() -> None:
    nodes = [gnode(n, "occupied", VC) for n in ("n1", "n2", "n3")]
    result = pool.assign(VC, [policy(1)], nodes, ["n2", "n1", "n3"])
    assert result == pool.Assignment(nodes=("n2",), give_back=("n1", "n3"))


def test_no_policies_gives_everything_back() -> None:
    nodes = [gnode("n1", "occupied", VC), gnode("n2")]
    assert pool.assign(VC, [], nodes, ["n1"]) == pool.Assignment(give_back=("n1",))


def test_a_held_node_no_longer_matching_is_replaced() -> None:
    nodes = [gnode("n1", "occupied", VC, zone="a"), gnode("n2", zone="b")]
    result = pool.assign(VC, [policy(1, zone="b")], nodes, ["n1"])
    assert result == pool.Assignment(nodes=("n2",), take=("n2",), give_back=("n1",))


def test_a_recorded_node_that_is_free_again_is_taken_anew() -> None:
    result = pool.assign(VC, [policy(1)], [gnode("n1")], ["n1"])
    assert result == pool.Assignment(nodes=("n1",), take=("n1",))


def test_a_recorded_node_someone_else_holds_is_not_ours() -> None:
    nodes = [gnode("n1", "occupied", "other/vc"), gnode("n2")]
    assert pool.assign(VC, [policy(1)], nodes, ["n1"]).nodes == ("n2",)


def test_short_names_the_policy_the_counts_and_the_holders() -> None:
    nodes = [gnode("n1", "occupied", "ns/other"), gnode("n2", "reserved"), gnode("n3")]
    result = pool.assign(VC, [policy(3)], nodes, [])
    assert result.nodes == result.take == result.give_back == ()
    assert result.short == (
        "policy 0 wants 3 nodes matching any labels: 3 matches, 1 free "
        "(n1 held by ns/other, n2 reserved)"
    )


def test_short_moves_nothing_and_keeps_what_is_held() -> None:
    nodes = [gnode("n1", "occupied", VC), gnode("n2", "occupied", "ns/b")]
    result = pool.assign(VC, [policy(2)], nodes, ["n1"])
    assert (result.nodes, result.take, result.give_back) == (("n1",), (), ())
    assert (
        result.short
        == "policy 0 wants 2 nodes matching any labels: 2 matches, 0 free (n2 held by ns/b)"
    )


def test_a_selector_matching_nothing_is_short() -> None:
    result = pool.assign(VC, [policy(1, gpu="yes")], [gnode("n1")], [])
    assert (
        result.short
        == 'policy 0 wants 1 node matching {"matchLabels":{"gpu":"yes"}}: no GlobalNode matches'
    )


def test_selectors_with_expressions() -> None:
    selector = {
        "matchLabels": {"pool": "a"},
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["z1", "z2"]},
            {"key": "gpu", "operator": "DoesNotExist"},
        ],
    }
    nodes = [
        gnode("n1", pool="a", zone="z3"),
        gnode("n2", pool="a", zone="z2", gpu="yes"),
        gnode("n3", pool="a", zone="z1"),
        gnode("n4", pool="b", zone="z1"),
        gnode("n5", pool="a", zone="z2"),
    ]
    result = pool.assign(VC, [{"labelSelector": selector, "nodeCount": 2}], nodes, [])
    assert result.nodes == ("n3", "n5")


def test_policies_do_not_share_nodes() -> None:
    nodes = [gnode("n1", zone="a"), gnode("n2", zone="a"), gnode("n3", zone="b")]
    result = pool.assign(VC, [policy(1, zone="a"), policy(2)], nodes, [])
    assert result.nodes == ("n1", "n2", "n3")
    short = pool.assign(VC, [policy(2), policy(2, zone="a")], nodes, [])
    assert short.short.startswith("policy 1 wants 2 nodes matching")
    assert "n1 taken by an earlier policy" in short.short


def test_two_virtual_clusters_compete_for_the_pool() -> None:
    nodes = [gnode("n1"), gnode("n2"), gnode("n3")]
    first = pool.assign("ns/a", [policy(2)], nodes, [])
    assert first.take == ("n1", "n2")
    after = [gnode(n, "occupied", "ns/a") for n in first.take] + [gnode("n3")]
    second = pool.assign("ns/b", [policy(2)], after, [])
    assert second.short == (
        "policy 0 wants 2 nodes matching any labels: 3 matches, 1 free "
        "(n1 held by ns/a, n2 held by ns/a)"
    )
    assert pool.assign("ns/b", [policy(1)], after, []).take == ("n3",)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("x", "policy 0: not an object"),
        ({"nodeCount": -1}, "policy 0: nodeCount -1 is not a non-negative integer"),
        ({"nodeCount": "2"}, "policy 0: nodeCount '2' is not a non-negative integer"),
        ({"labelSelector": [], "nodeCount": 1}, "policy 0: labelSelector is not an object"),
        (
            {"labelSelector": {"matchLabels": ["a"]}, "nodeCount": 1},
            "policy 0: labelSelector.matchLabels is not an object",
        ),
        (
            {"labelSelector": {"matchExpressions": ["a"]}, "nodeCount": 1},
            "policy 0: labelSelector.matchExpressions is not a list of requirements",
        ),
    ],
)
def test_malformed_policies_are_short_with_the_reason(bad: Any, message: str) -> None:
    assert pool.assign(VC, [bad], [gnode("n1")], []).short == message


def test_an_unknown_operator_matches_nothing() -> None:
    selector = {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}
    result = pool.assign(VC, [{"labelSelector": selector, "nodeCount": 1}], [gnode("n1")], [])
    assert result.short.endswith("no GlobalNode matches")


def test_zero_nodes_is_met_by_none() -> None:
    assert pool.assign(VC, [policy(0)], [gnode("n1")], []) == pool.Assignment()


def test_a_long_shortage_names_the_first_ten() -> None:
    nodes = [gnode(f"n{i:02}", "occupied", "ns/big") for i in range(25)]
    short = pool.assign(VC, [policy(1)], nodes, []).short
    assert short.endswith("n09 held by ns/big and 15 more)")
    assert "n10" not in short


# -- nodes running tenants' control planes ------------------------------------------------------


def cp_pod(node: str, namespace: str = "t1", tenant: str = "vc.a", phase: str = "Running") -> Any:
    return {
        "metadata": {
            "name": "apiserver-x",
            "namespace": namespace,
            "labels": {"kosmos.io/virtual-cluster": f"{namespace}.{tenant}"},
        },
        "spec": {"nodeName": node},
        "status": {"phase": phase},
    }


def test_busy_nodes_name_the_tenant_and_skip_finished_or_unscheduled_pods() -> None:
    pods = [cp_pod("n1"), cp_pod("n2", phase="Succeeded"), cp_pod(""), cp_pod("n3", "t2", "b")]
    assert pool.busy_nodes(pods) == {"n1": "t1/vc.a", "n3": "t2/b"}


def test_a_free_node_running_a_control_plane_is_not_taken() -> None:
    nodes = [gnode("n1"), gnode("n2")]
    result = pool.assign(VC, [policy(1)], nodes, [], {"n1": "t1/a"})
    assert result.nodes == ("n2",)


def test_short_says_which_tenant_runs_on_the_node() -> None:
    result = pool.assign(VC, [policy(1)], [gnode("n1")], [], {"n1": "t1/a"})
    assert result.nodes == ()
    assert result.short == (
        "policy 0 wants 1 node matching any labels: 1 matches, 0 free "
        "(n1 runs the control plane of t1/a)"
    )


def test_a_held_node_stays_held_whatever_runs_there() -> None:
    nodes = [gnode("n1", "occupied", VC)]
    assert pool.assign(VC, [policy(1)], nodes, ["n1"], {"n1": "t1/a"}).nodes == ("n1",)
