"""The chart renders what ``kosmosctl install`` applies, checked with the real ``helm``.

For each flag set, ``helm template`` with the equivalent values is compared object by object
with the pure builders ``kosmosctl install`` applies (``manifests.install_objects``, and the
host's ClusterLink agents of ``hostlink.set_up``). What may differ, and only that:

- Helm's bookkeeping: ``app.kubernetes.io/managed-by`` is ``Helm`` (kosmosctl: ``kosmosctl``)
  and every object but a pod template carries ``helm.sh/chart``;
- the Namespace: ``helm install --create-namespace`` creates it, the chart holds none;
- the CRDs live in ``crds/`` (the generator's files, without kosmosctl's three labels), which
  ``helm template`` leaves out;
- the chart's hook resources (``helm.sh/hook``: the ``kosmos helm-hook`` Jobs and their
  identity), which do what install does beyond objects (the clusterset.local stanza).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS, NAMESPACES
from kosmos.ops import chart, manifests
from kosmos.ops.kubenest import KubenestOptions
from kosmos.ops.manifests import InstallOptions
from tests.helm import Helm, helm

VERSION = manifests.default_version()
Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return helm(tmp_path_factory.mktemp("helm"))


def expected(options: InstallOptions) -> dict[Key, Any]:
    planned = [
        (r, b)
        for r, b in manifests.install_objects(options)
        if r not in (CUSTOMRESOURCEDEFINITIONS, NAMESPACES)
    ]
    if options.enable_link and options.namespace == "kosmos-system":
        planned += chart.host_agent_objects(options)
    return {_key(b): copy.deepcopy(b) for _, b in planned}


def rendered(tool: Helm, values: dict[str, Any], namespace: str) -> dict[Key, Any]:
    out = {}
    for body in tool.template(values, namespace):
        if "helm.sh/hook" in (body["metadata"].get("annotations") or {}):
            continue
        out[_key(body)] = _without_helm_bookkeeping(body)
    return out


def _key(body: Any) -> Key:
    meta = body["metadata"]
    return body["kind"], meta.get("namespace", ""), meta["name"]


def _without_helm_bookkeeping(body: Any) -> Any:
    def relabel(labels: dict[str, str] | None) -> None:
        if labels and labels.get("app.kubernetes.io/managed-by") == "Helm":
            labels["app.kubernetes.io/managed-by"] = manifests.MANAGED_BY

    meta = body["metadata"]
    labels = meta.get("labels") or {}
    assert labels.pop("helm.sh/chart", "kosmos-0").startswith("kosmos-"), body
    relabel(labels)
    template = (body.get("spec") or {}).get("template")
    if template:
        assert "helm.sh/chart" not in (template["metadata"].get("labels") or {})
        relabel(template["metadata"].get("labels"))
    return body


def assert_same(tool: Helm, values: dict[str, Any], options: InstallOptions) -> None:
    want = expected(options)
    got = rendered(tool, values, options.namespace)
    assert sorted(got) == sorted(want)
    for key, body in want.items():
        assert got[key] == body, key


def test_defaults_render_what_install_applies(tool: Helm):
    assert_same(tool, {}, InstallOptions(version=VERSION))


@pytest.mark.parametrize(
    ("values", "flags"),
    [
        ({"clusterTree": {"enabled": False}}, {"enable_tree": False}),
        ({"clusterLink": {"enabled": False}}, {"enable_link": False}),
        ({"scheduler": {"enabled": False}}, {"enable_scheduler": False}),
        ({"mcsDns": {"enabled": False}}, {"mcs_dns": False}),
        ({"clusterTree": {"migration": True}}, {"migration": True}),
    ],
    ids=["no-tree", "no-link", "no-scheduler", "no-mcs-dns", "migration"],
)
def test_each_component_toggled(tool: Helm, values: dict[str, Any], flags: dict[str, Any]):
    assert_same(tool, values, InstallOptions(version=VERSION, **flags))


def test_kubenest_on_with_its_flags(tool: Helm):
    values = {
        "kubenest": {
            "enabled": True,
            "advertiseAddress": "10.0.0.7",
            "controlPlaneNodeSelector": {"a.example/cp": "yes", "b.example/zone": "z1"},
            "imageRepository": "mirror.example/k8s",
        }
    }
    nest = KubenestOptions(
        advertise_address="10.0.0.7",
        node_selector=(("a.example/cp", "yes"), ("b.example/zone", "z1")),
        image_repository="mirror.example/k8s",
    )
    assert_same(tool, values, InstallOptions(version=VERSION, enable_kubenest=True, kubenest=nest))


def test_everything_else_the_flags_set(tool: Helm):
    values = {
        "image": {"repository": "registry.example/kosmos-images", "tag": "v9.9.9"},
        "nodeSelector": {"local.kosmos.io/real-node": "true"},
        "podAnnotations": {"example.com/rev": "7"},
        "clusterTree": {"autoMcsPrefixes": ["team-a", "team-b"]},
        "clusterLink": {"cni": "flannel", "defaultNic": "eth1"},
    }
    options = InstallOptions(
        version="v9.9.9",
        image_repository="registry.example/kosmos-images",
        node_selector=(("local.kosmos.io/real-node", "true"),),
        pod_annotations=(("example.com/rev", "7"),),
        auto_mcs_prefixes=("team-a", "team-b"),
        cni="flannel",
        default_nic="eth1",
    )
    assert_same(tool, values, options)


def test_another_namespace_has_no_host_agents(tool: Helm):
    options = InstallOptions(version=VERSION, namespace="kosmos-other")
    assert_same(tool, {}, options)
    assert not any(k[0] == "DaemonSet" for k in expected(options))


def test_values_beyond_the_flags(tool: Helm):
    """Leader election off, resources, and the ServiceMonitor (nothing kosmosctl has)."""
    values = {
        "leaderElection": {"enabled": False},
        "clusterTree": {"resources": {"limits": {"memory": "1Gi"}}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
    }
    objects = {_key(b): b for b in tool.template(values)}
    manager = objects["Deployment", "kosmos-system", "kosmos-cluster-manager"]
    container = manager["spec"]["template"]["spec"]["containers"][0]
    assert "--no-leader-elect" in container["args"] and "--leader-elect" not in container["args"]
    # Helm merges maps: the default requests stay, the limit is added
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "1Gi"},
    }
    monitor = objects["ServiceMonitor", "kosmos-system", "kosmos"]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"health", "metrics"}
    service = objects["Service", "kosmos-system", "kosmos-metrics"]
    assert service["spec"]["clusterIP"] == "None"


def test_lint_strict_passes(tool: Helm):
    out = tool.run("lint", "--strict", str(chart.CHART_DIR))
    assert "0 chart(s) failed" in out.stdout, out.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"clusterTree": {"enabled": "yes"}}, "'/clusterTree/enabled': got string, want boolean"),
        ({"image": {"pullPolicy": "Sometimes"}}, "'/image/pullPolicy': value must be one of"),
        ({"kubenest": {"advertiseAddress": "10.0.0"}}, "'/kubenest/advertiseAddress'"),
        ({"clusterTre": {"enabled": False}}, "clusterTre"),
    ],
    ids=["not-a-boolean", "unknown-pull-policy", "bad-address", "misspelt-key"],
)
def test_bad_values_fail_naming_the_key(tool: Helm, tmp_path: Path, values: Any, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    out = tool.run("template", "kosmos", str(chart.CHART_DIR), "-f", str(path), check=False)
    assert out.returncode != 0
    assert "values don't meet the specifications of the schema" in out.stderr, out.stderr
    assert message in out.stderr, out.stderr
