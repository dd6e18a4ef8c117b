"""The agents' DaemonSet: a member's reads a kubeconfig Secret, the host's its ServiceAccount."""

from __future__ import annotations

from typing import Any

from kosmos.ops import linkside


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
