"""The kubelet endpoint's authn/authz decisions, as a kubelet in webhook mode makes them."""

from __future__ import annotations

from kosmos.clustertree.kubeletauth import (
    User,
    access_review,
    subresources,
    user_of_certificate,
    user_of_review,
    verb,
)


def test_paths_map_to_the_kubelets_node_subresources():
    assert subresources("/stats/summary") == ["stats"]
    assert subresources("/metrics/resource") == ["metrics"]
    assert subresources("/pods") == ["pods", "proxy"]
    assert subresources("/healthz") == ["healthz", "proxy"]
    assert subresources("/exec/ns/pod/c") == ["proxy"]
    assert subresources("/portForward/ns/pod") == ["proxy"]
    assert subresources("/containerLogs/ns/pod/c") == ["proxy"]
    assert subresources("/podsx") == ["proxy"]  # a prefix is a whole segment
    assert (verb("GET"), verb("POST"), verb("OPTIONS")) == ("get", "create", "")


def test_a_certificate_names_the_user_and_its_groups():
    peer = {
        "subject": (
            (("organizationName", "system:masters"),),
            (("commonName", "kube-apiserver-kubelet-client"),),
        )
    }
    assert user_of_certificate(peer) == User("kube-apiserver-kubelet-client", ("system:masters",))
    assert user_of_certificate({"subject": ()}) is None


def test_token_reviews_and_the_access_review_sent():
    review = {
        "status": {
            "authenticated": True,
            "user": {
                "username": "system:serviceaccount:kube-system:metrics-server",
                "uid": "u1",
                "groups": ["system:serviceaccounts"],
                "extra": {"authentication.kubernetes.io/pod-name": ["ms-1"]},
            },
        }
    }
    user = user_of_review(review)
    assert user is not None and user.name.endswith(":metrics-server")
    assert user_of_review({"status": {"authenticated": False}}) is None
    sar = access_review(user, "get", "metrics", "kosmos-cluster1")
    assert sar["spec"]["resourceAttributes"] == {
        "verb": "get",
        "resource": "nodes",
        "subresource": "metrics",
        "name": "kosmos-cluster1",
        "version": "v1",
    }
    assert sar["spec"]["uid"] == "u1"
    assert sar["spec"]["extra"] == {"authentication.kubernetes.io/pod-name": ["ms-1"]}
    assert sar["spec"]["groups"] == ["system:serviceaccounts"]
