"""``kosmosctl local up``'s Kosmos set-up: what it installs and how it reports, no cluster."""

from __future__ import annotations

from click.testing import CliRunner

from kosmos.api.resources import CLUSTERROLES, CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS, ROLES
from kosmos.cli.main import cli
from kosmos.ops import apply as applier
from kosmos.ops import local_setup, manifests


def test_local_objects_are_installs_minus_component_deployments_and_rbac():
    objects = local_setup.local_objects()
    resources = [r for r, _ in objects]
    assert not {DEPLOYMENTS, CLUSTERROLES, ROLES} & set(resources)
    crds = [r for r in resources if r == CUSTOMRESOURCEDEFINITIONS]
    assert resources[: len(crds)] == crds and len(crds) == len(manifests.crd_objects())
    names = [manifests.display_name(r, b) for r, b in objects]
    assert "namespace/kosmos-system" in names
    assert "storageclass.storage.k8s.io/kosmos-leaf" in names
    policy = "mutatingadmissionpolicy.admissionregistration.k8s.io/kosmos-scheduler-leaf-toleration"
    assert policy in names
    assert names[-1] == "cluster.kosmos.io/kosmos-control-cluster"
    root = objects[-1][1]
    assert root["spec"]["clusterTreeOptions"]["enable"] is True
    assert root["spec"]["clusterLinkOptions"]["enable"] is False  # nothing to link locally


def test_summarize_counts_actions_in_a_stable_order():
    assert applier.summarize([]) == "0 objects: none"
    actions = ["unchanged", "created", "unchanged", "configured"]
    assert applier.summarize(actions) == "4 objects: 1 created, 1 configured, 2 unchanged"


def test_sample_app_needs_kosmos_and_a_member_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path / "local"))
    runner = CliRunner()
    without = runner.invoke(cli, ["local", "up", "--sample-app", "--without-kosmos"])
    assert without.exit_code == 2 and "needs Kosmos" in without.output
    alone = runner.invoke(cli, ["local", "up", "--sample-app", "--members", "0"])
    assert alone.exit_code == 2 and "--members >= 1" in alone.output
    assert not (tmp_path / "local").exists()


def test_installed_components_tolerate_the_control_plane_taint():
    for component in manifests.COMPONENTS:
        pod = manifests.deployment(manifests.InstallOptions(), component)["spec"]["template"]
        assert manifests.CONTROL_PLANE_TOLERATION in pod["spec"]["tolerations"]
