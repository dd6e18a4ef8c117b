"""The seed's kubenest example with the in-cluster provider: the tenant's control plane runs
as pods of the host (our images on its real nodes), its apiserver behind a NodePort.

An environment of its own, as in test_kubenest_real: ``kosmosctl local up --members 0
--nodes 1 --real-nodes 2 --without-kosmos`` (the real nodes have the etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok and CoreDNS images), ``kosmosctl install``
with every component off, and ``kosmos virtual-cluster-operator --provider in-cluster`` as a
process of this machine. The VirtualCluster takes a kwok worker (the seed's node name),
which the tenant's own kwok (a pod too) keeps Ready.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kubenest_env import (
    LABEL,
    NS,
    KubenestEnv,
    create_until_completed,
    environment,
    gone,
    kwok_node,
    operator_argv,
    seed_virtual_cluster,
)
from tests.support import get, wait_for

PORT_BASE = int(os.environ.get("KOSMOS_KUBENEST_IC_E2E_PORT_BASE", "17900"))
NODE = "kc-aaaaa-s-x6fn2"  # the seed's node name
COMPLETED_TIMEOUT = 300
GONE_TIMEOUT = 180


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubenestEnv]:
    with environment(
        tmp_path_factory.mktemp("kubenest-incluster"),
        PORT_BASE,
        operator=lambda e: operator_argv(e, "--provider", "in-cluster"),
    ) as env:
        yield env


def test_the_seed_example_with_the_control_plane_in_the_host(
    env: KubenestEnv, tmp_path: Path
) -> None:
    host = env.host()
    host.run("apply", "-f", "-", stdin=json.dumps(kwok_node(NODE)))
    config = tmp_path / "tenant.kubeconfig"
    vc = seed_virtual_cluster(NODE)
    took = create_until_completed(env, NODE, vc, COMPLETED_TIMEOUT, config)
    print(f"\nin-cluster VirtualCluster: Completed in {took:.1f}s")

    # the control plane is pods of the host, on real nodes
    pods = get(host, "pods", "-n", NS, "-l", LABEL)["items"]
    running = {p["metadata"]["labels"]["kosmos.io/tenant-component"] for p in pods}
    assert {"etcd", "apiserver", "controller-manager", "scheduler", "kwok"} <= running
    assert all("real" in p["spec"]["nodeName"] for p in pods)

    tenant = env.tenant(config)
    nodes = get(tenant, "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [NODE]
    assert gone(host, "node", NODE)

    host.run("delete", "virtualcluster", NS, "-n", NS, "--wait=false")
    started = time.monotonic()
    wait_for(lambda: gone(host, "virtualcluster", NS, "-n", NS), GONE_TIMEOUT, "VC gone")
    print(f"deleted in {time.monotonic() - started:.1f}s")
    assert not gone(host, "node", NODE)  # back in the host
    for kind in ("deployments", "statefulsets", "services", "secrets"):
        assert get(host, kind, "-n", NS, "-l", LABEL)["items"] == [], kind
    host.run("delete", "namespace", NS, "--wait=false")
