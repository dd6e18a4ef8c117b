"""True capacity: one real node must fit the pod, whatever the sum says."""

from fractions import Fraction

import pytest

from kosmos.scheduler.capacity import (
    NodeUsage,
    Room,
    fits,
    headroom,
    is_available,
    misfit,
    place_in_flight,
    room_of,
    scheduling_request,
)

F = Fraction
GPU = "nvidia.com/gpu"


def node(name, cpu="8", memory="32Gi", pods="110", ready="True", **extra):
    return {
        "metadata": {"name": name},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **extra},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def pod(uid, node_name="", cpu="1", phase="Running", **extra):
    requests = {"cpu": cpu, **extra}
    return {
        "metadata": {"uid": uid},
        "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": phase},
    }


def test_scheduling_request_includes_the_pod_slot():
    assert scheduling_request(pod("a", cpu="500m")) == {"cpu": F(1, 2), "pods": F(1)}


def test_usage_follows_add_move_finish_and_delete():
    usage = NodeUsage()
    usage.on_add(pod("a", "n1", cpu="2"))
    usage.on_add(pod("b", "n1", cpu="1"))
    assert usage.used("n1") == {"cpu": F(3), "pods": F(2)}
    usage.on_update(pod("b", "n1"), pod("b", "n1", phase="Succeeded"))
    assert usage.used("n1") == {"cpu": F(2), "pods": F(1)}
    usage.on_add(pod("c"))  # unbound: holds nothing
    usage.on_update(pod("c"), pod("c", "n2", cpu="4"))
    assert usage.used("n2") == {"cpu": F(4), "pods": F(1)}
    usage.on_delete(pod("a", "n1"))
    assert usage.used("n1") == {}


def test_room_is_allocatable_minus_used_clamped():
    room = room_of(node("n", cpu="4"), {"cpu": F(5), "pods": F(1)})
    assert room.free["cpu"] == 0
    assert room.free["pods"] == 109


@pytest.mark.parametrize(
    ("request_", "free", "ok"),
    [
        ({"cpu": F(2)}, {"cpu": F(2)}, True),
        ({"cpu": F(3)}, {"cpu": F(2)}, False),
        ({GPU: F(1)}, {"cpu": F(8)}, False),  # the node lacks the resource
        ({GPU: F(0)}, {}, True),
    ],
)
def test_fits(request_, free, ok):
    assert fits(request_, free) is ok


def test_in_flight_pods_spread_over_the_freest_nodes():
    rooms = [Room("a", {"cpu": F(4)}), Room("b", {"cpu": F(3)})]
    place_in_flight(rooms, [{"cpu": F(2)}, {"cpu": F(2)}, {"cpu": F(9)}])
    assert [r.free["cpu"] for r in rooms] == [F(2), F(1)]  # the 9-cpu pod fits nowhere


def test_misfit_when_no_single_node_has_enough_cpu():
    rooms = [Room("a", {"cpu": F(16), "pods": F(100)}), Room("b", {"cpu": F(12), "pods": F(9)})]
    reason = misfit("cluster1", rooms, {"cpu": F(20), "pods": F(1)})
    assert reason == (
        "leaf node(s) of cluster1 with no member node that fits the pod "
        "(requests cpu 20; most free on one member node: cpu 16)"
    )
    assert misfit("cluster1", rooms, {"cpu": F(10), "pods": F(1)}) is None


def test_misfit_when_resources_are_on_different_nodes():
    rooms = [Room("big", {"cpu": F(16)}), Room("gpu", {"cpu": F(2), GPU: F(1)})]
    reason = misfit("c", rooms, {"cpu": F(4), GPU: F(1)})
    assert "no single member node has all of it free" in reason
    assert misfit("c", rooms, {"cpu": F(2), GPU: F(1)}) is None


def test_misfit_shows_milli_cpu_and_mebibytes():
    rooms = [Room("a", {"cpu": F(1, 2), "memory": F(2**30)})]
    reason = misfit("c", rooms, {"cpu": F(3, 4), "memory": F(2 * 2**30)})
    assert "cpu 750m" in reason and "memory 2048Mi" in reason and "cpu 500m" in reason


def test_misfit_without_available_member_nodes():
    assert misfit("c", [], {"cpu": F(1)}) == (
        "leaf node(s) of c with no Ready, schedulable member node"
    )


def test_availability():
    assert is_available(node("n"))
    assert not is_available(node("n", ready="False"))
    cordoned = node("n")
    cordoned["spec"]["unschedulable"] = True
    assert not is_available(cordoned)


def test_headroom_scores_the_best_single_node():
    big = Room("a", {"cpu": F(8), "memory": F(8)}, {"cpu": F(16), "memory": F(16)})
    small = Room("b", {"cpu": F(2), "memory": F(2)}, {"cpu": F(4), "memory": F(4)})
    assert headroom([small, big], {"cpu": F(4), "memory": F(4)}) == 0.25
    assert headroom([small], {"cpu": F(4)}) == 0.0
