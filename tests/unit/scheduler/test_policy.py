"""Which term governs a pod: one row per precedence rule and tie-break."""

import pytest

from kosmos.scheduler.policy import is_daemon_pod, match


def pod(name="web-1", labels=None, namespace="ns"):
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}


def policy(name, *selectors, namespace="ns", terms=("host", "leaf", "mix")):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "metadata": meta,
        "spec": {
            "resourceSelectors": list(selectors),
            "policyTerms": [{"name": t, "nodeType": t} for t in terms],
        },
    }


def by_name(n, term):
    return {"name": n, "policyName": term}


def by_prefix(p, term):
    return {"namePrefix": p, "policyName": term}


def by_labels(term, match_labels=None, expressions=None):
    selector = {}
    if match_labels is not None:
        selector["matchLabels"] = match_labels
    if expressions is not None:
        selector["matchExpressions"] = expressions
    return {"labelSelector": selector, "policyName": term}


def winner(p, namespaced=(), cluster=()):
    found = match(p, list(namespaced), list(cluster))
    return None if found is None else (found.policy, found.selector, found.term_name)


# The sample policy tests/integration/api/seed_examples/04-distributionpolicy-busybox.yaml.
SEED_NS = policy(
    "kosmos-node-distribution-policy",
    by_name("busybox", "leaf"),
    by_prefix("busybox-prefix", "host"),
    by_labels("mix", {"example-distribution-policy": "busybox"}),
    namespace="test-name-scope",
)


@pytest.mark.parametrize(
    ("name", "labels", "term"),
    [
        ("busybox", {}, "leaf"),  # exact name
        ("busybox-prefix-x1", {}, "host"),  # prefix
        ("busybox-69855845c9-2pl7f", {"example-distribution-policy": "busybox"}, "mix"),
        ("busybox-prefix-x1", {"example-distribution-policy": "busybox"}, "host"),
        ("busybox", {"example-distribution-policy": "busybox"}, "leaf"),
        ("other", {}, None),
    ],
)
def test_seed_policy(name, labels, term):
    found = winner(pod(name, labels, "test-name-scope"), [SEED_NS])
    assert (found[2] if found else None) == term


def test_namespaced_beats_cluster_scoped_even_with_a_weaker_selector():
    cluster = policy("c", by_name("web-1", "host"), namespace=None)
    namespaced = policy("n", by_labels("leaf", {}), namespace="ns")
    assert winner(pod(), [namespaced], [cluster]) == ("ns/n", 0, "leaf")


def test_cluster_scoped_applies_when_no_namespaced_policy_matches():
    cluster = policy("c", by_prefix("web", "host"), namespace=None)
    namespaced = policy("n", by_name("db-0", "leaf"), namespace="ns")
    assert winner(pod(), [namespaced], [cluster]) == ("c", 0, "host")


def test_name_beats_prefix_beats_labels():
    p = policy("p", by_labels("mix", {}), by_prefix("web", "host"), by_name("web-1", "leaf"))
    assert winner(pod(), [p]) == ("ns/p", 2, "leaf")
    assert winner(pod("web-2"), [p]) == ("ns/p", 1, "host")
    assert winner(pod("db"), [p]) == ("ns/p", 0, "mix")


def test_name_beats_prefix_across_policies():
    a = policy("a", by_prefix("web-", "host"), namespace="ns")
    b = policy("b", by_name("web-1", "leaf"), namespace="ns")
    assert winner(pod(), [a, b]) == ("ns/b", 0, "leaf")


def test_longer_prefix_wins():
    a = policy("a", by_prefix("web", "host"), namespace="ns")
    b = policy("b", by_prefix("web-1", "leaf"), namespace="ns")
    assert winner(pod(), [a, b]) == ("ns/b", 0, "leaf")


def test_selector_with_more_requirements_wins():
    a = policy("a", by_labels("host", {"app": "web"}), namespace="ns")
    b = policy("b", by_labels("leaf", {"app": "web", "tier": "fe"}), namespace="ns")
    p = pod(labels={"app": "web", "tier": "fe"})
    assert winner(p, [a, b]) == ("ns/b", 0, "leaf")


def test_equal_rank_goes_to_the_policy_whose_name_sorts_first_in_any_order():
    a = policy("alpha", by_labels("host", {"app": "web"}), namespace="ns")
    z = policy("zulu", by_labels("leaf", {"app": "web"}), namespace="ns")
    p = pod(labels={"app": "web"})
    assert winner(p, [a, z]) == winner(p, [z, a]) == ("ns/alpha", 0, "host")


def test_equal_rank_in_one_policy_goes_to_the_first_selector():
    p = policy("p", by_labels("host", {"app": "web"}), by_labels("leaf", {"tier": "fe"}))
    assert winner(pod(labels={"app": "web", "tier": "fe"}), [p]) == ("ns/p", 0, "host")


@pytest.mark.parametrize(
    ("labels", "matched"),
    [
        ({"app": "web", "tier": "fe"}, True),
        ({"app": "web"}, False),  # every matchLabels pair must hold (the original: any)
        ({"app": "web", "tier": "fe", "env": "prod"}, False),  # NotIn
    ],
)
def test_label_selector_has_the_standard_meaning(labels, matched):
    p = policy(
        "p",
        by_labels(
            "leaf",
            {"app": "web", "tier": "fe"},
            [{"key": "env", "operator": "NotIn", "values": ["prod"]}],
        ),
    )
    assert (winner(pod(labels=labels), [p]) is not None) is matched


def test_selector_naming_a_missing_term_is_skipped():
    p = policy("p", by_name("web-1", "gone"), by_prefix("web", "host"))
    assert winner(pod(), [p]) == ("ns/p", 1, "host")


def test_default_node_type_is_mix():
    p = policy("p", by_name("web-1", "t"))
    p["spec"]["policyTerms"] = [{"name": "t"}]
    assert match(pod(), [p], []).node_type == "mix"


def test_describe_names_policy_selector_and_term():
    found = match(pod(), [policy("p", by_name("web-1", "leaf"), namespace="ns")], [])
    assert found.describe() == (
        "DistributionPolicy ns/p resourceSelectors[0] (name) -> term leaf (leaf)"
    )


def test_daemonset_pods():
    owned = {"metadata": {"ownerReferences": [{"kind": "DaemonSet", "controller": True}]}}
    assert is_daemon_pod(owned)
    assert not is_daemon_pod(pod())
