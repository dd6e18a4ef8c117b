"""kosmosctl commands, the parts that need no cluster: completion, errors, rendering."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kosmos.api.resources import DEPLOYMENTS
from kosmos.cli.get import render_table
from kosmos.cli.main import cli
from kosmos.cli.version import image_tag
from kosmos.ops.apply import Step, unavailable


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o"), ("zsh", "#compdef kosmosctl"), ("fish", "complete --no-files")],
)
def test_completion_prints_clicks_script(shell: str, marker: str):
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.output and "_KOSMOSCTL_COMPLETE" in result.output


def test_get_unknown_kind_is_one_line_naming_the_valid_ones():
    result = CliRunner().invoke(cli, ["--kubeconfig", "/nonexistent", "get", "widgets"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "unknown kind 'widgets'" in line and "clusters (cluster)" in line


def test_version_without_a_cluster_still_prints_the_client_version():
    result = CliRunner().invoke(cli, ["--kubeconfig", "/nonexistent", "version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Client Version: v")
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Server Version: unavailable:") and "/nonexistent" in line


def test_install_rejects_an_invalid_namespace_before_connecting():
    result = CliRunner().invoke(cli, ["install", "-n", "Not_Valid"])
    assert result.exit_code == 2 and "not a valid namespace name" in result.stderr


TABLE = {
    "columnDefinitions": [
        {"name": "Name", "type": "string", "priority": 0},
        {"name": "READY", "type": "string", "priority": 0},
        {"name": "EXTRA", "type": "boolean", "priority": 1},
    ],
    "rows": [
        {"cells": ["a", None, True], "object": {"metadata": {"name": "a", "namespace": "ns1"}}},
    ],
}


def test_table_hides_priority_columns_unless_wide_and_prints_like_kubectl():
    assert render_table(TABLE, wide=False, show_namespace=False) == (
        ["Name", "READY"],
        [["a", ""]],
    )
    assert render_table(TABLE, wide=True, show_namespace=True) == (
        ["namespace", "Name", "READY", "EXTRA"],
        [["ns1", "a", "", "true"]],
    )


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("docker.io/kosmos/kosmos:v0.1.0", "v0.1.0"),
        ("localhost:5000/kosmos", "latest"),
        ("reg/kosmos@sha256:abc", "sha256:abc"),
    ],
)
def test_image_tag(image: str, tag: str):
    assert image_tag(image) == tag


def test_deployment_is_available_only_when_rolled_out():
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1},
    }
    assert unavailable(deployment) == "rollout not observed yet"
    deployment["status"] = {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 0}
    assert unavailable(deployment) == "0/1 available"
    deployment["status"].update(
        availableReplicas=1, conditions=[{"type": "Available", "status": "True"}]
    )
    assert unavailable(deployment) == ""
    deployment["status"]["replicas"] = 2  # the old pod still serves, the new one does not
    assert unavailable(deployment) == "1 old replicas pending termination"


def test_step_lines_read_like_kubectl_apply():
    body = {"metadata": {"name": "kosmos-cluster-manager", "namespace": "kosmos-system"}}
    assert Step(DEPLOYMENTS, body, "created", {}).line(dry_run=True) == (
        "deployment.apps/kosmos-cluster-manager created (server dry run)"
    )
    assert Step(DEPLOYMENTS, body, "unchanged", {}).line(dry_run=False) == (
        "deployment.apps/kosmos-cluster-manager unchanged"
    )
    step = Step(DEPLOYMENTS, body, unchecked="namespace kosmos-system does not exist yet")
    assert step.line(dry_run=True).endswith(
        "(not checked: namespace kosmos-system does not exist yet)"
    )


def test_version_reads_the_kosmos_container_of_a_deployment():
    from kosmos.cli.version import kosmos_image
    from kosmos.ops import manifests

    options = manifests.InstallOptions(image_repository="reg.example/k", version="v7")
    for _resource, body in manifests.install_objects(options):
        if body["kind"] == "Deployment":
            assert kosmos_image(body) == "reg.example/k/kosmos:v7", body["metadata"]["name"]


def test_install_log_format_reaches_the_install_options(monkeypatch):
    from kosmos.cli import install as install_command

    seen = []

    async def record(cli_ctx, options, report, **kwargs):
        seen.append(options.log_format)

    monkeypatch.setattr(install_command, "install_kosmos", record)
    for args, expected in (([], "text"), (["--log-format", "json"], "json")):
        result = CliRunner().invoke(cli, ["install", *args])
        assert result.exit_code == 0, result.output
        assert seen.pop() == expected
    result = CliRunner().invoke(cli, ["install", "--log-format", "xml"])
    assert result.exit_code == 2


def _recorded_join(monkeypatch, tmp_path):
    """``join cluster``'s base argv and the JoinOptions each run would have joined with."""
    from kosmos.cli import join as join_command

    member = tmp_path / "member.yaml"
    member.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: m\n"
        "clusters: [{name: m, cluster: {server: 'https://m:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: m, context: {cluster: m, user: u}}]\n"
    )
    seen = []

    async def record(hosts, options, kubeconfig, wait_seconds, progress):
        seen.append(options)
        return "recorded"

    monkeypatch.setattr(join_command, "join_member", record)
    return ["join", "cluster", "--name", "m1", "--kubeconfig", str(member)], seen


def test_join_log_format_reaches_the_join_options(monkeypatch, tmp_path):
    base, seen = _recorded_join(monkeypatch, tmp_path)
    for args, expected in (([], "text"), (["--log-format", "json"], "json")):
        result = CliRunner().invoke(cli, [*base, *args])
        assert result.exit_code == 0, result.output
        assert seen.pop().log_format == expected
    result = CliRunner().invoke(cli, [*base, "--log-format", "xml"])
    assert result.exit_code == 2 and not seen


def test_join_direct_routing_needs_gateway_mode(monkeypatch, tmp_path):
    base, seen = _recorded_join(monkeypatch, tmp_path)
    result = CliRunner().invoke(cli, [*base, "--network-type", "gateway", "--direct-routing"])
    assert result.exit_code == 0, result.output
    assert seen.pop().direct_routing is True
    result = CliRunner().invoke(cli, [*base, "--direct-routing"])
    assert result.exit_code == 1 and not seen
    assert "--direct-routing needs --network-type gateway" in result.output
