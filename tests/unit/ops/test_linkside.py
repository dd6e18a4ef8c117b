"""The agents' DaemonSet: a member's reads a kubeconfig Secret, the host's its ServiceAccount;
the agents' shared ClusterRole belongs to the install, not to a join."""

from __future__ import annotations

from typing import Any

from kosmos.api import link
from kosmos.api.resources import CLUSTERROLES
from kosmos.ops import hostlink, linkside
from kosmos.ops.manifests import InstallOptions
from tests.unit.netdoctor.fakes import FakeCluster


def _pod(in_cluster: bool) -> Any:
    body = linkside.daemonset("c1", "kosmos-system", "img", in_cluster=in_cluster)
    return body["spec"]["template"]["spec"]


def test_member_agents_use_the_kubeconfig_secret():
    pod = _pod(False)
    (container,) = pod["containers"]
    assert container["args"][:3] == ["agent", "--kubeconfig", "/etc/kosmos/kubeconfig"]
    assert {"name": "kubeconfig", "secret": {"secretName": linkside.AGENT_KUBECONFIG}} in pod[
        "volumes"
    ]
    assert "serviceAccountName" not in pod


def test_host_agents_use_their_service_account_and_no_kubeconfig():
    pod = _pod(True)
    (container,) = pod["containers"]
    assert container["args"] == ["agent", f"--health-port={linkside.HEALTH_PORT}"]
    assert pod["serviceAccountName"] == linkside.account("c1")
    assert [v["name"] for v in pod["volumes"]] == ["xtables-lock", "modules"]
    assert [m["name"] for m in container["volumeMounts"]] == ["xtables-lock", "modules"]
    assert pod["hostNetwork"] is True


def test_member_agents_take_joins_log_format_and_the_hosts_keep_installs():
    def args(body: Any) -> list[str]:
        return body["spec"]["template"]["spec"]["containers"][0]["args"]

    plain = linkside.daemonset("c1", "kosmos-system", "img")
    assert linkside.member_daemonset("c1", "kosmos-system", "img", "text") == plain
    logged = linkside.member_daemonset("c1", "kosmos-system", "img", "json")
    assert args(logged) == [*args(plain), "--log-format=json"]
    (_, _, (_, agents)) = linkside.member_objects("c1", "kosmos-system", "kc", "img", "json")
    assert agents == logged
    for log_format, extra in (("text", []), ("json", ["--log-format=json"])):
        host = hostlink.agent_daemonset(InstallOptions(log_format=log_format))
        assert args(host) == ["agent", f"--health-port={linkside.HEALTH_PORT}", *extra]


def test_the_shared_role_carries_no_cluster_label_and_the_rest_do():
    objects = linkside.host_objects("c1", [])
    role = next(body for resource, body in objects if resource == CLUSTERROLES)
    assert link.LABEL_CLUSTER not in role["metadata"]["labels"]
    for resource, body in objects:
        if resource != CLUSTERROLES:
            assert body["metadata"]["labels"][link.LABEL_CLUSTER] == "c1", resource


async def test_join_creates_the_agents_role_only_when_no_install_made_it():
    host = FakeCluster("host")
    await linkside.ensure_shared_role(host)  # type: ignore[arg-type]
    assert host.log == ["create ClusterRole kosmos-agent"]
    helm_made = linkside.shared_role()
    helm_made["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"
    host = FakeCluster("host")
    host.put(CLUSTERROLES, helm_made)
    await linkside.ensure_shared_role(host)  # type: ignore[arg-type]
    assert host.log == []  # an installer's role is never taken over (helm upgrade would conflict)
    assert host.find(CLUSTERROLES, linkside.AGENT) == helm_made
