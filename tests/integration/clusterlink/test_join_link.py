"""``kosmosctl join --enable-link`` wires a member's agents up; ``unjoin`` takes them down.

The agents' kubeconfig (created by the join) is used for real: it must allow what an agent
does and nothing an agent has no business doing.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path

from tests.fixtures.link import LinkEnv
from tests.support import get


def _kubectl(link: LinkEnv, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(link.env.kubectl_binary), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_join_sets_up_least_privilege_agents_and_unjoin_removes_them(
    link: LinkEnv, tmp_path: Path
) -> None:
    name = f"lj-{secrets.token_hex(2)}"
    namespace = f"{name}-ns"
    member = link.member("cluster2")
    link.join(name, "--namespace", namespace, kubeconfig_of="cluster2")
    try:
        ds = get(member, "daemonset", "kosmos-agent", "-n", namespace)
        env = {
            e["name"]: e.get("value")
            for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["CLUSTER_NAME"] == name and ds["spec"]["template"]["spec"]["hostNetwork"] is True
        secret = get(member, "secret", "kosmos-agent-kubeconfig", "-n", namespace)
        kubeconfig = tmp_path / "agent.kubeconfig"
        kubeconfig.write_text(base64.b64decode(secret["data"]["kubeconfig"]).decode())
        allowed = [
            ("get", "nodeconfigs"),
            ("get", "clusternodes"),
            ("get", "cluster", name),
        ]
        for args in allowed:
            out = _kubectl(link, kubeconfig, *args)
            assert out.returncode == 0, f"agent may {' '.join(args)}: {out.stderr}"
        denied = [
            ("auth", "can-i", "create", "pods", "-A"),
            ("auth", "can-i", "get", "secrets", "-n", "kosmos-system"),
            ("auth", "can-i", "delete", "nodeconfigs"),
            (
                "auth",
                "can-i",
                "update",
                "leases/clusterlink-gateway-someone-else",
                "-n",
                "kosmos-system",
            ),
        ]
        for args in denied:
            assert _kubectl(link, kubeconfig, *args).stdout.strip() == "no", (
                f"agent must not: {args}"
            )
        lease = (
            "auth",
            "can-i",
            "update",
            f"leases/clusterlink-gateway-{name}",
            "-n",
            "kosmos-system",
        )
        assert _kubectl(link, kubeconfig, *lease).stdout.strip() == "yes"
        key = ("auth", "can-i", "get", "secrets/clusterlink-tunnel-key", "-n", "kosmos-system")
        assert _kubectl(link, kubeconfig, *key).stdout.strip() == "yes"
    finally:
        link.unjoin(name)
    assert not member.ok("get", "daemonset", "kosmos-agent", "-n", namespace)
    assert not member.ok("get", "secret", "kosmos-agent-kubeconfig", "-n", namespace)
    assert not link.host.ok("get", "serviceaccount", f"kosmos-agent-{name}", "-n", "kosmos-system")
    assert not link.host.ok("get", "clusterrolebinding", f"kosmos-agent-{name}")
    assert not member.ok("get", "namespace", namespace)  # join made it, unjoin removed it
