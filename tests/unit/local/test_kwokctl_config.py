import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from kosmos.local import kwokctl
from kosmos.local.kwokctl import config_documents
from kosmos.local.nodes.plan import apiserver_sans
from kosmos.local.toolchain import GROUPS, BuiltGroup, Toolchain
from kosmos.local.topology import KWOK_NODE_SELECTOR, Options, plan


def fake_toolchain() -> Toolchain:
    return Toolchain({g.name: BuiltGroup(g, Path(f"/cache/{g.name}"), g.version()) for g in GROUPS})


def args(doc, component):
    patch = next(p for p in doc["componentsPatches"] if p["name"] == component)
    return {a["key"]: a["value"] for a in patch["extraArgs"]}


def test_config_uses_local_binaries_fixed_ports_and_loopback():
    cluster = plan(Options())[1]
    doc = config_documents(cluster, fake_toolchain())[0]
    options = doc["options"]
    assert options["runtime"] == "binary"
    assert options["bindAddress"] == "127.0.0.1"
    assert options["kubeApiserverPort"] == cluster.apiserver_port
    assert options["etcdPeerPort"] == cluster.ports["etcd-peer"]
    assert options["kubeApiserverBinary"] == "/cache/k8s/kube-apiserver"
    assert options["kwokControllerBinary"] == "/cache/kwok/kwok"
    assert not any(str(v).startswith("http") for v in options.values())


def test_kwok_manages_only_labelled_nodes_and_service_cidr_is_the_plans():
    cluster = plan(Options())[2]
    doc = config_documents(cluster, fake_toolchain())[0]
    assert args(doc, "kwok-controller") == {
        "manage-all-nodes": "false",
        "manage-nodes-with-label-selector": KWOK_NODE_SELECTOR,
    }
    assert args(doc, "kube-apiserver")["service-cluster-ip-range"] == cluster.service_cidr


def test_host_controllers_can_start_20_pods_a_second():
    """kcm's ReplicaSet controller spends a create and an event per pod, the scheduler a
    binding and an event: the defaults (20 and 50 QPS) would cap a host at 10-25 pods/s."""
    doc = config_documents(plan(Options())[0], fake_toolchain())[0]
    for component in ("kube-controller-manager", "kube-scheduler"):
        assert float(args(doc, component)["kube-api-qps"]) >= 2 * 20 * 2
        assert int(args(doc, component)["kube-api-burst"]) >= 100


@pytest.fixture
def local_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    return tmp_path


def by_kind(documents):
    return {d["kind"]: d for d in documents}


def test_apiserver_reaches_kwok_nodes_by_internal_ip_not_by_unresolvable_hostname():
    for cluster in plan(Options()):
        doc = config_documents(cluster, fake_toolchain())[0]
        types = args(doc, "kube-apiserver")["kubelet-preferred-address-types"]
        assert types.split(",") == ["InternalIP", "ExternalIP", "Hostname"]


def test_apiserver_proxies_aggregated_apis_to_endpoints_with_kwoks_admin_certificate(local_dir):
    for cluster in plan(Options(real_nodes=1)):
        flags = args(config_documents(cluster, fake_toolchain())[0], "kube-apiserver")
        pki = local_dir / "kwok" / "clusters" / cluster.name / "pki"
        assert flags["enable-aggregator-routing"] == "true"
        assert flags["requestheader-client-ca-file"] == str(pki / "ca.crt")
        assert flags["requestheader-allowed-names"] == "kwok-admin"
        assert flags["requestheader-username-headers"] == "X-Remote-User"
        assert flags["requestheader-group-headers"] == "X-Remote-Group"
        assert flags["requestheader-extra-headers-prefix"] == "X-Remote-Extra-"


def test_every_cluster_gets_logs_and_exec_for_all_pods_from_its_own_work_dir(local_dir):
    for cluster in plan(Options()):
        documents = by_kind(config_documents(cluster, fake_toolchain()))
        assert set(documents) == {
            "KwokctlConfiguration",
            "ClusterLogs",
            "ClusterExec",
            "ClusterPortForward",
        }
        cluster_dir = local_dir / "kwok" / "clusters" / cluster.name
        for kind in ("ClusterLogs", "ClusterExec", "ClusterPortForward"):
            doc = documents[kind]
            assert doc["apiVersion"] == "kwok.x-k8s.io/v1alpha1"
            assert doc["metadata"]["name"]
            assert "selector" not in doc["spec"], "no selector: every pod, every namespace"
        (log,) = documents["ClusterLogs"]["spec"]["logs"]
        assert log == {"logsFile": str(cluster_dir / "pod.log")}, "no containers: all of them"
        (target,) = documents["ClusterExec"]["spec"]["execs"]
        assert "containers" not in target
        assert target["local"] == {
            "workDir": str(cluster_dir),
            "envs": [{"name": "KOSMOS_CLUSTER", "value": cluster.name}],
        }
        (forward,) = documents["ClusterPortForward"]["spec"]["forwards"]
        assert "ports" not in forward, "every port"
        answer = subprocess.run(forward["command"], capture_output=True, check=True).stdout
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(f"\r\n\r\nhello from {cluster.name}\n".encode())


def test_documents_survive_the_yaml_kwokctl_reads():
    documents = config_documents(plan(Options())[1], fake_toolchain())
    assert list(yaml.safe_load_all(yaml.safe_dump_all(documents))) == documents


CRI_LINE = re.compile(r"^(\S+) stdout F (.+)$")


def test_pod_log_is_cri_formatted_utc_and_names_the_cluster():
    now = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=2)))
    lines = kwokctl.pod_log_text("cluster2", now).splitlines()
    assert len(lines) >= 2
    parsed = [CRI_LINE.match(line) for line in lines]
    assert all(parsed), lines
    stamps = {m.group(1) for m in parsed if m}
    assert stamps == {"2025-03-04T03:06:07.891011Z"}
    assert datetime.fromisoformat(stamps.pop()) == now.astimezone(UTC)
    messages = [m.group(2) for m in parsed if m]
    assert messages == kwokctl.pod_log_messages("cluster2")
    assert messages[0] == "hello from cluster2"
    assert all("cluster2" in m for m in messages)


def test_pod_log_is_written_once_and_kept(local_dir):
    path = kwokctl.ensure_pod_log("cluster1")
    assert path == local_dir / "kwok" / "clusters" / "cluster1" / "pod.log"
    assert "hello from cluster1" in path.read_text()
    path.write_text(path.read_text() + "2025-01-01T00:00:00Z stdout F appended\n")
    kwokctl.ensure_pod_log("cluster1")
    assert path.read_text().endswith("stdout F appended\n")


def write_kwok_yaml(local_dir, documents):
    directory = local_dir / "kwok" / "clusters" / "cluster1"
    directory.mkdir(parents=True)
    (directory / "kwok.yaml").write_text(yaml.safe_dump_all(documents))


def saved_config(*apiserver_args):
    return {
        "kind": "KwokctlConfiguration",
        "components": [
            {"name": "etcd", "args": ["--name=node0"]},
            {"name": "kube-apiserver", "args": list(apiserver_args)},
        ],
    }


def test_a_cluster_created_with_logs_and_exec_is_recognised(local_dir):
    write_kwok_yaml(
        local_dir,
        [
            saved_config(
                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                "--kubelet-client-certificate=/pki/admin.crt",
                "--enable-aggregator-routing=true",
            ),
            {"kind": "Stage", "metadata": {"name": "pod-ready"}},
            *kwokctl.debugging_documents("cluster1"),
        ],
    )
    assert kwokctl.serves_logs_and_exec("cluster1")


@pytest.mark.parametrize(
    "documents",
    [
        [saved_config("--profiling=false"), *kwokctl.debugging_documents("cluster1")],
        [saved_config("--kubelet-preferred-address-types=InternalIP")],
        [
            saved_config("--kubelet-preferred-address-types=InternalIP"),
            *kwokctl.debugging_documents("cluster1"),
        ],
    ],
    ids=["apiserver-prefers-hostname", "no-kwok-documents", "no-aggregator-routing"],
)
def test_a_cluster_from_an_older_kosmosctl_is_recognised(local_dir, documents):
    write_kwok_yaml(local_dir, documents)
    assert not kwokctl.serves_logs_and_exec("cluster1")


def test_a_missing_cluster_does_not_serve_logs(local_dir):
    assert not kwokctl.serves_logs_and_exec("cluster9")


def test_a_cluster_with_real_nodes_serves_them_and_one_without_is_unchanged(local_dir):
    plain = config_documents(plan(Options())[1], fake_toolchain())[0]
    member = plan(Options(real_nodes=1))[1]
    doc = config_documents(member, fake_toolchain())[0]
    pki = local_dir / "kwok" / "clusters" / "cluster1" / "pki"
    assert doc["options"]["kubeApiserverCertSANs"] == apiserver_sans(member)
    assert "kubeApiserverCertSANs" not in plain["options"]
    assert doc["options"]["bindAddress"] == "127.0.0.1", "the relay reaches it on loopback"
    apiserver = args(doc, "kube-apiserver")
    assert apiserver["advertise-address"] == apiserver_sans(member)[0]
    assert apiserver["kubelet-client-certificate"] == str(pki / "admin.crt")
    assert apiserver["kubelet-client-key"] == str(pki / "admin.key")
    kcm = args(doc, "kube-controller-manager")
    assert kcm["allocate-node-cidrs"] == "true" and kcm["node-cidr-mask-size"] == "24"
    assert kcm["cluster-cidr"] == member.pod_cidr
    assert "allocate-node-cidrs" not in args(plain, "kube-controller-manager")
    # every apiserver presents a client certificate: the leaf nodes' endpoint authenticates
    assert args(plain, "kube-apiserver")["kubelet-client-certificate"] == str(pki / "admin.crt")
