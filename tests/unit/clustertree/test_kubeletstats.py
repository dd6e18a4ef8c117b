"""The leaf node's read API from its member nodes' answers (pure translation)."""

from __future__ import annotations

from kosmos.clustertree.kubeletstats import (
    HostPod,
    parse_samples,
    pod_list,
    resource_metrics,
    summary,
)
from kosmos.clustertree.leafports import allocate_port

COPIES = {("app", "web"): HostPod("app", "web", "host-uid")}

MEMBER_A = """# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time of the node
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 10.5 1000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 100 1000
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="main",namespace="app",pod="web"} 0.25 1001
container_cpu_usage_seconds_total{container="dns",namespace="kube-system",pod="coredns"} 9 1001
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="app",pod="web"} 4096 1002
pod_memory_working_set_bytes{namespace="app",pod="not-a-copy"} 1 1002
# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""
MEMBER_B = """# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 4.5 2000
node_memory_working_set_bytes 50 2000
scrape_error 1
"""


def test_pod_list_is_a_v1_pod_list_of_the_pods_given():
    listed = pod_list([{"metadata": {"name": "a"}}])
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "PodList")
    assert listed["items"] == [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}]


def test_node_metrics_are_summed_and_only_copies_are_reported_under_host_names():
    text = resource_metrics([MEMBER_A, MEMBER_B], COPIES, failed=False)
    samples = {(n, tuple(sorted(labels.items()))): v for n, labels, v in parse_samples(text)}
    assert samples[("node_cpu_usage_seconds_total", ())] == 15.0
    assert samples[("node_memory_working_set_bytes", ())] == 150
    key = (("container", "main"), ("namespace", "app"), ("pod", "web"))
    assert samples[("container_cpu_usage_seconds_total", key)] == 0.25
    assert samples[("pod_memory_working_set_bytes", (("namespace", "app"), ("pod", "web")))] == 4096
    assert samples[("scrape_error", ())] == 0
    assert "coredns" not in text and "not-a-copy" not in text
    assert "node_cpu_usage_seconds_total 15 2000" in text  # the latest timestamp
    assert text.count("# TYPE node_cpu_usage_seconds_total counter") == 1
    assert "# HELP container_cpu_usage_seconds_total" in text


def test_no_member_answer_is_a_scrape_error():
    text = resource_metrics([], COPIES, failed=True)
    assert parse_samples(text) == [("scrape_error", {}, 1.0)]
    assert "# TYPE scrape_error gauge" in text


def test_summary_sums_nodes_and_renames_copies_to_host_pods():
    node = {"startTime": "2026-01-02T00:00:00Z", "cpu": {"time": "t1", "usageNanoCores": 10}}
    other = {
        "startTime": "2026-01-01T00:00:00Z",
        "cpu": {"time": "t2", "usageNanoCores": 5, "usageCoreNanoSeconds": 7},
        "memory": {"time": "t2", "workingSetBytes": 3},
    }
    web = {"podRef": {"name": "web", "namespace": "app", "uid": "member-uid"}, "containers": []}
    system = {"podRef": {"name": "coredns", "namespace": "kube-system", "uid": "u"}}
    result = summary(
        "kosmos-c1", [{"node": node, "pods": [web, system]}, {"node": other, "pods": []}], COPIES
    )
    assert result["node"]["nodeName"] == "kosmos-c1"
    assert result["node"]["startTime"] == "2026-01-01T00:00:00Z"
    assert result["node"]["cpu"] == {"time": "t2", "usageNanoCores": 15, "usageCoreNanoSeconds": 7}
    assert result["node"]["memory"] == {"time": "t2", "workingSetBytes": 3}
    assert result["pods"] == [
        {"podRef": {"name": "web", "namespace": "app", "uid": "host-uid"}, "containers": []}
    ]


def test_leaf_ports_are_kept_and_new_leaves_take_the_lowest_free_one():
    claimed: dict[str, int] = {}
    assert allocate_port(claimed, "a", None, 10250) == 10250
    assert allocate_port(claimed, "b", None, 10250) == 10251
    assert allocate_port(claimed, "a", 10250, 10250) == 10250  # kept
    # a node still carrying a port another leaf holds (all shared one port before) moves
    assert allocate_port(claimed, "c", 10250, 10250) == 10252
    del claimed["b"]
    assert allocate_port(claimed, "d", 80, 10250) == 10251  # below the base: reallocated
