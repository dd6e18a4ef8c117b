"""kubenest as a user installs it: ``kosmosctl install --enable-kubenest`` runs the
virtual-cluster-operator as a Deployment of the host (the Kosmos image, its own least-privilege
ServiceAccount, ``--provider in-cluster``), and the seed's VirtualCluster takes a real node.

An environment of its own, as in test_kubenest_incluster: ``kosmosctl local up --members 0
--nodes 1 --real-nodes 2 --without-kosmos``. The operator and the tenants' control planes are
pinned to ``host-real1`` (``--node-selector``, ``--kubenest-control-plane-node-selector``),
so the VirtualCluster borrows ``host-real2``, whose kubelet joins the tenant through its
node-agent. Nothing of kubenest runs on this machine: the operator reads kwok's stages from
its image, reaches the host apiserver with its ServiceAccount and the node-agent with the
Secret it may read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import kosmosctl
from tests.e2e.kubenest_env import (
    INSTALL,
    LABEL,
    NS,
    OPERATOR,
    SYSTEM,
    KubenestEnv,
    create_until_completed,
    environment,
    gone,
    ready,
    seed_virtual_cluster,
)
from tests.support import get, wait_for

PORT_BASE = int(os.environ.get("KOSMOS_KUBENEST_INSTALLED_E2E_PORT_BASE", "17960"))
CONTROL_PLANES = "host-real1"
BORROWED = "host-real2"
COMPLETED_TIMEOUT = 300
GONE_TIMEOUT = 180
PINNED = ("--node-selector", f"kubernetes.io/hostname={CONTROL_PLANES}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubenestEnv]:
    with environment(
        tmp_path_factory.mktemp("kubenest-installed"), PORT_BASE, install=PINNED
    ) as env:
        yield env


def test_the_installed_operator_lends_a_real_node_and_takes_it_back(
    env: KubenestEnv, tmp_path: Path
) -> None:
    host = env.host()
    started = time.monotonic()
    kosmosctl(
        env.variables,
        *INSTALL,
        *PINNED,
        "--enable-kubenest",
        *("--kubenest-control-plane-node-selector", f"kubernetes.io/hostname={CONTROL_PLANES}"),
        "--wait",
    )
    print(f"\ninstall --enable-kubenest --wait: {time.monotonic() - started:.1f}s")
    (pod,) = get(host, "pods", "-n", SYSTEM, "-l", f"app.kubernetes.io/name={OPERATOR}")["items"]
    assert pod["spec"]["nodeName"] == CONTROL_PLANES
    assert pod["spec"]["serviceAccountName"] == OPERATOR
    config = tmp_path / "tenant.kubeconfig"
    took = create_until_completed(
        env, BORROWED, seed_virtual_cluster(BORROWED), COMPLETED_TIMEOUT, config
    )
    print(f"installed operator, real node: Completed in {took:.1f}s")

    # the control plane runs as pods of the host, where the selector put it
    pods = get(host, "pods", "-n", NS, "-l", LABEL)["items"]
    components = {p["metadata"]["labels"]["kosmos.io/tenant-component"] for p in pods}
    assert {"etcd", "apiserver", "controller-manager", "scheduler", "kwok"} <= components
    assert {p["spec"]["nodeName"] for p in pods} == {CONTROL_PLANES}

    tenant = env.tenant(config)
    assert [n["metadata"]["name"] for n in get(tenant, "nodes")["items"]] == [BORROWED]
    assert wait_for(lambda: ready(tenant, BORROWED), 60, f"{BORROWED} Ready in the tenant")
    assert gone(host, "node", BORROWED)

    # only the operator gives the node back: neither uninstall nor a re-run of install
    # without --enable-kubenest removes it under a tenant
    for argv in (("uninstall",), (*INSTALL, *PINNED)):
        refused = kosmosctl(env.variables, *argv, check=False)
        assert refused.returncode != 0, argv
        assert f"virtual clusters still exist: {NS}/{NS}" in refused.stderr, refused.stderr
    assert get(host, "deployment", OPERATOR, "-n", SYSTEM)["status"]["availableReplicas"] == 1

    host.run("delete", "virtualcluster", NS, "-n", NS, "--wait=false")
    started = time.monotonic()
    wait_for(lambda: gone(host, "virtualcluster", NS, "-n", NS), GONE_TIMEOUT, "VC gone")
    wait_for(lambda: ready(host, BORROWED), GONE_TIMEOUT, f"{BORROWED} Ready in the host")
    print(f"deleted: {BORROWED} Ready in the host after {time.monotonic() - started:.1f}s")
    assert get(host, "globalnode", BORROWED)["spec"]["state"] == "free"
    for kind in ("deployments", "statefulsets", "services", "secrets"):
        assert get(host, kind, "-n", NS, "-l", LABEL)["items"] == [], kind
    host.run("delete", "namespace", NS, "--wait=false")

    # --disable-kubenest removes the operator and its RBAC like the other components'
    kosmosctl(env.variables, *INSTALL, *PINNED, "--disable-kubenest")
    assert gone(host, "deployment", OPERATOR, "-n", SYSTEM)
    assert gone(host, "clusterrole", OPERATOR)
    assert gone(host, "serviceaccount", OPERATOR, "-n", SYSTEM)
