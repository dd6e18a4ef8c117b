"""Distribution policies through the real kube-scheduler: the seed sample, each nodeType,
each precedence rule, the implicit leaf toleration and upstream taints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.scheduler import SchedulerEnv
from tests.integration.scheduler.support import (
    HOST_WORKERS,
    LEAVES,
    bound,
    events,
    nodes_of,
    pod,
    policy,
)
from tests.support import apply, get, wait_for

SEEDS = Path(__file__).parent.parent / "api" / "seed_examples"
BUSYBOX = Path(__file__).parent / "seed_examples" / "busybox.yaml"
SEED_NAMESPACE = "test-name-scope"


def terms(*node_types: str, **adv: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [{"name": t, "nodeType": t} for t in node_types]
    if adv:
        out.append({"name": "adv", "nodeType": "adv", "advancedTerm": adv})
    return out


def place(
    env: SchedulerEnv,
    namespace: str,
    count: int,
    prefix: str,
    labels: dict[str, str] | None = None,
    **spec: object,
) -> set[str]:
    """Create ``count`` pods named ``<prefix>-<i>`` and return the nodes they are bound to."""
    pods = [pod(f"{prefix}-{i}", {"run": prefix, **(labels or {})}, **spec) for i in range(count)]
    apply(env.host, *pods, namespace=namespace)
    return set(nodes_of(bound(env.host, namespace, count, f"run={prefix}")))


def test_seed_busybox_sample_lands_on_host_and_leaf_nodes_as_the_doc_shows(workers):
    host = workers.host
    if host.ok("get", "namespace", SEED_NAMESPACE):  # left by another run: start afresh
        host.run("delete", "namespace", SEED_NAMESPACE, timeout=120)
    host.run("create", "namespace", SEED_NAMESPACE)
    try:
        for seed in (
            "04-distributionpolicy-busybox.yaml",
            "05-clusterdistributionpolicy-cluster-busybox.yaml",
        ):
            host.run("apply", "-f", str(SEEDS / seed))
        host.run("apply", "-f", str(BUSYBOX))
        pods = bound(host, SEED_NAMESPACE, 3, "app=busybox")
        placed = nodes_of(pods)
        # the labelSelector selector matched (term mix); anti-affinity puts each on its own node
        assert len(placed) == 3
        assert set(placed) & set(HOST_WORKERS), placed
        assert set(placed) & set(LEAVES), placed
        assert set(placed) <= {*HOST_WORKERS, *LEAVES}
        table = host.run("get", "pods", "-n", SEED_NAMESPACE, "-o", "wide")
        assert "kosmos-cluster" in table and "host-worker" in table
    finally:
        host.run("delete", "namespace", SEED_NAMESPACE, "--wait=false")
        host.run("delete", "clusterdistributionpolicy", "kosmos-node-cluster-distribution-policy")


def test_node_type_host_keeps_pods_on_host_nodes(workers, namespace):
    apply(
        workers.host,
        policy("p", [{"namePrefix": "h-", "policyName": "host"}], terms("host"), namespace),
    )
    assert place(workers, namespace, 3, "h") <= set(HOST_WORKERS)


def test_node_type_leaf_keeps_pods_on_leaf_nodes(workers, namespace):
    apply(
        workers.host,
        policy("p", [{"namePrefix": "l-", "policyName": "leaf"}], terms("leaf"), namespace),
    )
    assert place(workers, namespace, 3, "l") <= set(LEAVES)


def test_node_type_mix_uses_host_and_leaf_nodes(workers, namespace):
    apply(
        workers.host,
        policy("p", [{"namePrefix": "m-", "policyName": "mix"}], terms("mix"), namespace),
    )
    spread = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"run": "m"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    assert place(workers, namespace, 4, "m", affinity=spread) == {*HOST_WORKERS, *LEAVES}


def test_node_type_adv_node_name(workers, namespace):
    adv = policy(
        "p",
        [{"namePrefix": "a-", "policyName": "adv"}],
        terms(nodeName="kosmos-cluster2"),
        namespace,
    )
    apply(workers.host, adv)
    assert place(workers, namespace, 3, "a") == {"kosmos-cluster2"}


def test_node_type_adv_node_selector(workers, namespace):
    adv = policy(
        "p",
        [{"namePrefix": "s-", "policyName": "adv"}],
        terms(nodeSelector={"advNode": "true"}),
        namespace,
    )
    apply(workers.host, adv)
    assert place(workers, namespace, 2, "s") == {"host-worker1"}


def test_node_type_adv_tolerations_select_the_tainted_nodes(workers, namespace):
    dedicated = [
        {"key": "dedicated", "operator": "Equal", "value": "kosmos", "effect": "NoSchedule"}
    ]
    adv = policy(
        "p", [{"namePrefix": "t-", "policyName": "adv"}], terms(tolerations=dedicated), namespace
    )
    apply(workers.host, adv)
    # the pods tolerate the taint (so every node is open to them); the term admits only tainted ones
    assert place(workers, namespace, 2, "t", tolerations=dedicated) == {"host-worker3"}


def test_namespaced_policy_wins_over_cluster_policy(workers, namespace):
    # the cluster policy selects by name (its strongest way), the namespaced one by labels
    prefix = f"{namespace}-x"
    cluster_wide = policy(
        f"{namespace}-c", [{"namePrefix": prefix, "policyName": "host"}], terms("host"), None
    )
    by_team = [{"labelSelector": {"matchLabels": {"team": "a"}}, "policyName": "leaf"}]
    apply(workers.host, cluster_wide, policy("n", by_team, terms("leaf"), namespace))
    try:
        assert place(workers, namespace, 2, prefix, {"team": "a"}) <= set(LEAVES)
    finally:
        workers.host.run("delete", "clusterdistributionpolicy", f"{namespace}-c")


def test_cluster_policy_applies_without_a_namespaced_match(workers, namespace):
    cluster_wide = policy(
        f"{namespace}-c",
        [{"namePrefix": f"{namespace}-y", "policyName": "host"}],
        terms("host"),
        None,
    )
    apply(workers.host, cluster_wide)
    try:
        assert place(workers, namespace, 2, f"{namespace}-y") <= set(HOST_WORKERS)
    finally:
        workers.host.run("delete", "clusterdistributionpolicy", f"{namespace}-c")


def test_name_wins_over_name_prefix(workers, namespace):
    selectors = [
        {"namePrefix": "web-", "policyName": "host"},
        {"name": "web-0", "policyName": "leaf"},
    ]
    apply(workers.host, policy("p", selectors, terms("host", "leaf"), namespace))
    apply(workers.host, pod("web-0"), pod("web-1"), namespace=namespace)
    placed = {
        p["metadata"]["name"]: p["spec"]["nodeName"] for p in bound(workers.host, namespace, 2)
    }
    assert placed["web-0"] in LEAVES
    assert placed["web-1"] in HOST_WORKERS


def test_name_prefix_wins_over_label_selector(workers, namespace):
    selectors = [
        {"labelSelector": {"matchLabels": {"tier": "web"}}, "policyName": "leaf"},
        {"namePrefix": "fe-", "policyName": "host"},
    ]
    apply(workers.host, policy("p", selectors, terms("host", "leaf"), namespace))
    apply(
        workers.host,
        pod("fe-0", {"tier": "web"}),
        pod("be-0", {"tier": "web"}),
        namespace=namespace,
    )
    placed = {
        p["metadata"]["name"]: p["spec"]["nodeName"] for p in bound(workers.host, namespace, 2)
    }
    assert placed["fe-0"] in HOST_WORKERS
    assert placed["be-0"] in LEAVES


def test_equal_matches_go_to_the_policy_whose_name_sorts_first(workers, namespace):
    by_label = [{"labelSelector": {"matchLabels": {"tie": "yes"}}, "policyName": "t"}]
    zulu = policy("zulu", by_label, [{"name": "t", "nodeType": "host"}], namespace)
    alpha = policy("alpha", by_label, [{"name": "t", "nodeType": "leaf"}], namespace)
    apply(workers.host, zulu, alpha)
    apply(workers.host, *(pod(f"tie-{i}", {"tie": "yes"}) for i in range(2)), namespace=namespace)
    assert set(nodes_of(bound(workers.host, namespace, 2))) <= set(LEAVES)


def test_leaf_taint_is_tolerated_implicitly_and_other_taints_as_upstream(workers, namespace):
    # no tolerations written: admission adds the leaf one for schedulerName kosmos-scheduler
    on_leaf = pod("leafy", nodeSelector={"kosmos.io/node": "true"})
    on_tainted = pod("tainted", nodeSelector={"kubernetes.io/hostname": "host-worker3"})
    apply(workers.host, on_leaf, on_tainted, namespace=namespace)
    leafy = wait_for(
        lambda: (
            (p := get(workers.host, "pod", "leafy", "-n", namespace))["spec"].get("nodeName") and p
        ),
        60,
        "leafy bound",
    )
    assert leafy["spec"]["nodeName"] in LEAVES
    tolerations = leafy["spec"]["tolerations"]
    assert {"key": "kosmos.io/node", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    # like any pod that may run on a leaf node: no 300 s eviction when a member is away
    lifecycle = [t for t in tolerations if t["key"].startswith("node.kubernetes.io/")]
    assert lifecycle and all("tolerationSeconds" not in t for t in lifecycle)
    messages = wait_for(lambda: events(workers.host, namespace, "tainted"), 60, "FailedScheduling")
    # TaintToleration as upstream: host-worker3's taint (and the control-plane ones) refused
    assert any("had untolerated taint" in m for m in messages), messages
    assert not get(workers.host, "pod", "tainted", "-n", namespace)["spec"].get("nodeName")


@pytest.mark.parametrize("scheduler_name", ["default-scheduler"])
def test_pods_of_other_schedulers_are_not_touched(workers, namespace, scheduler_name):
    plain = pod("plain", schedulerName=scheduler_name)
    apply(workers.host, plain, namespace=namespace)
    created = get(workers.host, "pod", "plain", "-n", namespace)
    assert not any(t.get("key") == "kosmos.io/node" for t in created["spec"].get("tolerations", []))
