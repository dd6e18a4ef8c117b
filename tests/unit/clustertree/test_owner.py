"""``--owner``: several control planes share one member (kubenest's k8s-in-k8s, tenants
sharing the host); each cluster-manager's pods and copies carry its owner label and only
those are its own."""

from types import SimpleNamespace

import pytest

from kosmos.api import names
from kosmos.api.leafmodel import LeafNode
from kosmos.clustertree.clusters import POD_SELECTOR, owned
from kosmos.clustertree.copies import desired_copy, ensure_copy
from kosmos.clustertree.nodeforge import node_labels
from kosmos.clustertree.podforge import is_kosmos_pod
from kosmos.kube.controller import TerminalError
from tests.unit.clustertree.test_podforge import forge


def test_a_member_pod_carries_its_owner_and_only_its_owner_takes_it_for_its_own():
    pod = forge(owner="u-1")
    assert pod["metadata"]["labels"][names.LABEL_TREE_OWNER] == "u-1"
    assert is_kosmos_pod(pod, "u-1")
    assert not is_kosmos_pod(pod, "u-2")  # another tenant's pod in the shared host
    assert is_kosmos_pod(pod)  # a cluster-manager without --owner: every Kosmos pod
    unowned = forge()
    assert names.LABEL_TREE_OWNER not in unowned["metadata"]["labels"]
    assert not is_kosmos_pod(unowned, "u-1")


def test_copies_carry_the_owner_and_the_clean_up_selects_only_them():
    source = {"metadata": {"name": "c", "namespace": "default", "labels": {"a": "b"}}, "data": {}}
    assert desired_copy("configmaps", source, "u-1")["metadata"]["labels"] == {
        "a": "b",
        names.LABEL_MANAGED_BY: names.MANAGED_BY_KOSMOS,
        names.LABEL_TREE_OWNER: "u-1",
    }
    assert names.LABEL_TREE_OWNER not in desired_copy("configmaps", source)["metadata"]["labels"]
    assert POD_SELECTOR + owned("u-1") == f"{names.LABEL_POD}=true,{names.LABEL_TREE_OWNER}=u-1"
    assert owned("") == ""


def test_a_leaf_node_never_carries_kwoks_label_of_the_member_node():
    """The leaf's own cluster may run a kwok adopting nodes by that label (a kubenest
    tenant's): it would take the leaf node, and run its pods, itself."""
    leaf = LeafNode("n1", "m1", "one-to-one", member_node="n1")
    member = {
        "metadata": {
            "name": "n1",
            "labels": {names.LABEL_KWOK_NODE: "fake", "zone": "a", names.LABEL_HOSTNAME: "n1"},
        }
    }
    labels = node_labels(leaf, [member])
    assert names.LABEL_KWOK_NODE not in labels
    assert labels["zone"] == "a"


class _Store:
    def __init__(self, objects):
        self.objects = objects

    def get(self, key):
        return self.objects.get(key)


class _Client:
    def __init__(self):
        self.calls = []

    async def create(self, resource, body):
        self.calls.append(("create", body["metadata"]["name"]))

    async def replace(self, resource, body):
        self.calls.append(("replace", body["metadata"]["name"]))


def _tree(owner, current):
    client = _Client()
    store = _Store({"default/c": current} if current else {})
    tree = SimpleNamespace(
        options=SimpleNamespace(owner=owner),
        manager=SimpleNamespace(client=lambda _cluster: client),
        member=lambda *_a, **_k: SimpleNamespace(store=store),
        foreign=set(),
    )
    return tree, client


async def test_another_owners_copy_is_neither_used_nor_overwritten():
    source = {"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "mine"}}
    theirs = desired_copy("configmaps", {**source, "data": {"k": "theirs"}}, "u-2")
    theirs["metadata"]["resourceVersion"] = "1"
    tree, client = _tree("u-1", theirs)
    with pytest.raises(TerminalError, match="another control plane"):
        await ensure_copy(tree, "kosmos-host", "configmaps", source)
    assert client.calls == []
    ours = desired_copy("configmaps", {**source, "data": {"k": "old"}}, "u-1")
    ours["metadata"]["resourceVersion"] = "1"
    tree, client = _tree("u-1", ours)
    await ensure_copy(tree, "kosmos-host", "configmaps", source)
    assert client.calls == [("replace", "c")]
    tree, client = _tree("", theirs)  # no --owner: every Kosmos copy is ours, as before
    await ensure_copy(tree, "kosmos-host", "configmaps", source)
    assert client.calls == [("replace", "c")]
