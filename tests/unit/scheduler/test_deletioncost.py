from kosmos.scheduler.deletioncost import wanted_costs

TERM = {
    "name": "t",
    "placement": {"clusters": [{"name": "c1", "weight": 7}, {"name": "c2", "weight": 3}]},
}


def pod(name, node, created, cost=None, deleting=False):
    meta = {"name": name, "creationTimestamp": created}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": cost}
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": "Running"}}


def cluster(node):
    return {"kosmos-c1": "c1", "kosmos-c2": "c2"}.get(node)


def test_costs_by_seat_oldest_pods_hold_the_first_seats():
    pods = [
        pod("a", "kosmos-c1", "t1"),
        pod("b", "kosmos-c2", "t2"),
        pod("c", "kosmos-c1", "t3"),
        pod("u", "", "t4"),  # unbound: the ReplicaSet deletes it first anyway
        pod("x", "kosmos-c1", "t5", deleting=True),
    ]
    assert wanted_costs(pods, lambda p: TERM, cluster) == {"a": "0", "b": "-1", "c": "-2"}


def test_only_changed_costs_are_patched():
    pods = [pod("a", "kosmos-c1", "t1", cost="0"), pod("b", "kosmos-c2", "t2", cost="-5")]
    assert wanted_costs(pods, lambda p: TERM, cluster) == {"b": "-1"}


def test_pods_without_a_placement_term_are_left_alone():
    pods = [pod("a", "kosmos-c1", "t1")]
    assert wanted_costs(pods, lambda p: None, cluster) == {}
    assert wanted_costs(pods, lambda p: {"name": "plain"}, cluster) == {}
