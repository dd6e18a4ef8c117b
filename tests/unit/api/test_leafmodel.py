import pytest

from kosmos.api import names
from kosmos.api.leafmodel import (
    LeafModelError,
    LeafNode,
    is_root_cluster,
    leaf_nodes,
    member_nodes_of,
    tree_enabled,
)
from kosmos.api.selectors import selector_matches

LEAF_TAINT = dict(names.TAINT_LEAF)


def cluster(name="member1", models=None, tree=None, annotations=None):
    spec = {}
    if tree is not None:
        spec["clusterTreeOptions"] = tree
    if models is not None:
        spec["clusterTreeOptions"] = {**(tree or {}), "leafModels": models}
    meta = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "kosmos.io/v1alpha1", "kind": "Cluster", "metadata": meta, "spec": spec}


def node(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}}


def expressions(*exprs):
    return {"nodeSelector": {"labelSelector": {"matchExpressions": list(exprs)}}}


# --- leaf_nodes: modes and names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (None, [("kosmos-member1", "whole-cluster", None, None)]),
        ([], [("kosmos-member1", "whole-cluster", None, None)]),
        ([{}], [("kosmos-member1", "whole-cluster", None, None)]),
        ([{"leafNodeName": "big"}], [("big", "whole-cluster", None, None)]),
        (
            [{"nodeSelector": {"nodeName": "n1"}}],
            [("n1", "one-to-one", "n1", None)],
        ),
        (
            [{"leafNodeName": "edge-a", "nodeSelector": {"nodeName": "n1"}}],
            [("edge-a", "one-to-one", "n1", None)],
        ),
        (
            [{"nodeSelector": {"labelSelector": {"matchLabels": {"gpu": "yes"}}}}],
            [("kosmos-member1-0", "group", None, {"matchLabels": {"gpu": "yes"}})],
        ),
        (
            [{"nodeSelector": {"labelSelector": {}}}],
            [("kosmos-member1-0", "group", None, {})],
        ),
        (
            # each model has its own mode (the original let models[0] decide for all)
            [
                {"nodeSelector": {"labelSelector": {"matchLabels": {"a": "1"}}}},
                {"nodeSelector": {"nodeName": "n7"}},
                {"leafNodeName": "gpus", "nodeSelector": {"labelSelector": {}}},
                {"nodeSelector": {"labelSelector": {"matchLabels": {"b": "2"}}}},
            ],
            [
                ("kosmos-member1-0", "group", None, {"matchLabels": {"a": "1"}}),
                ("n7", "one-to-one", "n7", None),
                ("gpus", "group", None, {}),
                ("kosmos-member1-3", "group", None, {"matchLabels": {"b": "2"}}),
            ],
        ),
    ],
)
def test_modes_and_names(models, expected):
    leaves = leaf_nodes(cluster(models=models))
    got = [(leaf.name, leaf.mode, leaf.member_node, leaf.node_selector) for leaf in leaves]
    assert got == expected
    assert all(leaf.cluster == "member1" for leaf in leaves)


def test_whole_cluster_default_has_leaf_taint_only():
    [leaf] = leaf_nodes(cluster())
    assert leaf == LeafNode(
        "kosmos-member1", "member1", "whole-cluster", taints=(LEAF_TAINT,), labels={}
    )


@pytest.mark.parametrize(
    ("cluster_name", "models", "expected"),
    [
        ("c" * 70, None, "kosmos-" + "c" * 56),
        ("c" * 70, [{"nodeSelector": {"labelSelector": {}}}], "kosmos-" + "c" * 56),
        ("c", [{"nodeSelector": {"nodeName": "n" * 80}}], "n" * 63),
        # truncation never leaves a trailing dash or dot
        ("a" * 55 + "-bcd", None, "kosmos-" + "a" * 55),
        ("a" * 55 + ".bcd", None, "kosmos-" + "a" * 55),
    ],
)
def test_names_truncated_to_63(cluster_name, models, expected):
    [leaf] = leaf_nodes(cluster(cluster_name, models))
    assert leaf.name == expected
    if leaf.mode == "one-to-one":
        assert leaf.member_node == "n" * 80  # the member keeps its real name


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{}, {}], r"leafModels\[1\].*'kosmos-member1'.*leafModels\[0\]"),
        (
            [{"nodeSelector": {"nodeName": "x"}}, {"leafNodeName": "x"}],
            r"leafModels\[1\].*'x'.*leafModels\[0\]",
        ),
        (
            [{"nodeSelector": {"labelSelector": {}}}, {"leafNodeName": "kosmos-member1-0"}],
            r"leafModels\[1\]",
        ),
        (
            [{}, {"nodeSelector": {"nodeName": "a", "labelSelector": {}}}],
            r"leafModels\[1\].*not both",
        ),
        ([{"leafNodeName": "Bad_Name"}], r"leafModels\[0\].*not a valid node name"),
        (
            [{"leafNodeName": "a"}, {"leafNodeName": "b"}, {"taints": [{"effect": "NoSchedule"}]}],
            r"leafModels\[2\].*taints\[0\]",
        ),
        ([{"taints": [{"key": "k", "effect": "Never"}]}], r"leafModels\[0\].*invalid effect"),
        ([{"labels": {"a": 1}}], r"leafModels\[0\].*labels"),
        ([expressions({"key": "a", "operator": "Is"})], r"leafModels\[0\].*operator"),
        ([expressions({"key": "a", "operator": "In"})], r"In needs values"),
        ([expressions({"key": "a", "operator": "NotIn", "values": []})], r"NotIn needs values"),
        (
            [expressions({"key": "a", "operator": "Exists", "values": ["x"]})],
            r"Exists takes no values",
        ),
        ([expressions({"operator": "Exists"})], r"no key"),
        ([{"nodeSelector": {"labelSelector": "a=b"}}], r"must be an object"),
    ],
)
def test_invalid_models(models, message):
    with pytest.raises(LeafModelError, match=message):
        leaf_nodes(cluster(models=models))


def test_leaf_model_error_is_a_value_error():
    assert issubclass(LeafModelError, ValueError)


# --- labels and taints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taints", "expected"),
    [
        (None, [LEAF_TAINT]),
        (
            [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}],
            [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}, LEAF_TAINT],
        ),
        (
            # duplicates by (key, effect): the first wins
            [
                {"key": "gpu", "value": "a", "effect": "NoSchedule"},
                {"key": "gpu", "value": "b", "effect": "NoSchedule"},
                {"key": "gpu", "effect": "NoExecute"},
            ],
            [
                {"key": "gpu", "value": "a", "effect": "NoSchedule"},
                {"key": "gpu", "effect": "NoExecute"},
                LEAF_TAINT,
            ],
        ),
        (
            # the leaf taint cannot be replaced, but another effect on its key is kept
            [
                {"key": "kosmos.io/node", "value": "false", "effect": "NoSchedule"},
                {"key": "kosmos.io/node", "effect": "PreferNoSchedule"},
            ],
            [{"key": "kosmos.io/node", "effect": "PreferNoSchedule"}, LEAF_TAINT],
        ),
    ],
)
def test_taints(taints, expected):
    model = {"labels": {"tier": "gold"}}
    if taints is not None:
        model["taints"] = taints
    [leaf] = leaf_nodes(cluster(models=[model]))
    assert list(leaf.taints) == expected
    assert leaf.labels == {"tier": "gold"}


def test_leaf_taint_is_a_copy():
    [leaf] = leaf_nodes(cluster())
    leaf.taints[0]["value"] = "mutated"
    assert names.TAINT_LEAF["value"] == "true"


# --- tree_enabled / is_root_cluster ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tree", "enabled"),
    [
        (None, True),  # absent: enabled, like kosmosctl join
        ({}, True),  # CRD default enable=true
        ({"enable": True}, True),
        ({"enable": False}, False),
        ({"enable": False, "leafModels": [{}]}, False),
    ],
)
def test_tree_enabled(tree, enabled):
    assert tree_enabled(cluster(tree=tree)) is enabled


@pytest.mark.parametrize(
    ("name", "annotations", "root"),
    [
        ("member1", None, False),
        ("member1", {"kosmos.io/cluster-role": "root"}, True),
        ("member1", {"kosmos.io/cluster-role": "leaf"}, False),
        (names.ROOT_CLUSTER_NAME, None, True),
    ],
)
def test_is_root_cluster(name, annotations, root):
    assert is_root_cluster(cluster(name, annotations=annotations)) is root


# --- selectors and member nodes ----------------------------------------------------------------

LABELS = {"zone": "a", "gpu": "yes", "tier": "1"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({}, True),
        ({"matchLabels": {}}, True),
        ({"matchLabels": {"zone": "a"}}, True),
        ({"matchLabels": {"zone": "a", "gpu": "yes"}}, True),
        ({"matchLabels": {"zone": "a", "gpu": "no"}}, False),  # all must match, not any
        ({"matchLabels": {"missing": ""}}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}, False),
        ({"matchExpressions": [{"key": "nope", "operator": "In", "values": ["a"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, False),
        ({"matchExpressions": [{"key": "nope", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "nope", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "nope", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "gpu", "operator": "Bogus"}]}, False),
        (
            {
                "matchLabels": {"tier": "1"},
                "matchExpressions": [
                    {"key": "gpu", "operator": "Exists"},
                    {"key": "zone", "operator": "NotIn", "values": ["c"]},
                ],
            },
            True,
        ),
        (
            {
                "matchLabels": {"tier": "1"},
                "matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}],
            },
            False,
        ),
    ],
)
def test_selector_matches(selector, matches):
    assert selector_matches(selector, LABELS) is matches


NODES = [
    node("n1", {"pool": "gpu"}),
    node("n2", {"pool": "cpu"}),
    node("n3", {"pool": "gpu", "kosmos.io/exclude": "true"}),
    node("n4", {"pool": "gpu", "kosmos.io/exclude": "false"}),
    node("n5"),
]


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (LeafNode("kosmos-c", "c", "whole-cluster"), ["n1", "n2", "n4", "n5"]),
        (LeafNode("n2", "c", "one-to-one", member_node="n2"), ["n2"]),
        (LeafNode("n3", "c", "one-to-one", member_node="n3"), []),  # excluded
        (LeafNode("gone", "c", "one-to-one", member_node="gone"), []),
        (
            LeafNode("g", "c", "group", node_selector={"matchLabels": {"pool": "gpu"}}),
            ["n1", "n4"],
        ),
        (LeafNode("g", "c", "group", node_selector={}), ["n1", "n2", "n4", "n5"]),
        (
            LeafNode(
                "g",
                "c",
                "group",
                node_selector={"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]},
            ),
            ["n5"],
        ),
    ],
)
def test_member_nodes_of(leaf, expected):
    assert [n["metadata"]["name"] for n in member_nodes_of(leaf, iter(NODES))] == expected
