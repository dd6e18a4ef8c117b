"""install on the real host, then get and version read it back; a second install is a no-op."""

from __future__ import annotations

import json

import pytest

from kosmos.api import names
from tests.fixtures.clusters import LocalEnv
from tests.integration.cli.conftest import kosmosctl, ok

NAMESPACE = "kosmos-cli-get"


@pytest.fixture(scope="module")
def installed(local_env: LocalEnv, restore_host: list[str]) -> str:
    restore_host.append(NAMESPACE)
    result = ok(kosmosctl(local_env, "install", "-n", NAMESPACE, "--wait", "--timeout", "90"))
    assert "cluster.kosmos.io/kosmos-control-cluster" in result.stdout
    return result.stdout


def test_install_creates_components_and_the_root_cluster(local_env: LocalEnv, installed: str):
    host = local_env.kubectl(local_env.host)
    deployments = json.loads(host.run("get", "deployments", "-n", NAMESPACE, "-o", "json"))
    available = {
        d["metadata"]["name"]: d["status"].get("availableReplicas") for d in deployments["items"]
    }
    assert available == {
        "kosmos-cluster-manager": 1,
        "kosmos-network-manager": 1,
        "kosmos-eps-probe": 1,
        "kosmos-scheduler": 1,
        "kosmos-coredns": 1,
    }
    root = json.loads(host.run("get", "cluster", names.ROOT_CLUSTER_NAME, "-o", "json"))
    assert root["metadata"]["annotations"][names.ANNOTATION_CLUSTER_ROLE] == "root"
    assert root["spec"]["namespace"] == NAMESPACE


def test_get_clusters_shows_the_root_cluster_with_the_seed_columns(
    local_env: LocalEnv, installed: str
):
    result = ok(kosmosctl(local_env, "get", "clusters"))
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "NETWORK_TYPE", "IP_FAMILY", "READY", "AGE"]
    row = next(r for r in rows if r.startswith(names.ROOT_CLUSTER_NAME + " "))
    assert row.split()[:3] == [names.ROOT_CLUSTER_NAME, "p2p", "all"]
    # The same columns kubectl prints (the apiserver renders both).
    kubectl_header = local_env.kubectl(local_env.host).run("get", "clusters").splitlines()[0]
    assert kubectl_header.split() == header.split()


def test_get_by_name_alias_and_format(local_env: LocalEnv, installed: str):
    result = ok(kosmosctl(local_env, "get", "cluster", names.ROOT_CLUSTER_NAME, "-o", "json"))
    body = json.loads(result.stdout)
    assert body["kind"] == "Cluster" and "managedFields" not in body["metadata"]
    listed = json.loads(ok(kosmosctl(local_env, "get", "Cluster", "-o", "json")).stdout)
    assert names.ROOT_CLUSTER_NAME in {i["metadata"]["name"] for i in listed["items"]}
    empty = ok(kosmosctl(local_env, "get", "svcex", "-n", NAMESPACE))
    assert empty.stdout == "" and f"No resources found in {NAMESPACE} namespace." in empty.stderr
    missing = kosmosctl(local_env, "get", "cluster", "no-such-cluster")
    assert missing.exit_code == 1 and "not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_install_twice_is_idempotent(local_env: LocalEnv, installed: str):
    host = local_env.kubectl(local_env.host)
    before = host.run("get", "deployments,serviceaccounts", "-n", NAMESPACE, "-o", "json")
    result = ok(kosmosctl(local_env, "install", "-n", NAMESPACE))
    lines = result.stdout.splitlines()
    assert lines and all(line.endswith(" unchanged") for line in lines), lines
    after = host.run("get", "deployments,serviceaccounts", "-n", NAMESPACE, "-o", "json")
    versions = [
        {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in json.loads(s)["items"]}
        for s in (before, after)
    ]
    assert versions[0] == versions[1]


def test_version_prints_the_host_version_and_installed_tags(local_env: LocalEnv, installed: str):
    server = json.loads(local_env.kubectl(local_env.host).run("version", "-o", "json"))
    git_version = server["serverVersion"]["gitVersion"]
    text = ok(kosmosctl(local_env, "version", "-n", NAMESPACE)).stdout
    assert f"Server Version: {git_version}" in text
    assert "kosmos-cluster-manager" in text and "kosmos-network-manager" in text
    data = json.loads(ok(kosmosctl(local_env, "version", "-n", NAMESPACE, "-o", "json")).stdout)
    assert data["serverVersion"]["gitVersion"] == git_version
    tags = {c["name"]: c["version"] for c in data["kosmos"]["components"]}
    client = data["clientVersion"]["gitVersion"]
    assert tags == {
        "kosmos-cluster-manager": client,
        "kosmos-network-manager": client,
        "kosmos-eps-probe": client,
        "kosmos-scheduler": client,  # the extender's image, not kube-scheduler's
        "kosmos-coredns": client,  # the zone writer's image, not CoreDNS's
    }
