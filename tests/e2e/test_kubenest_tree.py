"""k8s-in-k8s: a VirtualCluster with the ``clustertree`` plugin keeps its node in the host and
sees it as a leaf node; a pod of the tenant runs in the host on that node.

An environment of its own: ``kosmosctl local up --members 0 --nodes 1 --without-kosmos``
(kwok nodes only), ``kosmosctl install`` with every component off (the CRDs), a kwok worker
node made by the test, and ``kosmos virtual-cluster-operator`` as a process of this machine
with the local provider (the tenant's cluster-manager is one of its processes).

What is checked is what a user sees: the VirtualCluster ``Completed``; the tenant lists the
host's node as its one node, Ready, while the host keeps it (same uid); the tenant's pod is
created in the host on that node (kwok runs it there) with the tenant's owner label and its
status comes back; deleting the VirtualCluster removes the host pod, the ServiceAccount and
its ClusterRole(Binding), frees the GlobalNode, and leaves the node as it was.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kosmos.local.kubectl import Kubectl, KubectlError
from tests.e2e.kubenest_env import (
    NS,
    KubenestEnv,
    create_until_completed,
    diagnose,
    environment,
    gone,
    kwok_node,
    local_operator_argv,
    phase,
    ready,
    seed_virtual_cluster,
)
from tests.support import get, wait_for

PORT_BASE = int(os.environ.get("KOSMOS_KUBENEST_TREE_E2E_PORT_BASE", "17600"))
TENANT_PORTS = os.environ.get("KOSMOS_KUBENEST_TREE_E2E_TENANT_PORTS", "21600-21699")
NODE = "kc-aaaaa-s-x6fn2"  # the seed's node name
NODE2 = "kc-bbbbb-s-x6fn2"
COMPLETED_TIMEOUT = 180
GONE_TIMEOUT = 120
PLUGIN = {"enabled": [{"name": "clustertree"}]}  # the seed's k8s-in-k8s proposal


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubenestEnv]:
    with environment(
        tmp_path_factory.mktemp("kubenest-tree"),
        PORT_BASE,
        real_nodes=0,
        operator=lambda e: local_operator_argv(e, TENANT_PORTS),
    ) as env:
        yield env


def tenant_pod(name: str = "hello") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "hello"}},
        "spec": {
            "containers": [{"name": "main", "image": "docker.io/library/busybox:latest"}],
            "terminationGracePeriodSeconds": 1,
        },
    }


def test_host_node_as_a_leaf_node_of_the_tenant(env: KubenestEnv, tmp_path: Path) -> None:
    host = env.host()
    host.run("apply", "-f", "-", stdin=json.dumps(kwok_node(NODE)))
    node_uid = get(host, "node", NODE)["metadata"]["uid"]
    config = tmp_path / "tenant.kubeconfig"
    vc = seed_virtual_cluster(NODE, pluginSet=PLUGIN)
    took = create_until_completed(env, NODE, vc, COMPLETED_TIMEOUT, config)
    print(f"\nVirtualCluster with clustertree: Completed in {took:.1f}s")
    owner = get(host, "virtualcluster", NS, "-n", NS)["metadata"]["uid"]
    tenant = env.tenant(config)

    # the node stays in the host, untouched, and is the tenant's one node, Ready
    assert get(host, "node", NODE)["metadata"]["uid"] == node_uid
    assert [n["metadata"]["name"] for n in get(tenant, "nodes")["items"]] == [NODE]
    assert ready(tenant, NODE)
    globalnode = get(host, "globalnode", NODE)
    assert globalnode["spec"]["state"] == "occupied"
    promoted = next(c for c in globalnode["status"]["conditions"] if c["type"] == "Promoted")
    assert promoted["reason"] == "LeafNode", promoted
    account = f"kosmos-tree-{NS}"
    assert get(host, "serviceaccount", account, "-n", NS)
    assert get(host, "clusterrolebinding", f"kosmos-tree-{NS}-{NS}")

    # a pod of the tenant runs in the host on that node; its status shows in the tenant
    wait_for(
        lambda: get(tenant, "serviceaccount", "default", "-n", "default"),
        60,
        "the tenant's default ServiceAccount",
        ignoring=(KubectlError,),
    )
    tenant.run("apply", "-f", "-", stdin=json.dumps(tenant_pod()))
    started = time.monotonic()
    try:
        in_host = wait_for(
            lambda: get(host, "pod", "hello", "-n", "default"),
            60,
            "the tenant's pod in the host",
            ignoring=(KubectlError,),
        )
        wait_for(
            lambda: get(tenant, "pod", "hello")["status"].get("phase") == "Running",
            60,
            "the tenant's pod Running",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnose(env)}") from None
    print(f"tenant pod Running (kwok in the host) in {time.monotonic() - started:.1f}s")
    assert in_host["spec"]["nodeName"] == NODE
    assert in_host["metadata"]["labels"]["kosmos.io/tree-owner"] == owner
    in_tenant = get(tenant, "pod", "hello")
    assert in_tenant["spec"]["nodeName"] == NODE
    in_host = get(host, "pod", "hello", "-n", "default")
    assert in_host["status"]["phase"] == "Running"
    assert in_tenant["status"].get("podIP") == in_host["status"].get("podIP")

    # delete: the tenant's pod, ServiceAccount and RBAC leave the host; the node is free
    host.run("delete", "virtualcluster", NS, "-n", NS, "--wait=false")
    started = time.monotonic()
    wait_for(lambda: gone(host, "virtualcluster", NS, "-n", NS), GONE_TIMEOUT, "VC gone")
    print(f"deleted in {time.monotonic() - started:.1f}s")
    assert wait_for(lambda: gone(host, "pod", "hello", "-n", "default"), 30, "host pod gone")
    assert gone(host, "serviceaccount", account, "-n", NS)
    assert gone(host, "clusterrolebinding", f"kosmos-tree-{NS}-{NS}")
    assert gone(host, "clusterrole", f"kosmos-tree-{NS}-{NS}")
    assert get(host, "globalnode", NODE)["spec"]["state"] == "free"
    assert get(host, "node", NODE)["metadata"]["uid"] == node_uid
    assert ready(host, NODE)
    assert [p for p in env.state.iterdir() if p.is_dir()] == []  # its processes and files
    host.run("delete", "namespace", NS, "--wait=false")


def test_two_tenants_share_the_host_and_never_take_each_others_pods(
    env: KubenestEnv, tmp_path: Path
) -> None:
    """Each tenant's ClusterTree sees every pod of the host; with ``--owner`` it takes only
    its own: the other tenant's pod is not an orphan of its, and deleting one tenant
    removes its pod alone."""
    host = env.host()
    tenants: dict[str, Kubectl] = {}
    for ns, node in (("tenant-a", NODE), ("tenant-b", NODE2)):
        host.run("apply", "-f", "-", stdin=json.dumps(kwok_node(node)))
        wait_for(
            lambda node=node: get(host, "globalnode", node)["spec"]["state"] == "free",
            60,
            f"GlobalNode {node} free",
            ignoring=(KubectlError,),
        )
        host.run("create", "namespace", ns)
        host.run(
            "apply", "-f", "-", stdin=json.dumps(seed_virtual_cluster(node, ns, pluginSet=PLUGIN))
        )
    for ns in ("tenant-a", "tenant-b"):
        try:
            wait_for(lambda ns=ns: phase(host, ns) == "Completed", COMPLETED_TIMEOUT, ns)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{diagnose(env)}") from None
        config = tmp_path / f"{ns}.kubeconfig"
        encoded = get(host, "virtualcluster", ns, "-n", ns)["spec"]["kubeconfig"]
        config.write_bytes(base64.b64decode(encoded))
        tenants[ns] = Kubectl(env.kubectl_binary, config, ns)
        wait_for(
            lambda ns=ns: get(tenants[ns], "serviceaccount", "default", "-n", "default"),
            60,
            f"{ns}'s default ServiceAccount",
            ignoring=(KubectlError,),
        )
        tenants[ns].run("apply", "-f", "-", stdin=json.dumps(tenant_pod(f"{ns}-pod")))
    for ns in ("tenant-a", "tenant-b"):
        wait_for(
            lambda ns=ns: get(tenants[ns], "pod", f"{ns}-pod")["status"].get("phase") == "Running",
            60,
            f"{ns}'s pod Running",
        )
    uids = {ns: get(host, "pod", f"{ns}-pod", "-n", "default")["metadata"]["uid"] for ns in tenants}
    time.sleep(5)  # each ClusterTree has seen the other's pod in the host by now
    for ns in ("tenant-a", "tenant-b"):
        # the same pod: never deleted as the other's orphan (and re-created by its own)
        pod = get(host, "pod", f"{ns}-pod", "-n", "default")
        assert pod["metadata"]["uid"] == uids[ns], f"{ns}'s pod was replaced in the host"
        assert pod["status"]["phase"] == "Running"
    host.run("delete", "virtualcluster", "tenant-b", "-n", "tenant-b", "--wait=false")
    wait_for(
        lambda: gone(host, "virtualcluster", "tenant-b", "-n", "tenant-b"), GONE_TIMEOUT, "b gone"
    )
    assert gone(host, "pod", "tenant-b-pod", "-n", "default")
    assert get(host, "pod", "tenant-a-pod", "-n", "default")["status"]["phase"] == "Running"
    assert get(tenants["tenant-a"], "pod", "tenant-a-pod")["status"]["phase"] == "Running"
    host.run("delete", "virtualcluster", "tenant-a", "-n", "tenant-a", "--wait=false")
    wait_for(
        lambda: gone(host, "virtualcluster", "tenant-a", "-n", "tenant-a"), GONE_TIMEOUT, "a gone"
    )
    assert gone(host, "pod", "tenant-a-pod", "-n", "default")
    assert [p for p in env.state.iterdir() if p.is_dir()] == []
