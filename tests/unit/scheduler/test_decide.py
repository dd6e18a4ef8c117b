"""The filter pipeline over a fake view: policy, volumes, capacity, placement, ledger."""

from dataclasses import dataclass, field

from kosmos.scheduler.capacity import Room
from kosmos.scheduler.decide import UNKNOWN_NODE, Owner, Rooms, filter_nodes, placed, priorities
from kosmos.scheduler.ledger import Ledger

M = 1000  # milli-units


def leaf(name, cluster):
    return {
        "metadata": {
            "name": name,
            "labels": {"kosmos.io/node": "true", "kosmos.io/owner-cluster": cluster},
        },
        "spec": {},
    }


def host(name):
    return {"metadata": {"name": name, "labels": {}}, "spec": {}}


NODES = {
    "kosmos-c1": leaf("kosmos-c1", "c1"),
    "kosmos-c2": leaf("kosmos-c2", "c2"),
    "h1": host("h1"),
}


def room(cpu, alloc=16):
    return Room("m", {"cpu": cpu * M, "memory": 2**36 * M, "pods": 100 * M}, {"cpu": alloc * M})


@dataclass
class View:
    nodes: dict = field(default_factory=lambda: dict(NODES))
    namespaced: list = field(default_factory=list)
    cluster_scoped: list = field(default_factory=list)
    owners: dict = field(default_factory=dict)
    pods: dict = field(default_factory=dict)
    free: dict = field(default_factory=dict)

    def node(self, name):
        return self.nodes.get(name)

    def policies(self, namespace):
        return self.namespaced

    def cluster_policies(self):
        return self.cluster_scoped

    def claim(self, key):
        return None

    def volume(self, name):
        return None

    def storage_class(self, name):
        return None

    def owner(self, pod):
        return self.owners.get(pod["metadata"]["uid"])

    def owner_pods(self, owner_uid):
        return self.pods.get(owner_uid, [])

    def rooms(self, node):
        name = node["metadata"]["name"]
        if name not in self.free:
            return None
        return Rooms(name.removeprefix("kosmos-"), self.free[name])


def pod(uid="p0", name="web-abc", cpu="1", node="", rv="1"):
    return {
        "metadata": {"uid": uid, "name": name, "namespace": "ns", "resourceVersion": rv},
        "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": "Running" if node else "Pending"},
    }


def policy(node_type="mix", placement=None):
    term = {"name": "t", "nodeType": node_type}
    if placement:
        term["placement"] = {"clusters": placement}
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "resourceSelectors": [{"namePrefix": "web-", "policyName": "t"}],
            "policyTerms": [term],
        },
    }


ALL = ["kosmos-c1", "kosmos-c2", "h1"]


def test_no_policy_passes_everything_known():
    out = filter_nodes(View(), Ledger(), pod(), [*ALL, "new-node"])
    assert out.nodes == ALL
    assert out.failed == {"new-node": UNKNOWN_NODE}
    assert out.causes == {"unknown": 1}


def test_leaf_policy_rejects_host_nodes_unresolvably():
    out = filter_nodes(View(namespaced=[policy("leaf")]), Ledger(), pod(), ALL)
    assert out.nodes == ["kosmos-c1", "kosmos-c2"]
    assert list(out.unresolvable) == ["h1"]
    assert out.match.term_name == "t"


def test_capacity_rejects_leaf_whose_member_nodes_are_too_small_resolvably():
    view = View(free={"kosmos-c1": [room(4), room(4)], "kosmos-c2": [room(16)]})
    out = filter_nodes(view, Ledger(), pod(cpu="6"), ALL)
    assert out.nodes == ["kosmos-c2", "h1"]
    assert (
        "kosmos-c1" in out.failed
        and "most free on one member node: cpu 4" in (out.failed["kosmos-c1"])
    )
    assert out.causes == {"capacity": 1}


def test_capacity_and_scores_count_only_member_nodes_the_pod_tolerates():
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    big = Room("big", {"cpu": 16 * M, "pods": 100 * M}, {"cpu": 16 * M}, taints=(taint,))
    small = Room("small", {"cpu": 2 * M, "pods": 100 * M}, {"cpu": 4 * M})
    view = View(free={"kosmos-c1": [big, small]})
    out = filter_nodes(view, Ledger(), pod(cpu="6"), ["kosmos-c1"])
    assert out.nodes == [] and "1 member node(s) with taints" in out.failed["kosmos-c1"]
    tolerant = pod(cpu="6")
    tolerant["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    out = filter_nodes(view, Ledger(), tolerant, ["kosmos-c1"])
    assert out.nodes == ["kosmos-c1"] and out.scores == {"kosmos-c1": 6}  # 10/16 left
    # without the toleration only the small node counts: 1 of its 4 cpu left, not 15 of 16
    assert priorities(view, pod(cpu="1"), ["kosmos-c1"]) == [{"Host": "kosmos-c1", "Score": 2}]


def test_daemon_pods_ignore_policies():
    ds = pod()
    ds["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "controller": True, "uid": "d"}]
    out = filter_nodes(View(namespaced=[policy("leaf")]), Ledger(), ds, ALL)
    assert out.nodes == ALL and out.match is None


WEIGHTS = [{"name": "c1", "weight": 7}, {"name": "c2", "weight": 3}]
RS = Owner("ReplicaSet", "rs", "ns/web", 10)


def replicaset_view(bound):
    view = View(namespaced=[policy("leaf", WEIGHTS)])
    pods = [pod(f"b{i}", node=n) for i, n in enumerate(bound)]
    me = pod("me")
    view.pods = {"rs": [*pods, me]}
    view.owners = {p["metadata"]["uid"]: RS for p in [*pods, me]}
    return view, me


def test_placement_offers_one_cluster_and_reserves_it():
    view, me = replicaset_view(["kosmos-c1"] * 3 + ["kosmos-c2"])
    ledger = Ledger()
    out = filter_nodes(view, ledger, me, ALL)
    assert out.nodes == ["kosmos-c2"]  # c1 3/7 is fuller than c2 1/3
    assert "pod goes to c2 runs 1 of its 3 pods" in out.unresolvable["kosmos-c1"]
    assert out.reserve == ("rs", "c2")


def test_placement_counts_reserved_pods_the_cache_has_not_seen_bound():
    view, me = replicaset_view([])
    ledger = Ledger()
    for uid in ("x1", "x2", "x3"):  # already sent to c1 by earlier filter calls
        ledger.reserve(uid, "rs", "c1", "1")
    assert placed(view, ledger, RS, "me") == {"c1": 3}
    assert filter_nodes(view, ledger, me, ALL).nodes == ["kosmos-c2"]


def test_placement_ignores_terminating_pods_and_the_pod_itself():
    view, _me = replicaset_view(["kosmos-c2"])
    view.pods["rs"][0]["metadata"]["deletionTimestamp"] = "now"
    ledger = Ledger()
    ledger.reserve("me", "rs", "c2", "0")  # an earlier attempt of this very pod
    assert placed(view, ledger, RS, "me") == {}


def test_placement_full_workload_waits_with_a_reason():
    view, me = replicaset_view(["kosmos-c1"] * 7 + ["kosmos-c2"] * 3)
    out = filter_nodes(view, Ledger(), me, ALL)
    assert out.nodes == []
    assert (
        "every cluster has its share of the 10 pods (c1 7, c2 3)" in (out.unresolvable["kosmos-c1"])
    )
    assert out.reserve is None


def test_placement_falls_to_the_other_cluster_below_its_share_when_one_is_full():
    view, me = replicaset_view([])
    view.free = {"kosmos-c1": [room(0)], "kosmos-c2": [room(8)]}
    out = filter_nodes(view, Ledger(), me, ALL)
    assert out.nodes == ["kosmos-c2"]


def test_statefulset_ordinal_takes_its_seat():
    view = View(namespaced=[policy("leaf", WEIGHTS)])
    sts = Owner("StatefulSet", "ss", "ns/web", 10)
    second = pod("s1", name="web-1")
    view.owners = {"s1": sts}
    assert filter_nodes(view, Ledger(), second, ALL).nodes == ["kosmos-c2"]  # seat 1 -> c2


def test_placement_without_a_workload_allows_every_listed_cluster():
    view = View(namespaced=[policy("mix", [{"name": "c1", "weight": 1}])])
    out = filter_nodes(view, Ledger(), pod(), ALL)
    assert out.nodes == ["kosmos-c1"]
    assert out.unresolvable["h1"].endswith("only c1")


def test_priorities_prefer_the_node_with_more_room_on_one_real_node():
    view = View(free={"kosmos-c1": [room(2)], "kosmos-c2": [room(12)]})
    scores = priorities(view, pod(cpu="1"), ["kosmos-c1", "kosmos-c2", "h1", "gone"])
    assert scores == [
        {"Host": "kosmos-c1", "Score": 1},
        {"Host": "kosmos-c2", "Score": 7},
        {"Host": "h1", "Score": 0},
        {"Host": "gone", "Score": 0},
    ]
