from pathlib import Path

from kosmos.local.kwokctl import config_documents
from kosmos.local.toolchain import GROUPS, BuiltGroup, Toolchain
from kosmos.local.topology import KWOK_NODE_SELECTOR, Options, plan


def fake_toolchain() -> Toolchain:
    return Toolchain({g.name: BuiltGroup(g, Path(f"/cache/{g.name}"), g.version()) for g in GROUPS})


def args(doc, component):
    patch = next(p for p in doc["componentsPatches"] if p["name"] == component)
    return {a["key"]: a["value"] for a in patch["extraArgs"]}


def test_config_uses_local_binaries_fixed_ports_and_loopback():
    cluster = plan(Options())[1]
    (doc,) = config_documents(cluster, fake_toolchain())
    options = doc["options"]
    assert options["runtime"] == "binary"
    assert options["bindAddress"] == "127.0.0.1"
    assert options["kubeApiserverPort"] == cluster.apiserver_port
    assert options["etcdPeerPort"] == cluster.ports["etcd-peer"]
    assert options["kubeApiserverBinary"] == "/cache/k8s/kube-apiserver"
    assert options["kwokControllerBinary"] == "/cache/kwok/kwok"
    assert not any(str(v).startswith("http") for v in options.values())


def test_kwok_manages_only_labelled_nodes_and_service_cidr_is_the_plans():
    cluster = plan(Options())[2]
    (doc,) = config_documents(cluster, fake_toolchain())
    assert args(doc, "kwok-controller") == {
        "manage-all-nodes": "false",
        "manage-nodes-with-label-selector": KWOK_NODE_SELECTOR,
    }
    assert args(doc, "kube-apiserver")["service-cluster-ip-range"] == cluster.service_cidr
