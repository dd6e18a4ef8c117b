"""The node-agent's local backend lends a real node to another apiserver and takes it back.

``cluster1-real2`` joins cluster2's apiserver (reached through the underlay and cluster2's
relay), as kubenest's operator would make it join a tenant: a kubelet and a kube-proxy
certificate of that cluster's CA. Then ``up`` leaves the node to its agent, and leaving
brings it back to cluster1 with nothing for ``up`` to restart.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from kosmos.api.nodeagent import OWN_CLUSTER, TENANT, Credentials, Join
from kosmos.api.objects import node_ready
from kosmos.local import kwokctl
from kosmos.local.nodes import layout, lifecycle, pki
from kosmos.local.nodes.agent import LocalBackend
from kosmos.local.nodes.artifacts import ensure as artifacts
from kosmos.local.nodes.plan import network
from tests.integration.realnodes.conftest import RealEnv, pod, running
from tests.support import apply, get, wait_for

TENANT_CLUSTER = "cluster2"


def _join(real: RealEnv, node: str) -> Join:
    cluster = real.env.plan(TENANT_CLUSTER)
    ca = kwokctl.cluster_dir(TENANT_CLUSTER) / "pki"
    kubelet = pki.client_certificate(ca, f"system:node:{node}", pki.NODES_GROUP)
    proxy = pki.client_certificate(ca, "system:kube-proxy", "")
    return Join(
        tenant="tenants/lent",
        server=network(cluster).apiserver,
        caData=(ca / "ca.crt").read_text(),
        kubelet=Credentials(*(p.decode() for p in kubelet)),
        proxy=Credentials(*(p.decode() for p in proxy)),
        clusterDNS=[str(ipaddress.ip_network(cluster.service_cidr)[10])],
    )


def _cmdline(pid_file: Path) -> str:
    return Path(f"/proc/{pid_file.read_text()}/cmdline").read_bytes().decode(errors="replace")


def test_a_node_serves_another_apiserver_and_comes_back(real: RealEnv):
    node, own, tenant = real.second, real.kubectl(), real.kubectl(TENANT_CLUSTER)
    dirs = layout.NodeDirs(node.name)
    backend = LocalBackend(dirs.base)
    state = backend.join(_join(real, node.name))
    try:
        assert (state.cluster, state.tenant, state.kubelet) == (TENANT, "tenants/lent", "running")
        assert f"{dirs.tenant}/" in _cmdline(dirs.pid_file("kubelet"))
        wait_for(lambda: node_ready(get(tenant, "node", node.name)), 90, "Ready in cluster2")
        apply(tenant, pod("lent", node.name, "shell", ["sleep", "3600"]), namespace="default")
        running(tenant, "default", "lent")
        assert "sleep" in tenant.run("exec", "-n", "default", "lent", "--", "ps")
        outcome = lifecycle.ensure_node(node, artifacts(print), own, print)
        assert (outcome.tenant, outcome.started) == ("tenants/lent", [])
    finally:
        state = backend.leave()
        tenant.run("delete", "pod", "lent", "-n", "default", "--ignore-not-found", "--wait=false")
        tenant.run("delete", "node", node.name, "--ignore-not-found")
    assert (state.cluster, state.tenant) == (OWN_CLUSTER, "")
    wait_for(lambda: node_ready(get(own, "node", node.name)), 90, "Ready in cluster1 again")
    outcome = lifecycle.ensure_node(node, artifacts(print), own, print)
    assert (outcome.tenant, outcome.started) == ("", [])
