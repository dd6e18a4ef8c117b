"""True capacity: one real node must fit the pod, whatever the sum says."""

import pytest

from kosmos.scheduler.capacity import (
    NodeUsage,
    Room,
    fits,
    headroom,
    is_available,
    misfit,
    open_to,
    room_of,
    scheduling_request,
    spread_choice,
    take,
)
from kosmos.scheduler.inflight import InFlight

M = 1000  # amounts are in milli-units
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
    assert scheduling_request(pod("a", cpu="500m")) == {"cpu": 500, "pods": 1 * M}


def test_usage_follows_add_move_finish_and_delete():
    usage = NodeUsage()
    usage.on_add(pod("a", "n1", cpu="2"))
    usage.on_add(pod("b", "n1", cpu="1"))
    assert usage.used("n1") == {"cpu": 3 * M, "pods": 2 * M}
    usage.on_update(pod("b", "n1"), pod("b", "n1", phase="Succeeded"))
    assert usage.used("n1") == {"cpu": 2 * M, "pods": 1 * M}
    usage.on_add(pod("c"))  # unbound: holds nothing
    usage.on_update(pod("c"), pod("c", "n2", cpu="4"))
    assert usage.used("n2") == {"cpu": 4 * M, "pods": 1 * M}
    usage.on_delete(pod("a", "n1"))
    assert usage.used("n1") == {}


def test_room_is_allocatable_minus_used_clamped():
    room = room_of(node("n", cpu="4"), {"cpu": 5 * M, "pods": 1 * M})
    assert room.free["cpu"] == 0
    assert room.free["pods"] == 109 * M


@pytest.mark.parametrize(
    ("request_", "free", "ok"),
    [
        ({"cpu": 2 * M}, {"cpu": 2 * M}, True),
        ({"cpu": 3 * M}, {"cpu": 2 * M}, False),
        ({GPU: 1 * M}, {"cpu": 8 * M}, False),  # the node lacks the resource
        ({GPU: 0}, {}, True),
    ],
)
def test_fits(request_, free, ok):
    assert fits(request_, free) is ok


def test_in_flight_pods_spread_over_the_freest_nodes():
    rooms = [Room("a", {"cpu": 4 * M}), Room("b", {"cpu": 3 * M})]
    for request in ({"cpu": 2 * M}, {"cpu": 2 * M}):
        take(spread_choice(rooms, request), request)
    assert [r.free["cpu"] for r in rooms] == [2 * M, 1 * M]
    assert spread_choice(rooms, {"cpu": 9 * M}) is None  # fits nowhere


def test_pods_in_flight_keep_their_tolerations_for_placing_their_room():
    flight = InFlight(lambda node: node == "kosmos-c1")
    tolerant = pod("u1", "kosmos-c1", cpu="2")
    tolerant["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    flight.host_pod(tolerant)
    flight.host_pod(pod("u2", "host-node", cpu="2"))  # not a leaf: not in flight
    ((uid, (request, tolerations)),) = flight.entries("kosmos-c1")
    assert uid == "u1" and request["cpu"] == 2 * M
    assert tolerations == [{"key": "dedicated", "operator": "Exists"}]


def test_misfit_when_no_single_node_has_enough_cpu():
    rooms = [Room("a", {"cpu": 16 * M, "pods": 100 * M}), Room("b", {"cpu": 12 * M, "pods": 9 * M})]
    reason = misfit("cluster1", rooms, {"cpu": 20 * M, "pods": 1 * M})
    assert reason == (
        "leaf node(s) of cluster1 with no member node that fits the pod "
        "(requests cpu 20; most free on one member node: cpu 16)"
    )
    assert misfit("cluster1", rooms, {"cpu": 10 * M, "pods": 1 * M}) is None


def test_misfit_when_resources_are_on_different_nodes():
    rooms = [Room("big", {"cpu": 16 * M}), Room("gpu", {"cpu": 2 * M, GPU: 1 * M})]
    reason = misfit("c", rooms, {"cpu": 4 * M, GPU: 1 * M})
    assert "no single member node has all of it free" in reason
    assert misfit("c", rooms, {"cpu": 2 * M, GPU: 1 * M}) is None


def test_misfit_shows_milli_cpu_and_mebibytes():
    rooms = [Room("a", {"cpu": 500, "memory": 2**30 * M})]
    reason = misfit("c", rooms, {"cpu": 750, "memory": 2 * 2**30 * M})
    assert "cpu 750m" in reason and "memory 2048Mi" in reason and "cpu 500m" in reason


def test_misfit_without_available_member_nodes():
    assert misfit("c", [], {"cpu": 1 * M}) == (
        "leaf node(s) of c with no Ready, schedulable member node"
    )


CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
GPU_ONLY = {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}


def test_room_keeps_only_the_taints_that_keep_pods_away():
    tainted = node("n")
    soft = {"key": "busy", "effect": "PreferNoSchedule"}
    tainted["spec"]["taints"] = [CONTROL_PLANE, soft, GPU_ONLY]
    assert room_of(tainted, {}).taints == (CONTROL_PLANE, GPU_ONLY)


def test_only_rooms_whose_taints_the_pod_tolerates_are_open():
    plain = Room("plain", {"cpu": 1 * M})
    control = Room("cp", {"cpu": 1 * M}, taints=(CONTROL_PLANE,))
    gpu = Room("gpu", {"cpu": 1 * M}, taints=(GPU_ONLY,))
    rooms = [plain, control, gpu]
    assert open_to(rooms, []) == [plain]
    everything = [{"operator": "Exists"}]
    assert open_to(rooms, everything) == rooms
    wrong_value = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]
    assert open_to(rooms, wrong_value) == [plain]
    assert open_to(rooms, [{"key": "dedicated", "operator": "Exists"}]) == [plain, gpu]


def test_misfit_when_every_member_node_is_tainted_against_the_pod():
    rooms = [Room("cp", {"cpu": 64 * M}, taints=(CONTROL_PLANE,))]
    assert misfit("c", rooms, {"cpu": 1 * M}) == (
        "leaf node(s) of c whose member nodes all have taints the pod does not tolerate "
        "(node-role.kubernetes.io/control-plane:NoSchedule)"
    )
    assert misfit("c", rooms, {"cpu": 1 * M}, [{"operator": "Exists"}]) is None


def test_misfit_counts_no_room_of_a_tainted_node_and_says_so():
    rooms = [
        Room("big", {"cpu": 16 * M}, taints=(GPU_ONLY,)),
        Room("small", {"cpu": 4 * M}),
    ]
    reason = misfit("c", rooms, {"cpu": 8 * M})
    assert reason == (
        "leaf node(s) of c with no member node that fits the pod (requests cpu 8; most free "
        "on one member node: cpu 4; 1 member node(s) with taints the pod does not tolerate)"
    )
    toleration = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute"}
    assert misfit("c", rooms, {"cpu": 8 * M}, [toleration]) is None


def test_availability():
    assert is_available(node("n"))
    assert not is_available(node("n", ready="False"))
    cordoned = node("n")
    cordoned["spec"]["unschedulable"] = True
    assert not is_available(cordoned)


def test_headroom_scores_the_best_single_node():
    big = Room("a", {"cpu": 8 * M, "memory": 8 * M}, {"cpu": 16 * M, "memory": 16 * M})
    small = Room("b", {"cpu": 2 * M, "memory": 2 * M}, {"cpu": 4 * M, "memory": 4 * M})
    assert headroom([small, big], {"cpu": 4 * M, "memory": 4 * M}) == 0.25
    assert headroom([small], {"cpu": 4 * M}) == 0.0


def test_usage_recounts_a_resized_pod_but_not_status_updates():
    usage = NodeUsage()
    usage.on_add(pod("a", "n1", cpu="2"))
    running = pod("a", "n1", cpu="2")
    running["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    usage.on_update(pod("a", "n1"), running)
    assert usage.used("n1") == {"cpu": 2 * M, "pods": 1 * M}
    usage.on_update(running, pod("a", "n1", cpu="3"))  # in-place resize
    assert usage.used("n1") == {"cpu": 3 * M, "pods": 1 * M}
