from kosmos.api.leafmodel import leaf_nodes
from kosmos.clustertree.placement import placement_of


def cluster(models):
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "member1"},
        "spec": {"clusterTreeOptions": {"leafModels": models}},
    }


def test_placement_from_leaf():
    [leaf] = leaf_nodes(cluster([{"labels": {"a": "b"}, "nodeSelector": {"labelSelector": {}}}]))
    placement = placement_of(leaf)
    assert (placement.cluster, placement.host_node, placement.mode) == (
        "member1",
        "kosmos-member1-0",
        "group",
    )
    assert placement.node_labels == {"a": "b"}
