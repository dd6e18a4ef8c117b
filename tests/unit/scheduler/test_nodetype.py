import pytest

from kosmos.scheduler.nodetype import HOST_CLUSTER, cluster_of, is_leaf, rejection
from kosmos.scheduler.policy import Match

LEAF = {
    "metadata": {
        "name": "kosmos-c1",
        "labels": {"kosmos.io/node": "true", "kosmos.io/owner-cluster": "c1"},
    },
    "spec": {"taints": [{"key": "kosmos.io/node", "value": "true", "effect": "NoSchedule"}]},
}
HOST = {"metadata": {"name": "h1", "labels": {"advNode": "true"}}, "spec": {}}
GPU_HOST = {
    "metadata": {"name": "h2", "labels": {}},
    "spec": {"taints": [{"key": "gpu", "value": "a100", "effect": "NoSchedule"}]},
}


def term(node_type, **advanced):
    t = {"name": "t", "nodeType": node_type}
    if advanced:
        t["advancedTerm"] = advanced
    return Match("DistributionPolicy", "ns/p", 0, "name", t)


def test_leaf_and_cluster():
    assert is_leaf(LEAF) and not is_leaf(HOST)
    assert cluster_of(LEAF) == "c1"
    assert cluster_of(HOST) == HOST_CLUSTER == "kosmos-control-cluster"


@pytest.mark.parametrize(
    ("found", "node", "passes"),
    [
        (None, LEAF, True),
        (term("mix"), LEAF, True),
        (term("mix"), HOST, True),
        (term("host"), HOST, True),
        (term("host"), LEAF, False),
        (term("leaf"), LEAF, True),
        (term("leaf"), HOST, False),
        (term("adv", nodeName="kosmos-c1"), LEAF, True),
        (term("adv", nodeName="kosmos-c1"), HOST, False),
        (term("adv", nodeSelector={"advNode": "true"}), HOST, True),
        (term("adv", nodeSelector={"advNode": "true"}), LEAF, False),
        (term("adv", tolerations=[{"key": "gpu", "operator": "Exists"}]), GPU_HOST, True),
        (term("adv", tolerations=[{"key": "gpu", "operator": "Exists"}]), HOST, False),
        (term("adv", tolerations=[{"key": "gpu", "value": "h100"}]), GPU_HOST, False),
        (term("adv", tolerations=[{"key": "kosmos.io/node", "operator": "Exists"}]), LEAF, True),
        (term("adv", nodeName="x", nodeSelector={"advNode": "true"}), HOST, True),  # any clause
    ],
)
def test_node_types(found, node, passes):
    assert (rejection(found, node) is None) is passes


def test_reasons_name_the_policy():
    assert rejection(term("host"), LEAF) == (
        "leaf node(s) excluded: DistributionPolicy ns/p resourceSelectors[0] (name) "
        "-> term t (host) allows host nodes only"
    )
    assert rejection(term("leaf"), HOST).startswith("host node(s) excluded: ")
    assert rejection(term("adv", nodeName="x"), HOST).startswith(
        "node(s) not admitted by the advancedTerm of DistributionPolicy ns/p"
    )
