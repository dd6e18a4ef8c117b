"""Wiring of the VirtualCluster controllers: both declared on the manager, and which
VirtualClusters a VirtualCluster or GlobalNode event wakes."""

from __future__ import annotations

from pathlib import Path

from kosmos.api.resources import GLOBAL_NODES, VIRTUAL_CLUSTERS
from kosmos.kube.client import Client
from kosmos.kube.component import HOST, Common, Runtime
from kosmos.kube.config import ClusterConfig
from kosmos.kube.controller import Request
from kosmos.kube.events import EventRecorder
from kosmos.kube.manager import Manager
from kosmos.kubenest import controllers, phases
from kosmos.kubenest.settings import Settings
from tests.unit.kubenest.fakes import FakeClient, FakeInformer

SETTINGS = Settings("local", Path("/tmp/x"), Path("/tmp/bin"), (20000, 20999), "127.0.0.1")


def vc(name: str, namespace: str, phase: str = "") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace}, "status": {"phase": phase}}


def test_build_declares_both_controllers() -> None:
    host = Client(ClusterConfig("host", "https://127.0.0.1:1"))
    manager = Manager("virtual-cluster-operator")
    manager.add_cluster(HOST, host)
    runtime = Runtime("op", Common(), manager, host, "me", EventRecorder(host, "kosmos-op"))
    controllers.build(runtime, SETTINGS)
    names = {c.name for c in manager._controllers}
    assert names == {controllers.CONTROL_PLANE, controllers.NODES}


def test_a_virtual_cluster_wakes_its_namespace() -> None:
    client = FakeClient()
    client.add(VIRTUAL_CLUSTERS, vc("a", "ns1"))
    client.add(VIRTUAL_CLUSTERS, vc("b", "ns1"))
    client.add(VIRTUAL_CLUSTERS, vc("c", "ns2"))
    keys = controllers.same_namespace(FakeInformer(client, VIRTUAL_CLUSTERS))  # type: ignore[arg-type]
    assert list(keys(vc("a", "ns1"))) == [Request(HOST, "ns1", "a"), Request(HOST, "ns1", "b")]


def test_a_globalnode_wakes_its_holder_and_a_free_one_the_pending() -> None:
    client = FakeClient()
    client.add(VIRTUAL_CLUSTERS, vc("a", "ns1", phases.PENDING))
    client.add(VIRTUAL_CLUSTERS, vc("b", "ns2", phases.COMPLETED))
    keys = controllers.holder_keys(FakeInformer(client, VIRTUAL_CLUSTERS))  # type: ignore[arg-type]
    held = {
        "metadata": {"name": "n1"},
        "spec": {"state": "occupied"},
        "status": {"virtualCluster": "ns2/b"},
    }
    assert list(keys(held)) == [Request(HOST, "ns2", "b")]
    free = {"metadata": {"name": "n2"}, "spec": {"state": "free"}}
    assert list(keys(free)) == [Request(HOST, "ns1", "a")]
    reserved = {"metadata": {"name": "cp"}, "spec": {"state": "reserved"}}
    assert list(keys(reserved)) == []


def test_held_by_lists_the_globalnodes_of_a_cluster() -> None:
    client = FakeClient()
    client.add(GLOBAL_NODES, {"metadata": {"name": "n1"}, "status": {"virtualCluster": "ns/a"}})
    client.add(GLOBAL_NODES, {"metadata": {"name": "n2"}, "status": {"virtualCluster": "ns/b"}})
    informer = FakeInformer(client, GLOBAL_NODES)
    assert controllers.held_by(informer, "ns/a") == ["n1"]  # type: ignore[arg-type]
