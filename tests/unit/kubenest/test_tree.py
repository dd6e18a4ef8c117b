"""k8s-in-k8s (the clustertree plugin): the pure forge of the host credential and the
tenant's Cluster, the steps of ``TreeSetup`` on in-memory clusters, and the node
reconciler keeping the nodes in the host."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kosmos.api import names
from kosmos.api.objects import Obj, condition_of
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERS,
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    MUTATING_ADMISSION_POLICIES,
    MUTATING_ADMISSION_POLICY_BINDINGS,
    NODES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    VIRTUAL_CLUSTERS,
    Resource,
)
from kosmos.kube.client import ObjectList
from kosmos.kubenest import moves, phases, treeplugin
from kosmos.kubenest.provider import ProviderError
from kosmos.kubenest.treesetup import TreeSetup
from tests.unit.kubenest.fakes import FakeClient, merge
from tests.unit.kubenest.test_nodes import Rig

NS = "test-521-8"
PLUGIN = {"enabled": [{"name": "clustertree"}]}


def vc(**spec: Any) -> Obj:
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"name": NS, "namespace": NS, "uid": "u-1"},
        "spec": {"pluginSet": PLUGIN, **spec},
    }


# -- the pure part ---------------------------------------------------------------------------


def test_the_plugin_is_opt_in_and_can_be_disabled() -> None:
    assert treeplugin.enabled(vc())
    assert not treeplugin.enabled({"spec": {}})
    assert not treeplugin.enabled({"spec": {"pluginSet": {"enabled": [{"name": "other"}]}}})
    both = {"enabled": [{"name": "clustertree"}], "disabled": [{"name": "clustertree"}]}
    assert not treeplugin.enabled({"spec": {"pluginSet": both}})


def test_the_host_credential_is_a_service_account_with_exactly_clustertrees_rights() -> None:
    sa, token, role, binding = treeplugin.host_objects(vc())
    assert (sa["kind"], sa["metadata"]["name"], sa["metadata"]["namespace"]) == (
        "ServiceAccount",
        f"kosmos-tree-{NS}",
        NS,
    )
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {treeplugin.SA_ANNOTATION: f"kosmos-tree-{NS}"}
    for owned in (sa, token):  # the garbage collector finishes what the operator did not
        assert owned["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == f"kosmos-tree-{NS}-{NS}"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"kosmos-tree-{NS}", "namespace": NS}
    ]
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])  # core only: no RBAC, CRDs
    assert not any("*" in (r, v) for r, v in granted)
    assert ("pods", "create") in granted and ("pods/exec", "create") in granted
    assert ("nodes", "list") in granted and ("nodes", "patch") not in granted
    assert not {r for r, _v in granted} & {"nodes/proxy", "services", "events", "nodes/status"}
    assert ("namespaces", "delete") not in granted and ("namespaces", "list") not in granted
    for labelled in (sa, token, role, binding):
        assert labelled["metadata"]["labels"] == {names.LABEL_VIRTUAL_CLUSTER: f"{NS}.{NS}"}


def test_the_tenants_cluster_has_one_leaf_per_node_and_no_link() -> None:
    cluster = treeplugin.cluster_object(["n2", "n1"])
    assert cluster["kind"] == "Cluster" and cluster["metadata"]["name"] == "kosmos-host"
    spec = cluster["spec"]
    assert spec["kubeconfigSecretRef"]["name"] == treeplugin.KUBECONFIG_SECRET
    assert spec["clusterLinkOptions"]["enable"] is False
    assert spec["clusterTreeOptions"] == {
        "enable": True,
        "leafModels": [
            {"leafNodeName": "n1", "nodeSelector": {"nodeName": "n1"}},
            {"leafNodeName": "n2", "nodeSelector": {"nodeName": "n2"}},
        ],
    }
    # no node: no tree (an empty leafModels would make the whole host one leaf node)
    assert treeplugin.cluster_object([])["spec"]["clusterTreeOptions"] == {"enable": False}


def test_the_kubeconfig_carries_the_token_and_the_hosts_ca() -> None:
    secret = {"data": {"token": base64.b64encode(b"tok").decode(), "ca.crt": "Q0E="}}
    assert treeplugin.token_of({"data": {}}) is None
    token, ca = treeplugin.token_of(secret) or ("", "")
    config = yaml.safe_load(treeplugin.kubeconfig("https://10.0.0.1:6443", token, ca))
    assert config["clusters"][0]["cluster"] == {
        "server": "https://10.0.0.1:6443",
        "certificate-authority-data": "Q0E=",
    }
    assert config["users"][0]["user"] == {"token": "tok"}
    stored = treeplugin.tenant_secret("text")
    assert stored["metadata"]["namespace"] == names.SYSTEM_NAMESPACE
    assert base64.b64decode(stored["data"][names.KUBECONFIG_SECRET_KEY]) == b"text"


def test_a_waiting_tree_keeps_the_phase_and_says_why() -> None:
    ok = phases.control_plane(vc(kubeconfig="eA=="), ready=True)
    assert phases.with_tree(ok, "") is ok
    waiting = phases.with_tree(ok, "ClusterTree: waiting")
    assert waiting.phase == ok.phase
    (found,) = waiting.conditions
    assert (found["status"], found["reason"]) == ("False", phases.TREE_STARTING)
    failed = phases.with_tree(ok, "", "forbidden")
    assert failed.conditions[0]["reason"] == phases.TREE_FAILED
    assert failed.event == ("Warning", phases.TREE_FAILED, "ClusterTree: forbidden")


# -- TreeSetup on in-memory clusters -------------------------------------------------------


class SelectingClient(FakeClient):
    """FakeClient whose list honours an equality label selector (``remove`` relies on it)."""

    config = SimpleNamespace(server="https://host:6443")

    async def list(self, resource: Resource, namespace: str | None = None, **kw: Any) -> ObjectList:
        found = await super().list(resource, namespace)
        wanted = dict(p.split("=", 1) for p in (kw.get("label_selector") or "").split(",") if p)
        items = [
            o
            for o in found.items
            if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        return ObjectList(items, "1")

    async def apply(self, resource: Resource, body: Obj, **kw: Any) -> Obj:
        """As server-side apply: fields others own (the token controller's data) stay."""
        meta = body["metadata"]
        current = self.find(resource, meta["name"], meta.get("namespace"))
        return await super().apply(resource, merge(current, body) if current else body, **kw)


class TreeProvider:
    def __init__(self) -> None:
        self.owners: list[str] = []
        self.refused = ""

    def tree_unsupported(self) -> str:
        return self.refused

    async def ensure_tree(self, vc: Obj, owner: str) -> str:
        self.owners.append(owner)
        return ""


def setup() -> tuple[SelectingClient, SelectingClient, TreeProvider, TreeSetup]:
    host, tenant, provider = SelectingClient("host"), SelectingClient("tenant"), TreeProvider()

    async def tenant_client(_vc: Obj) -> Any:
        return tenant

    return host, tenant, provider, TreeSetup(host, tenant_client, provider)  # type: ignore[arg-type]


async def test_ensure_waits_for_the_token_then_wires_the_tenant_to_the_host() -> None:
    host, tenant, provider, tree = setup()
    waiting = await tree.ensure(vc(), ["n1"])
    assert "token Secret" in waiting and provider.owners == []
    assert tenant.find(CUSTOMRESOURCEDEFINITIONS, "clusters.kosmos.io") is not None
    assert host.find(CLUSTERROLEBINDINGS, f"kosmos-tree-{NS}-{NS}") is not None
    assert host.find(SERVICEACCOUNTS, f"kosmos-tree-{NS}", NS) is not None
    token = host.find(SECRETS, f"kosmos-tree-{NS}-token", NS)
    assert token is not None
    token["data"] = {"token": base64.b64encode(b"tok").decode(), "ca.crt": "Q0E="}
    assert await tree.ensure(vc(), ["n1"]) == ""
    assert provider.owners == ["u-1"]
    cluster = tenant.find(CLUSTERS, "kosmos-host")
    assert cluster is not None
    assert [m["leafNodeName"] for m in cluster["spec"]["clusterTreeOptions"]["leafModels"]] == [
        "n1"
    ]
    policy = tenant.find(MUTATING_ADMISSION_POLICIES, treeplugin.TOLERATION_POLICY)
    assert policy is not None  # every tenant pod tolerates the leaf taint
    assert policy["spec"]["matchConditions"] == [{"name": "every-pod", "expression": "true"}]
    assert tenant.find(MUTATING_ADMISSION_POLICY_BINDINGS, treeplugin.TOLERATION_POLICY)
    stored = tenant.find(SECRETS, treeplugin.KUBECONFIG_SECRET, names.SYSTEM_NAMESPACE)
    assert stored is not None
    text = base64.b64decode(stored["data"][names.KUBECONFIG_SECRET_KEY])
    assert yaml.safe_load(text)["clusters"][0]["cluster"]["server"] == "https://host:6443"


async def test_remove_takes_the_tenants_pods_and_copies_and_nothing_else() -> None:
    host, _tenant, _provider, tree = setup()
    mine = {names.LABEL_TREE_OWNER: "u-1"}
    other = {names.LABEL_TREE_OWNER: "u-2"}
    for resource, obj in treeplugin_objects():
        host.add(resource, obj)
    host.add(PODS, {"metadata": {"name": "a", "namespace": "default", "labels": mine}})
    host.add(PODS, {"metadata": {"name": "b", "namespace": "default", "labels": other}})
    host.add(PODS, {"metadata": {"name": "c", "namespace": "default"}})
    host.add(CONFIGMAPS, {"metadata": {"name": "cm", "namespace": "default", "labels": mine}})
    await tree.remove(vc())
    assert [k[2] for k in host.objects if k[0] == "pods"] == ["b", "c"]
    assert host.find(CONFIGMAPS, "cm", "default") is None
    for resource, obj in treeplugin_objects():
        assert (
            host.find(resource, obj["metadata"]["name"], obj["metadata"].get("namespace")) is None
        )
    binding = host.log.index(("delete", "clusterrolebindings", f"kosmos-tree-{NS}-{NS}"))
    assert binding < host.log.index(("delete", "pods", "a"))  # revoked before the clean-up
    await tree.remove(vc())  # idempotent


def treeplugin_objects() -> list[tuple[Resource, Obj]]:
    kinds = (SERVICEACCOUNTS, SECRETS, CLUSTERROLES, CLUSTERROLEBINDINGS)
    return list(zip(kinds, treeplugin.host_objects(vc()), strict=True))


# -- the node reconciler in tree mode --------------------------------------------------------


def with_plugin(rig: Rig) -> None:
    body = rig.vc()
    body["spec"]["pluginSet"] = PLUGIN
    rig.host.add(VIRTUAL_CLUSTERS, body)


async def test_with_the_plugin_the_node_stays_in_the_host_and_serves_as_a_leaf() -> None:
    rig = Rig()
    rig.add_node("n1", zone="a")
    rig.add_vc(1, zone="a")
    with_plugin(rig)
    before = rig.host.find(NODES, "n1")
    assert await rig.run() == 2.0  # waiting for the leaf node in the tenant
    assert rig.host.find(NODES, "n1") == before  # untouched
    assert rig.tenant.find(NODES, "n1") is None  # the tenant's ClusterTree makes it
    gn = rig.gn("n1")
    assert gn["spec"]["state"] == "occupied" and gn["status"]["virtualCluster"] == f"{NS}/{NS}"
    promoted = condition_of(gn, moves.PROMOTED)
    assert promoted is not None and promoted["reason"] == moves.LENT
    assert moves.lent(gn)
    leaf = {
        "metadata": {"name": "n1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    rig.tenant.add(NODES, leaf)
    assert await rig.run() == 30.0
    assert rig.vc()["status"]["phase"] == phases.COMPLETED
    # deleting releases it where it is
    body = rig.vc()
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body["status"]["phase"] = phases.DELETING
    rig.host.add(VIRTUAL_CLUSTERS, body)
    assert await rig.run() is None
    assert rig.host.find(NODES, "n1") == before
    assert rig.gn("n1")["spec"]["state"] == "free"
    assert rig.tenant.find(NODES, "n1") is not None  # the tenant's: it goes with the tenant


async def test_a_provider_that_cannot_run_it_refuses_before_anything_is_made() -> None:
    host, tenant, provider, tree = setup()
    provider.refused = "needs --provider local"
    with pytest.raises(ProviderError, match="needs --provider local"):
        await tree.ensure(vc(), ["n1"])
    assert host.objects == {} and tenant.objects == {}
