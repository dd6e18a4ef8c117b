from kosmos.scheduler.volumes import claim_names, pins, volume_cluster

LEAF1 = {"metadata": {"labels": {"kosmos.io/node": "true", "kosmos.io/owner-cluster": "c1"}}}
LEAF2 = {"metadata": {"labels": {"kosmos.io/node": "true", "kosmos.io/owner-cluster": "c2"}}}
HOST = {"metadata": {"labels": {}}}

MEMBER_PV = {
    "metadata": {
        "name": "pvc-1",
        "labels": {"kosmos.io/owner-cluster": "c1"},
        "annotations": {"kosmos.io/member-claim": "c1/ns/data"},
    }
}
HOST_PV = {"metadata": {"name": "nfs-1"}}


def pod(*claims, ephemeral=()):
    volumes = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]
    volumes += [{"name": e, "ephemeral": {}} for e in ephemeral]
    volumes.append({"name": "cfg", "configMap": {"name": "x"}})
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"volumes": volumes}}


def claim(name, volume=None, storage_class="std"):
    spec = {"storageClassName": storage_class}
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


CLAIMS = {
    "ns/data": claim("data", "pvc-1"),
    "ns/shared": claim("shared", "nfs-1"),
    "ns/new": claim("new", storage_class="kosmos-leaf"),
    "ns/plain": claim("plain"),
}
VOLUMES = {"pvc-1": MEMBER_PV, "nfs-1": HOST_PV}
CLASSES = {"kosmos-leaf": {"provisioner": "kosmos.io/leaf"}, "std": {"provisioner": "x"}}


def rejection(p, node):
    return pins(p, CLAIMS.get, VOLUMES.get, CLASSES.get).rejection(node)


def test_claim_names():
    assert claim_names(pod("a", ephemeral=["scratch"])) == ["a", "p-scratch"]


def test_volume_cluster():
    assert volume_cluster(MEMBER_PV) == "c1"
    assert volume_cluster(HOST_PV) == "kosmos-control-cluster"


def test_claim_bound_in_a_member_keeps_the_pod_on_that_members_leaves():
    assert rejection(pod("data"), LEAF1) is None
    assert rejection(pod("data"), LEAF2) == (
        "node(s) outside c1 excluded: claim data is bound there"
    )
    assert rejection(pod("data"), HOST) is not None


def test_host_claim_keeps_the_pod_on_host_nodes():
    assert rejection(pod("shared"), HOST) is None
    assert rejection(pod("shared"), LEAF1) == (
        "leaf node(s) excluded: claim shared is bound to a host volume"
    )


def test_unbound_leaf_class_claim_needs_a_leaf_node():
    assert rejection(pod("new"), LEAF2) is None
    assert rejection(pod("new"), HOST).startswith("host node(s) excluded: claim new")
    assert rejection(pod("new", "shared"), HOST).startswith("node(s) excluded: claim new")


def test_claims_in_different_clusters_fit_nowhere():
    reason = rejection(pod("data", "shared"), LEAF1)
    assert reason.startswith("node(s) excluded: the pod's claims are bound in different")


def test_unbound_ordinary_and_missing_claims_are_left_to_volume_binding():
    assert rejection(pod("plain", "missing"), LEAF1) is None
    assert rejection(pod("plain", "missing"), HOST) is None
