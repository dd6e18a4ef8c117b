"""kosmosctl export/import svc and get --all-clusters: what needs no cluster."""

from __future__ import annotations

from click.testing import CliRunner

from kosmos.cli.main import cli
from kosmos.ops.services import _shape, service_import


def svc(cluster_ip="10.96.0.7", ports=None):
    return {
        "metadata": {"name": "nginx", "namespace": "web", "labels": {"a": "b"}},
        "spec": {
            "clusterIP": cluster_ip,
            "ports": ports
            or [
                {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31444},
                {"name": "dns", "port": 53, "protocol": "UDP", "appProtocol": "dns"},
            ],
        },
    }


def test_import_of_a_cluster_ip_service_is_clustersetip_with_service_ports():
    body = service_import(svc())
    assert body["apiVersion"] == "multicluster.x-k8s.io/v1beta1"
    assert body["metadata"] == {"name": "nginx", "namespace": "web"}  # no labels copied
    assert body["spec"] == {
        "type": "ClusterSetIP",
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80},
            {"name": "dns", "protocol": "UDP", "port": 53, "appProtocol": "dns"},
        ],
    }


def test_import_of_a_headless_service_is_headless():
    assert service_import(svc(cluster_ip="None"))["spec"]["type"] == "Headless"


def test_shape_fills_defaults_and_ignores_order():
    written = {"spec": {"type": "ClusterSetIP", "ports": [{"port": 80}]}}
    desired = service_import(svc(ports=[{"port": 80, "protocol": "TCP"}]))
    assert _shape(written) == _shape(desired)
    other = service_import(svc(ports=[{"port": 81}]))
    assert _shape(written) != _shape(other)


def test_export_and_import_accept_only_services():
    runner = CliRunner()
    result = runner.invoke(cli, ["--kubeconfig", "/nonexistent", "export", "deploy", "x"])
    assert result.exit_code == 2 and "only services" in result.stderr
    args = ["--kubeconfig", "/nonexistent", "import", "svc", "x"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and "--to-leafcluster" in result.stderr


def test_all_clusters_is_only_for_the_mcs_kinds():
    args = ["--kubeconfig", "/nonexistent", "get", "clusters", "--all-clusters"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "serviceimports" in result.stderr
