"""kosmosctl export svc, import svc and get --all-clusters against the real host and members.

Members are the tree fixture's (joined by kosmosctl); the cluster-manager is stopped while these
run, so no controller answers before kosmosctl does, and kosmosctl reaches the members through
their Cluster kubeconfigs as a user's would. Unjoin taking the prober away is in test_inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from kosmos.api import names
from kosmos.cli.main import cli
from tests.fixtures.clusters import LocalEnv
from tests.fixtures.tree import TreeEnv
from tests.integration.mcs.conftest import PREFIX


def kosmosctl(env: LocalEnv, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--kubeconfig", str(env.kubeconfig(env.host)), *args])


@pytest.fixture(scope="module")
def joined(mcs: TreeEnv) -> Iterator[LocalEnv]:
    """The tree's members (joined by ``kosmosctl join``) with the cluster-manager stopped, so
    that no controller answers an export before kosmosctl does; it runs again afterwards."""
    mcs.stop()
    try:
        yield mcs.env
    finally:
        mcs.start("--auto-mcs-prefix", PREFIX)


def test_join_deployed_the_prober_in_each_member(joined: LocalEnv):
    for member in joined.members:
        deployment = json.loads(
            joined.kubectl(member).run(
                "get", "deployment", "-n", "kosmos-system", "kosmos-eps-probe", "-o", "json"
            )
        )
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][0] == "eps-probe"


def test_export_import_and_get_across_clusters(joined: LocalEnv, namespace: str):
    env, member = joined, joined.members[0]
    missing = kosmosctl(env, "export", "svc", "nginx", "-n", namespace)
    assert missing.exit_code == 1 and f"service {namespace}/nginx not found" in missing.stderr
    host = env.kubectl(env.host)
    host.run("create", "service", "clusterip", "nginx", "-n", namespace, "--tcp", "80:8080")

    first = kosmosctl(env, "export", "svc", "nginx", "-n", namespace)
    assert first.exit_code == 0 and "created" in first.stdout, first.output
    again = kosmosctl(env, "export", "svc", "nginx", "-n", namespace)
    assert again.exit_code == 0 and "already exists" in again.stdout

    args = ("import", "svc", "nginx", "--to-leafcluster", member, "-n", namespace)
    created = kosmosctl(env, *args)
    assert created.exit_code == 0 and "created" in created.stdout, created.output
    imported = json.loads(
        env.kubectl(member).run("get", "serviceimport", "nginx", "-n", namespace, "-o", "json")
    )
    assert imported["spec"]["type"] == "ClusterSetIP"
    assert imported["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP"}]
    assert kosmosctl(env, *args).stdout.strip().endswith("already exists")
    unknown = kosmosctl(env, "import", "svc", "nginx", "--to-leafcluster", "nope", "-n", namespace)
    assert unknown.exit_code == 1 and "cluster nope is not joined" in unknown.stderr

    host.run("patch", "service", "nginx", "-n", namespace, "--type", "json", "-p",
             '[{"op": "replace", "path": "/spec/ports/0/port", "value": 81}]')  # fmt: skip
    differs = kosmosctl(env, *args)
    assert differs.exit_code == 1 and "already exists with type" in differs.stderr

    table = kosmosctl(env, "get", "serviceimports", "--all-clusters", "-n", namespace)
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["CLUSTER", "NAME", "TYPE"]
    assert [r.split()[:3] for r in rows] == [[member, "nginx", "ClusterSetIP"]]
    exports = kosmosctl(env, "get", "svcex", "--all-clusters", "-A", "-o", "json")
    items = [
        i for i in json.loads(exports.stdout)["items"] if i["metadata"]["namespace"] == namespace
    ]
    assert [i["metadata"]["clusterName"] for i in items] == [names.ROOT_CLUSTER_NAME]
    wide = kosmosctl(env, "get", "svcex", "--all-clusters", "-A")
    assert wide.stdout.splitlines()[0].split()[:3] == ["CLUSTER", "NAMESPACE", "NAME"]
