"""The generated CRDs on a real apiserver: established, printed as the seed shows, and
invalid objects rejected with a message that names the field."""

from __future__ import annotations

import json

import pytest

from kosmos.api import crds
from kosmos.local.kubectl import KubectlError
from tests.fixtures.clusters import LocalEnv


def test_all_crds_install_and_are_established(kosmos_crds: list[str]):
    assert sorted(kosmos_crds) == sorted(m["metadata"]["name"] for m in crds.crd_manifests())


def test_kubectl_get_clusters_prints_the_seed_columns(local_env: LocalEnv, kosmos_crds):
    host = local_env.kubectl(local_env.host)
    body = {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "cols"},
        "spec": {"clusterLinkOptions": {"networkType": "gateway", "ipFamily": "ipv4"}},
    }
    host.run("apply", "-f", "-", stdin=json.dumps(body))
    try:
        header, row = host.run("get", "clusters", "cols").splitlines()
        assert header.split() == ["NAME", "NETWORK_TYPE", "IP_FAMILY", "READY", "AGE"]
        assert row.split()[:3] == ["cols", "gateway", "ipv4"]
        assert "cols" in host.run("get", "kosmos-io")  # the category
    finally:
        host.run("delete", "cluster", "cols", "--ignore-not-found")


INVALID = [
    ({"clusterLinkOptions": {"networkType": "tunnel"}}, "spec.clusterLinkOptions.networkType"),
    ({"clusterLinkOptions": {"ipFamily": "v4"}}, "spec.clusterLinkOptions.ipFamily"),
    (
        {"clusterLinkOptions": {"clusterPodCIDRs": ["10.0.0.0/33"]}},
        "spec.clusterLinkOptions.clusterPodCIDRs[0]",
    ),
    (
        {"clusterLinkOptions": {"nodeElasticIPMap": {"n1": "1.2.3"}}},
        "spec.clusterLinkOptions.nodeElasticIPMap[n1]",
    ),
    (
        {
            "clusterLinkOptions": {
                "globalCIDRsMap": {"10.1.0.0/16": "10.200.0.0/16", "10.2.0.0/16": "10.200.0.0/16"}
            }
        },
        "spec.clusterLinkOptions.globalCIDRsMap: Invalid value: global CIDRs must not overlap",
    ),
    (
        {"clusterLinkOptions": {"globalCIDRsMap": {"10.1.0.0/16": "10.200.0.0/24"}}},
        "same prefix length",
    ),
    ({"kubeconfig": "aGVsbG8=", "kubeconfigSecretRef": {"name": "s"}}, "spec.kubeconfig"),
    ({"kubeconfig": "not base64!"}, "spec.kubeconfig"),
    ({"kubeconfigSecretRef": {}}, "spec.kubeconfigSecretRef.name"),
    (
        {
            "clusterTreeOptions": {
                "leafModels": [
                    {
                        "nodeSelector": {
                            "nodeName": "a",
                            "labelSelector": {"matchLabels": {"x": "y"}},
                        }
                    }
                ]
            }
        },
        "spec.clusterTreeOptions.leafModels[0].nodeSelector.nodeName",
    ),
    (
        {"clusterLinkOptions": {"localCIDRs": {"ip": "210.0.0.0/8"}}},
        "spec.clusterLinkOptions.localCIDRs.ip6",
    ),
]


@pytest.mark.parametrize(("spec", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_cluster_is_rejected_naming_the_field(
    local_env: LocalEnv, kosmos_crds, spec, field
):
    body = {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "invalid"},
        "spec": spec,
    }
    with pytest.raises(KubectlError) as info:
        local_env.kubectl(local_env.host).run(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(body)
        )
    assert field in str(info.value)


def _placement_policy(node_type: str, clusters: list[dict[str, object]]) -> dict[str, object]:
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "ClusterDistributionPolicy",
        "metadata": {"name": "placement"},
        "spec": {
            "resourceSelectors": [{"namePrefix": "web-", "policyName": "split"}],
            "policyTerms": [
                {"name": "split", "nodeType": node_type, "placement": {"clusters": clusters}}
            ],
        },
    }


PLACEMENT_INVALID = [
    ("leaf", [{"name": "c1", "weight": 1, "replicas": 2}], "set exactly one of replicas"),
    ("leaf", [{"name": "c1"}], "clusters[0]: Invalid value: set exactly one of replicas"),
    ("leaf", [{"name": "c1", "weight": 0}], "clusters[0].weight"),
    ("leaf", [{"name": "c1", "replicas": -1}], "clusters[0].replicas"),
    ("leaf", [{"name": "c1", "weight": 1}, {"name": "c1", "weight": 2}], "Duplicate value"),
    ("leaf", [], "clusters: Invalid value"),
    (
        "leaf",
        [{"name": "kosmos-control-cluster", "weight": 1}],
        "nodeType leaf never uses host nodes",
    ),
    ("host", [{"name": "c1", "weight": 1}], "nodeType host uses only host nodes"),
]


@pytest.mark.parametrize(
    ("node_type", "clusters", "message"), PLACEMENT_INVALID, ids=[m for *_, m in PLACEMENT_INVALID]
)
def test_invalid_placement_is_rejected_with_what_to_do(
    local_env: LocalEnv, kosmos_crds, node_type, clusters, message
):
    body = _placement_policy(node_type, clusters)
    with pytest.raises(KubectlError) as info:
        local_env.kubectl(local_env.host).run(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(body)
        )
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("node_type", "clusters"),
    [
        ("leaf", [{"name": "c1", "weight": 7}, {"name": "c2", "weight": 3}]),
        ("mix", [{"name": "c1", "replicas": 2}, {"name": "kosmos-control-cluster", "weight": 1}]),
        ("host", [{"name": "kosmos-control-cluster", "replicas": 1}]),
    ],
)
def test_valid_placement_is_accepted(local_env: LocalEnv, kosmos_crds, node_type, clusters):
    body = _placement_policy(node_type, clusters)
    local_env.kubectl(local_env.host).run(
        "create", "--dry-run=server", "-f", "-", stdin=json.dumps(body)
    )
