"""The seed's kubenest example on a real node: a VirtualCluster takes a host worker by its
hostname label, the tenant runs a pod on it, and deleting the VirtualCluster returns it.

This module brings up an environment of its own, as a platform engineer would for kubenest
alone: ``kosmosctl local up --members 0 --real-nodes 2 --without-kosmos`` (a host with two
real workers, each with its node-agent), ``kosmosctl install`` with every component off (the
CRDs and the namespace), and ``kosmos virtual-cluster-operator`` as a process of this
machine with the local provider, advertising the host's address on the nodes' network (the
tenant apiserver must be reachable from the node that joins it). The shared e2e
environment is left alone: its host's one real node runs Kosmos.

The node's kubelet really changes clusters: the pod runs in containerd on that node, its
logs and exec go through the tenant's apiserver to the kubelet (which now trusts the
tenant's CA), and its DNS is the tenant's CoreDNS through the tenant's ``kube-dns``
Service (kube-proxy on the node serves the tenant too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from kosmos.api import nodeagent
from kosmos.kube.tls import client_ssl_context
from kosmos.kubenest.pki import ADMIN, TenantPKI
from kosmos.local.kubectl import Kubectl, KubectlError
from tests.e2e.kubenest_env import (
    NS,
    KubenestEnv,
    create_until_completed,
    environment,
    gone,
    internal_ip,
    local_operator_argv,
    ready,
    seed_virtual_cluster,
)
from tests.support import get, wait_for

PORT_BASE = int(os.environ.get("KOSMOS_KUBENEST_E2E_PORT_BASE", "17800"))
TENANT_PORTS = os.environ.get("KOSMOS_KUBENEST_E2E_TENANT_PORTS", "21400-21499")
COMPLETED_TIMEOUT = 240
RETURN_TIMEOUT = 180


def _local_operator(env: KubenestEnv) -> list[str]:
    """Advertising this machine's address on the nodes' network (the tenant apiserver must
    be reachable from the node that joins it)."""
    advertise = env.network_host(env.workers[0])
    return local_operator_argv(env, TENANT_PORTS, "--advertise-address", advertise)


@pytest.fixture(scope="module")
def kn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubenestEnv]:
    with environment(
        tmp_path_factory.mktemp("kubenest"), PORT_BASE, operator=_local_operator
    ) as env:
        yield env


def test_the_seed_example_takes_a_real_node_runs_a_pod_and_gives_it_back(
    kn: KubenestEnv, tmp_path: Path
) -> None:
    host = kn.host()
    worker = kn.workers[1]
    config = tmp_path / "tenant.kubeconfig"
    vc = seed_virtual_cluster(worker)
    took = create_until_completed(kn, worker, vc, COMPLETED_TIMEOUT, config)
    print(f"\nVirtualCluster with real node {worker}: Completed in {took:.1f}s")
    tenant = kn.tenant(config)

    # the node left the host and is Ready in the tenant, with its pool labels
    assert gone(host, "node", worker)
    assert wait_for(lambda: ready(tenant, worker), 60, f"{worker} Ready in the tenant")
    names = [n["metadata"]["name"] for n in get(tenant, "nodes")["items"]]
    assert names == [worker]
    assert get(host, "globalnode", worker)["spec"]["state"] == "occupied"

    # a pod of the tenant runs on it: real containers, logs and exec through the tenant
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "docker.io/library/busybox:latest",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo hello from the tenant; sleep 3600"],
                }
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }
    wait_for(
        lambda: get(tenant, "serviceaccount", "default", "-n", "default"),
        60,
        "the tenant's default ServiceAccount",
        ignoring=(KubectlError,),
    )
    tenant.run("apply", "-f", "-", stdin=json.dumps(pod))
    wait_for(
        lambda: get(tenant, "pod", "hello")["status"].get("phase") == "Running",
        120,
        "the tenant's pod Running",
    )
    assert get(tenant, "pod", "hello")["spec"]["nodeName"] == worker
    assert "hello from the tenant" in tenant.run("logs", "hello")
    answer = wait_for(
        lambda: tenant.run(
            "exec", "hello", "--", "nslookup", "kubernetes.default.svc.cluster.local"
        ),
        60,
        "the tenant's DNS from the pod",
        ignoring=(KubectlError,),
    )
    assert "10.96.0.1" in answer

    # the tenant's admin is nobody in the host
    assert "Unauthorized" in _refused(kn, config)

    # deleting the VirtualCluster returns the node, Ready, and leaves nothing of the tenant
    host.run("delete", "virtualcluster", NS, "-n", NS, "--wait=false")
    started = time.monotonic()
    wait_for(
        lambda: gone(host, "virtualcluster", NS, "-n", NS),
        RETURN_TIMEOUT,
        "the VirtualCluster gone",
    )
    assert wait_for(lambda: ready(host, worker), RETURN_TIMEOUT, f"{worker} Ready in the host")
    print(f"deleted: {worker} Ready in the host after {time.monotonic() - started:.1f}s")
    assert get(host, "globalnode", worker)["spec"]["state"] == "free"
    left = get(host, "secrets", "-n", NS, "-l", "kosmos.io/virtual-cluster")["items"]
    assert left == []
    # the host schedules on it again
    host.run("delete", "namespace", NS, "--wait=false")


def _refused(kn: KubenestEnv, tenant_config: Path) -> str:
    """The tenant admin's certificate presented to the host's apiserver: kubectl's error."""
    tenant = yaml.safe_load(tenant_config.read_text())
    merged = yaml.safe_load(kn.kubeconfig.read_text())
    context = next(c["context"] for c in merged["contexts"] if c["name"] == "host")
    cluster = next(c["cluster"] for c in merged["clusters"] if c["name"] == context["cluster"])
    forged = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "host", "cluster": cluster}],
        "users": [{"name": "tenant-admin", "user": tenant["users"][0]["user"]}],
        "contexts": [{"name": "x", "context": {"cluster": "host", "user": "tenant-admin"}}],
        "current-context": "x",
    }
    path = tenant_config.with_name("forged.kubeconfig")
    path.write_text(yaml.safe_dump(forged))
    try:
        Kubectl(kn.kubectl_binary, path, "host").run("get", "namespaces", timeout=20)
    except KubectlError as error:
        return str(error)
    return "the host answered the tenant's admin"


def test_the_node_agent_refuses_a_missing_token_and_a_foreign_ca(kn: KubenestEnv) -> None:
    """The running agent, asked over the network as an attacker on the node network would:
    with the operator's client certificate but no token (401), and with a certificate of
    a CA of its own (the TLS handshake fails)."""
    secret = get(kn.host(), "secret", nodeagent.SECRET_NAME, "-n", nodeagent.SECRET_NAMESPACE)
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ip = internal_ip(kn.host(), kn.workers[0])
    url = f"https://{ip}:{nodeagent.PORT}{nodeagent.STATE_PATH}"
    good = client_ssl_context(data["ca.crt"], data["tls.crt"], data["tls.key"])
    foreign_cert, foreign_key = TenantPKI.create("someone/else", []).pair(ADMIN)
    foreign = client_ssl_context(data["ca.crt"], foreign_cert, foreign_key)
    token = data["token"].decode().strip()

    async def ask(context: Any, headers: dict[str, str]) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=context, headers=headers) as response,
        ):
            return response.status

    assert asyncio.run(ask(good, {"Authorization": f"Bearer {token}"})) == 200
    assert asyncio.run(ask(good, {})) == 401
    assert asyncio.run(ask(good, {"Authorization": "Bearer wrong"})) == 401
    with pytest.raises(aiohttp.ClientError):
        asyncio.run(ask(foreign, {"Authorization": f"Bearer {token}"}))


def test_nothing_was_lost_on_the_way(kn: KubenestEnv) -> None:
    """Both workers are in the host and Ready; no GlobalNode is held."""
    host = kn.host()
    for worker in kn.workers:
        assert ready(host, worker)
    held = [
        g["metadata"]["name"]
        for g in get(host, "globalnodes")["items"]
        if g["spec"].get("state") == "occupied"
    ]
    assert held == []
