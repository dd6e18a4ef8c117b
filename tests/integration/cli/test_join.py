"""kosmosctl join/unjoin against the real host and members: checks before writes."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from kosmos.cli.main import cli
from kosmos.local.nodes.plan import network as network_of
from tests.fixtures.clusters import LocalEnv


@pytest.fixture
def installed(local_env: LocalEnv, kosmos_crds):
    host = local_env.kubectl(local_env.host)
    if not host.ok("get", "namespace", "kosmos-system"):
        host.run("create", "namespace", "kosmos-system")
    yield local_env
    for name in ("cluster1", "cluster2", "j-bad"):
        host.run("delete", "cluster", name, "--ignore-not-found", "--wait=true")


def kosmosctl(env: LocalEnv, *args: str):
    result = CliRunner().invoke(
        cli, ["--kubeconfig", str(env.kubeconfig(env.host)), *args], catch_exceptions=False
    )
    return result


def host_state(env: LocalEnv) -> tuple[str, str]:
    host = env.kubectl(env.host)
    clusters = host.run("get", "clusters", "-o", "name")
    secrets = host.run("get", "secrets", "-n", "kosmos-system", "-o", "name")
    return clusters, secrets


def test_seed_join_command_creates_secret_and_cluster_then_unjoin_removes_both(installed):
    env = installed
    member = str(env.kubeconfig("cluster1"))
    result = kosmosctl(
        env,
        "join",
        "cluster",
        "--name",
        "cluster1",
        "--kubeconfig",
        member,
        "--cni",
        "calico",
        "--default-nic",
        "eth0",
        "--enable-all",
        # the agents on cluster1's real node reach the host at the relay, not at 127.0.0.1
        "--link-apiserver",
        network_of(env.plan(env.host)).apiserver,
    )
    assert result.exit_code == 0, result.output
    assert "cluster cluster1 joined" in result.output
    host = env.kubectl(env.host)
    cluster = json.loads(host.run("get", "cluster", "cluster1", "-o", "json"))
    assert cluster["spec"]["clusterLinkOptions"]["defaultNICName"] == "eth0"
    secret = json.loads(
        host.run("get", "secret", "kosmos-kubeconfig-cluster1", "-n", "kosmos-system", "-o", "json")
    )
    assert secret["metadata"]["ownerReferences"][0]["uid"] == cluster["metadata"]["uid"]

    again = kosmosctl(env, "join", "cluster", "--name", "cluster1", "--kubeconfig", member)
    assert again.exit_code == 0 and "already joined" in again.output

    other = kosmosctl(
        env,
        "join",
        "cluster",
        "--name",
        "cluster1",
        "--kubeconfig",
        str(env.kubeconfig("cluster2")),
    )
    assert other.exit_code == 1
    assert "already joined with another kubeconfig" in other.output

    gone = kosmosctl(env, "unjoin", "cluster", "--name", "cluster1")
    assert gone.exit_code == 0, gone.output
    assert not host.ok("get", "cluster", "cluster1")
    assert not host.ok("get", "secret", "kosmos-kubeconfig-cluster1", "-n", "kosmos-system")
    assert "not joined" in kosmosctl(env, "unjoin", "cluster", "--name", "cluster1").output


def no_rights_kubeconfig(env: LocalEnv, tmp_path) -> str:
    """A kubeconfig for the member with a token of a service account that has no RBAC."""
    member = env.kubectl("cluster1")
    member.run(
        "create",
        "serviceaccount",
        "kosmos-norights",
        "-n",
        "default",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    if not member.ok("get", "serviceaccount", "kosmos-norights", "-n", "default"):
        member.run("create", "serviceaccount", "kosmos-norights", "-n", "default")
    token = member.run("create", "token", "kosmos-norights", "-n", "default").strip()
    config = yaml.safe_load(env.kubeconfig("cluster1").read_text())
    config["users"] = [{"name": "cluster1", "user": {"token": token}}]
    path = tmp_path / "norights"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def bad_kubeconfigs(env: LocalEnv, tmp_path) -> dict[str, tuple[list[str], str]]:
    unparsable = tmp_path / "unparsable"
    unparsable.write_text("clusters: [oops")
    nowhere = tmp_path / "nowhere"
    nowhere.write_text(
        env.kubeconfig("cluster1")
        .read_text()
        .replace(f":{env.plan('cluster1').apiserver_port}", ":1")
    )
    good = str(env.kubeconfig("cluster1"))
    return {
        "unparsable": (["--kubeconfig", str(unparsable)], "not valid YAML"),
        "unreachable": (["--kubeconfig", str(nowhere)], "cannot reach https://127.0.0.1:1"),
        "wrong-context": (["--kubeconfig", good, "--context", "nope"], "no context 'nope'"),
        "no-rights": (
            ["--kubeconfig", no_rights_kubeconfig(env, tmp_path)],
            "lacks rights Kosmos needs: list nodes",
        ),
        "invalid-cidr": (
            ["--kubeconfig", good, "--cluster-pod-cidrs", "10.0.0.0/33"],
            "spec.clusterLinkOptions.clusterPodCIDRs[0]",
        ),
        "bad-leaf-model": (["--kubeconfig", good, "--leaf-model", "all"], "--leaf-model"),
    }


@pytest.mark.parametrize(
    "case",
    ["unparsable", "unreachable", "wrong-context", "no-rights", "invalid-cidr", "bad-leaf-model"],
)
def test_bad_join_fails_in_one_line_and_creates_nothing(installed, tmp_path, case):
    env = installed
    args, expected = bad_kubeconfigs(env, tmp_path)[case]
    before = host_state(env)
    result = kosmosctl(env, "join", "cluster", "--name", "j-bad", *args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert host_state(env) == before
