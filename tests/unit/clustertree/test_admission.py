from kosmos.api.manifests import LEAF_TOLERATIONS_PATCH
from kosmos.clustertree.admission import (
    PLACEMENT_PATCH,
    PLACEMENT_POLICY_NAME,
    PLACEMENT_UNCHOSEN,
    promoted_pod_placement,
)
from kosmos.ops.manifests import tree_objects


def test_placement_policy_matches_pods_created_in_promoted_namespaces():
    policy, binding = promoted_pod_placement({"a": "b"})
    spec = policy["spec"]
    constraints = spec["matchConstraints"]
    assert constraints["resourceRules"][0]["operations"] == ["CREATE"]
    assert constraints["resourceRules"][0]["resources"] == ["pods"]
    assert constraints["namespaceSelector"] == {
        "matchExpressions": [{"key": "kosmos.io/promoted-from", "operator": "Exists"}]
    }
    assert spec["matchConditions"] == [
        {"name": "owner-cluster-not-chosen", "expression": PLACEMENT_UNCHOSEN}
    ]
    assert spec["failurePolicy"] == "Fail"
    assert spec["mutations"][0]["jsonPatch"]["expression"] == PLACEMENT_PATCH
    assert binding["spec"]["policyName"] == PLACEMENT_POLICY_NAME == policy["metadata"]["name"]
    assert PLACEMENT_POLICY_NAME == "kosmos-promoted-pod-placement"


def test_placement_patch_selects_the_namespaces_cluster_and_tolerates_leaves():
    cluster = "namespaceObject.metadata.labels['kosmos.io/promoted-from']"
    assert f"path: '/spec/nodeSelector/kosmos.io~1owner-cluster', value: {cluster}" in (
        PLACEMENT_PATCH
    )
    assert f"value: {{'kosmos.io/owner-cluster': {cluster}}}" in PLACEMENT_PATCH
    assert PLACEMENT_PATCH.endswith(LEAF_TOLERATIONS_PATCH)
    assert "'replace'" not in PLACEMENT_PATCH  # no whole-list values (1.36 apiserver panic)
    assert "'kosmos.io/owner-cluster' in object.spec.nodeSelector" in PLACEMENT_UNCHOSEN


def test_tree_objects_install_both_policies_and_bindings():
    names = {(body["kind"], body["metadata"]["name"]) for _resource, body in tree_objects()}
    for kind in ("MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"):
        assert (kind, "kosmos-leaf-pod-tolerations") in names
        assert (kind, "kosmos-promoted-pod-placement") in names
