from fractions import Fraction

import pytest

from kosmos.api.podrequests import pod_requests
from kosmos.clustertree.capacity import (
    Free,
    fits,
    free_resources,
    is_available,
    occupies_node,
)

F = Fraction
GPU = "nvidia.com/gpu"


def node(name, ready="True", unschedulable=False, **allocatable):
    alloc = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi", "pods": "110"}
    alloc.update(allocatable)
    obj = {
        "metadata": {"name": name},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": ready}]},
    }
    return obj


def container(cpu=None, memory=None, restart=None, **extra):
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(extra)
    c = {"name": "c", "resources": {"requests": requests}}
    if restart:
        c["restartPolicy"] = restart
    return c


def pod(node_name="n1", containers=(), init=(), phase="Running", kosmos=False, **spec):
    labels = {"kosmos-io/pod": "true"} if kosmos else {}
    body = {"containers": list(containers), "initContainers": list(init), **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"metadata": {"labels": labels}, "spec": body, "status": {"phase": phase}}


# --- availability ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "available"),
    [
        (node("n"), True),
        (node("n", ready="False"), False),
        (node("n", ready="Unknown"), False),
        (node("n", unschedulable=True), False),
        ({"metadata": {"name": "n"}}, False),  # no conditions yet
    ],
)
def test_is_available(obj, available):
    assert is_available(obj) is available


@pytest.mark.parametrize(
    ("obj", "occupies"),
    [
        (pod(), True),
        (pod(phase="Pending"), True),  # bound, not started: still reserved
        (pod(phase="Succeeded"), False),
        (pod(phase="Failed"), False),
        (pod(node_name=None), False),
        (pod(kosmos=True), False),  # its host twin is counted by the host scheduler
    ],
)
def test_occupies_node(obj, occupies):
    assert occupies_node(obj) is occupies


# --- pod requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pod(), {}),
        (pod(containers=[container("100m", "64Mi")]), {"cpu": F(1, 10), "memory": F(64 * 2**20)}),
        (
            pod(containers=[container("100m", "64Mi"), container("0.4", "1Gi")]),
            {"cpu": F(1, 2), "memory": F(64 * 2**20 + 2**30)},
        ),
        (
            # init containers run one at a time: the largest counts if it beats the sum
            pod(
                containers=[container("1", "1Gi")],
                init=[container("2", "512Mi"), container("1500m")],
            ),
            {"cpu": F(2), "memory": F(2**30)},
        ),
        (
            # sidecars run alongside: they add to the sum and to later init containers
            pod(
                containers=[container("1", "1Gi")],
                init=[container("500m", "1Gi", restart="Always"), container("1", "1Gi")],
            ),
            {"cpu": F(3, 2), "memory": F(2 * 2**30)},
        ),
        (
            pod(
                containers=[container("100m")],
                init=[container("1", restart="Always"), container("3")],
            ),
            {"cpu": F(4)},  # init 3 + sidecar 1 beats containers 0.1 + sidecar 1
        ),
        (
            pod(containers=[container("1", "1Gi")], overhead={"cpu": "250m", "memory": "120Mi"}),
            {"cpu": F(5, 4), "memory": F(2**30 + 120 * 2**20)},
        ),
        (
            # pod-level requests replace cpu/memory; other resources still add up
            pod(
                containers=[container("1", "1Gi", **{GPU: "1"})],
                resources={"requests": {"cpu": "3", "memory": "4Gi"}},
                overhead={"cpu": "1"},
            ),
            {"cpu": F(4), "memory": F(4 * 2**30), "nvidia.com/gpu": F(1)},
        ),
        (
            pod(containers=[container(**{GPU: "2"}), container(**{"hugepages-2Mi": "4Mi"})]),
            {"nvidia.com/gpu": F(2), "hugepages-2Mi": F(4 * 2**20)},
        ),
    ],
)
def test_pod_requests(obj, expected):
    assert pod_requests(obj) == expected


# --- free resources ----------------------------------------------------------------------------


def test_no_nodes_reports_zero():
    assert free_resources([], [pod()]) == Free(
        allocatable={"cpu": "0", "ephemeral-storage": "0", "memory": "0", "pods": "0"},
        largest_node={},
        nodes=0,
    )


def test_sum_of_available_nodes_minus_pods():
    nodes = [
        node("n1"),
        node("n2", cpu="2", memory="4Gi"),
        node("cordoned", unschedulable=True),
        node("sick", ready="False"),
    ]
    pods = [
        pod("n1", [container("1500m", "1Gi")]),
        pod("n2", [container("500m", "512Mi")], phase="Pending"),
        pod("n1", [container("1", "1Gi")], kosmos=True),  # kosmos pod: not subtracted
        pod("n1", [container("1", "1Gi")], phase="Succeeded"),
        pod("cordoned", [container("1", "1Gi")]),  # on an unavailable node
        pod("elsewhere", [container("1", "1Gi")]),  # not one of our nodes
        pod(None, [container("1", "1Gi")]),  # unscheduled
    ]
    free = free_resources(nodes, pods)
    assert free.nodes == 2
    assert free.allocatable == {
        "cpu": "4",  # 4 + 2 - 1.5 - 0.5
        "ephemeral-storage": "200Gi",
        "memory": "10752Mi",  # 12Gi - 1.5Gi
        "pods": "218",
    }
    assert free.largest_node == {
        "cpu": "2500m",
        "ephemeral-storage": "100Gi",
        "memory": "7Gi",
        "pods": "109",
    }


def test_over_committed_node_is_clamped_per_node():
    nodes = [node("full", cpu="1", memory="1Gi"), node("roomy", cpu="2", memory="2Gi")]
    pods = [pod("full", [container("3", "3Gi")])]
    free = free_resources(nodes, pods)
    # "full" has no room, but it does not eat the room of "roomy"
    assert free.allocatable["cpu"] == "2"
    assert free.allocatable["memory"] == "2Gi"
    assert free.largest_node["cpu"] == "2"


def test_pods_slots_are_subtracted_and_clamped():
    nodes = [node("n1", pods="2")]
    pods = [pod("n1"), pod("n1"), pod("n1")]
    assert free_resources(nodes, pods).allocatable["pods"] == "0"


def test_extended_resources_are_covered():
    nodes = [
        node("a", **{GPU: "4"}, **{"hugepages-2Mi": "1Gi"}),
        node("b", **{GPU: "2"}),
    ]
    pods = [
        pod("a", [container(**{GPU: "1"}, **{"hugepages-2Mi": "256Mi"})]),
        pod("b", [container(**{GPU: "2"}, **{"example.com/foo": "1"})]),  # b lacks foo: ignored
    ]
    free = free_resources(nodes, pods)
    assert free.allocatable["nvidia.com/gpu"] == "3"
    assert free.allocatable["hugepages-2Mi"] == "768Mi"
    assert "example.com/foo" not in free.allocatable


@pytest.mark.parametrize(
    ("nodes", "pods", "largest"),
    [
        # most free cpu wins
        ([node("a", cpu="2"), node("b", cpu="3")], [], "b"),
        # cpu tie: most free memory wins
        ([node("a", memory="4Gi"), node("b", memory="6Gi")], [], "b"),
        # full tie: the smaller name, whatever the input order
        ([node("b"), node("a", **{"ephemeral-storage": "1Gi"})], [], "a"),
        # free, not allocatable, decides
        ([node("a", cpu="8"), node("b", cpu="4")], [pod("a", [container("5")])], "b"),
    ],
)
def test_largest_node(nodes, pods, largest):
    free = free_resources(nodes, pods)
    by_name = {n["metadata"]["name"]: n for n in nodes}
    expected = free_resources([by_name[largest]], pods).allocatable
    expected = {k: v for k, v in expected.items() if k in by_name[largest]["status"]["allocatable"]}
    assert free.largest_node == expected


def test_quantities_are_exact():
    nodes = [node("n1", cpu="1", memory="1Gi")]
    pods = [pod("n1", [container("0.1")]) for _ in range(3)]
    assert free_resources(nodes, pods).allocatable["cpu"] == "700m"


# --- fits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "free", "ok"),
    [
        ({}, {}, True),
        ({"cpu": "1"}, {"cpu": "1"}, True),
        ({"cpu": "1001m"}, {"cpu": "1"}, False),
        ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "1024Mi"}, True),
        ({"memory": "1.5Gi"}, {"memory": "1Gi"}, False),
        ({"nvidia.com/gpu": "1"}, {"cpu": "8"}, False),  # absent means zero
        ({"nvidia.com/gpu": "0"}, {"cpu": "8"}, True),
        ({"pods": "1"}, {"pods": "0"}, False),
        ({"cpu": F(1, 2)}, {"cpu": "500m"}, True),
    ],
)
def test_fits(request_, free, ok):
    assert fits(request_, free) is ok
