import pytest

from kosmos.clusterlink import forge

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"
NOW = "2026-01-01T01:00:00Z"


def node(name="n1", labels=None, ready=None, **meta):
    obj = {"metadata": {"name": name, "labels": labels or {}, **meta}, "spec": {}, "status": {}}
    if ready is not None:
        obj["status"]["conditions"] = [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", **ready},
        ]
    return obj


def cluster(eips=None):
    link = {"cni": "calico"}
    if eips is not None:
        link["nodeElasticIPMap"] = eips
    return {"metadata": {"name": "m1"}, "spec": {"clusterLinkOptions": link}}


def test_name_is_derived():
    assert forge.cluster_node_name("m1", "node-a") == "m1-node-a"


@pytest.mark.parametrize(
    ("labels", "meta", "reason"),
    [
        ({}, {}, None),
        ({"kosmos.io/node": "true"}, {}, "it is a Kosmos leaf node"),
        ({"kosmos.io/node": "false"}, {}, None),
        ({"kosmos.io/exclude": "true"}, {}, "it is labelled kosmos.io/exclude=true"),
        ({"kosmos.io/exclude": "no"}, {}, None),
        ({}, {"deletionTimestamp": T0}, "it is being deleted"),
    ],
)
def test_skip_reason(labels, meta, reason):
    assert forge.skip_reason(node(labels=labels, **meta)) == reason


@pytest.mark.parametrize(
    ("eips", "name", "want"),
    [
        ({"node-a": "203.0.113.7"}, "node-a", "203.0.113.7"),
        # exact names only: the original's substring match gave "a" the IP of "node-a"
        ({"node-a": "203.0.113.7"}, "a", None),
        ({"a": "203.0.113.7"}, "node-a", None),
        ({"node-a": "203.0.113.7", "node-ab": "203.0.113.8"}, "node-ab", "203.0.113.8"),
        ({"node-a": " 2001:DB8::7 "}, "node-a", "2001:db8::7"),
        ({"node-a": "not-an-ip"}, "node-a", None),
        ({}, "node-a", None),
        (None, "node-a", None),
    ],
)
def test_elastic_ip_matches_exact_node_names(eips, name, want):
    assert forge.elastic_ip(cluster(eips), name) == want


def test_elastic_ip_without_link_options():
    assert forge.elastic_ip({"metadata": {"name": "m1"}, "spec": {}}, "n") is None


def test_desired_holds_only_our_fields():
    body = forge.desired("m1", "n1", ["10.0.0.0/24"], "203.0.113.7")
    assert body == {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "ClusterNode",
        "metadata": {
            "name": "m1-n1",
            "labels": {
                "kosmos.io/cluster": "m1",
                "app.kubernetes.io/managed-by": "kosmos-network-manager",
            },
        },
        "spec": {
            "clusterName": "m1",
            "nodeName": "n1",
            "podCIDRs": ["10.0.0.0/24"],
            "elasticIP": "203.0.113.7",
        },
    }
    agent_fields = {"ip", "ip6", "interfaceName", "roles"}
    assert not agent_fields & set(body["spec"])


def test_no_elastic_ip_omits_the_field_so_apply_removes_it():
    assert "elasticIP" not in forge.desired("m1", "n1", [], None)["spec"]


def live(pod_cidrs, eip=None, **agent):
    obj = forge.desired("m1", "n1", pod_cidrs, eip)
    obj["metadata"].update(uid="u1", resourceVersion="7")
    obj["metadata"]["labels"]["team"] = "net"
    obj["spec"].update(agent)
    return obj


@pytest.mark.parametrize(
    ("existing", "want", "needed"),
    [
        (None, forge.desired("m1", "n1", [], None), True),
        # the agent's and the elector's fields are not ours to compare
        (live(["10.0.0.0/24"], ip="192.168.0.5", interfaceName="eth0", roles=["gateway"]),
         forge.desired("m1", "n1", ["10.0.0.0/24"], None), False),
        (live(["10.0.0.0/24"]), forge.desired("m1", "n1", ["10.0.1.0/24"], None), True),
        (live(["10.0.0.0/24"]), forge.desired("m1", "n1", ["10.0.0.0/24"], "203.0.113.7"), True),
        (live(["10.0.0.0/24"], "203.0.113.7"), forge.desired("m1", "n1", ["10.0.0.0/24"], None),
         True),
        ({"metadata": {"name": "m1-n1", "labels": {"kosmos.io/cluster": "m1"}},
          "spec": {"clusterName": "m1", "nodeName": "n1", "podCIDRs": []}},
         forge.desired("m1", "n1", [], None), True),  # hand-made: we take it over
    ],
)  # fmt: skip
def test_needs_apply(existing, want, needed):
    assert forge.needs_apply(existing, want) is needed


def test_is_ours():
    assert forge.is_ours(live([]))
    assert not forge.is_ours({"metadata": {"name": "x", "labels": {"kosmos.io/cluster": "m1"}}})


READY = {"status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}


@pytest.mark.parametrize(
    ("source", "previous", "want"),
    [
        # mirrors the node, with the node's own transition time
        ({**READY, "lastTransitionTime": T0}, None,
         {"status": "True", "reason": "KubeletReady",
          "message": "kubelet is posting ready status", "lastTransitionTime": T0}),
        # unchanged status keeps our previous transition time
        ({**READY, "lastTransitionTime": T1}, {"status": "True", "lastTransitionTime": T0},
         {"status": "True", "reason": "KubeletReady",
          "message": "kubelet is posting ready status", "lastTransitionTime": T0}),
        # a flip takes the node's time
        ({"status": "False", "reason": "KubeletNotReady", "message": "PLEG is not healthy",
          "lastTransitionTime": T1}, {"status": "True", "lastTransitionTime": T0},
         {"status": "False", "reason": "KubeletNotReady", "message": "PLEG is not healthy",
          "lastTransitionTime": T1}),
        # node controller's Unknown without reason/message/time
        ({"status": "Unknown"}, None,
         {"status": "Unknown", "reason": "NodeStatusUnknown",
          "message": "member node n1 reports Ready=Unknown", "lastTransitionTime": NOW}),
        ({"status": "Maybe"}, None,
         {"status": "Unknown", "reason": "NodeStatusUnknown",
          "message": "member node n1 reports Ready=Unknown", "lastTransitionTime": NOW}),
        (None, None,
         {"status": "Unknown", "reason": "NodeStatusUnknown",
          "message": "member node n1 has not reported a Ready condition yet",
          "lastTransitionTime": NOW}),
    ],
)  # fmt: skip
def test_ready_condition_mirrors_the_node(source, previous, want):
    condition = forge.ready_condition(node(ready=source), previous, NOW)
    assert condition == {"type": "Ready", **want}


def test_condition_differs_ignores_nothing_we_write():
    want = forge.ready_condition(node(ready={**READY, "lastTransitionTime": T0}), None, NOW)
    assert forge.condition_differs(None, want)
    assert not forge.condition_differs(dict(want), want)
    assert forge.condition_differs({**want, "status": "False"}, want)
    assert forge.condition_differs({**want, "message": "other"}, want)


def test_current_ready_and_status_body():
    condition = {"type": "Ready", "status": "True"}
    obj = {"status": {"conditions": [{"type": "AgentSynced", "status": "True"}, condition]}}
    assert forge.current_ready(obj) == condition
    assert forge.current_ready(None) is None
    assert forge.current_ready({"status": {}}) is None
    body = forge.status_body("m1", "n1", condition)
    assert body["metadata"] == {"name": "m1-n1"}
    assert body["status"] == {"conditions": [condition]}
    assert "spec" not in body


def test_node_view_ignores_heartbeats():
    a = node(ready={**READY, "lastTransitionTime": T0, "lastHeartbeatTime": T0})
    b = node(ready={**READY, "lastTransitionTime": T0, "lastHeartbeatTime": T1})
    b["status"]["allocatable"] = {"cpu": "3"}
    assert forge.node_view(a) == forge.node_view(b)


@pytest.mark.parametrize(
    "change",
    [
        lambda n: n["metadata"]["labels"].update({"kosmos.io/exclude": "true"}),
        lambda n: n["metadata"].update(deletionTimestamp=T1),
        lambda n: n["spec"].update(podCIDRs=["10.0.0.0/24"]),
        lambda n: n["status"]["conditions"][1].update(status="False"),
        lambda n: n["status"]["conditions"][1].update(message="other"),
    ],
)
def test_node_view_sees_what_changes_a_cluster_node(change):
    a = node(ready={**READY, "lastTransitionTime": T0})
    b = node(ready={**READY, "lastTransitionTime": T0})
    change(b)
    assert forge.node_view(a) != forge.node_view(b)
