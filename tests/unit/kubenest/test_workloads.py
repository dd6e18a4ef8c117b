"""The in-cluster provider's forge: images, commands, mounts, Services, labels and owners."""

from __future__ import annotations

import yaml

from kosmos.api import names
from kosmos.kubenest import components, workloads
from kosmos.kubenest.pki import TenantPKI
from kosmos.local import images

VC = {
    "apiVersion": "kosmos.io/v1alpha1",
    "kind": "VirtualCluster",
    "metadata": {"name": "t1", "namespace": "ns1", "uid": "uid-t1"},
}
PKI = TenantPKI.create("ns1/t1", ["10.2.0.11"])
PLAN = workloads.Plan("10.96.0.5", "10.96.0.6", 31234, "10.2.0.11")
ENTRIES = workloads.files(VC, PLAN, PKI, b"kind: Stage\n")


def by_name() -> dict[str, dict]:  # type: ignore[type-arg]
    return {w["metadata"]["name"]: w for w in workloads.workloads(VC, PLAN, PKI, ENTRIES)}


def container(name: str) -> dict:  # type: ignore[type-arg]
    return by_name()[name]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def test_images_are_the_ones_real_nodes_get() -> None:
    refs = workloads.images()
    assert refs[components.ETCD] == images.ETCD_REF
    assert refs[components.APISERVER] == images.KUBE_APISERVER_REF
    assert refs[components.CONTROLLER_MANAGER] == images.KUBE_CONTROLLER_MANAGER_REF
    assert refs[components.SCHEDULER] == images.KUBE_SCHEDULER_REF
    assert refs[components.KWOK] == images.KWOK_REF
    assert refs[components.COREDNS] == images.COREDNS_REF
    assert workloads.images("mirror.example/k8s/")[components.ETCD].startswith(
        "mirror.example/k8s/etcd:"
    )


def test_one_statefulset_and_five_deployments_labelled_and_owned() -> None:
    made = by_name()
    assert made["etcd"]["kind"] == "StatefulSet" and made["etcd"]["spec"]["serviceName"] == "etcd"
    assert sorted(made) == ["apiserver", "coredns", "etcd", "kcm", "kwok", "scheduler"]
    others = [*workloads.services(VC), workloads.secret(VC, ENTRIES), workloads.budget(VC)]
    for obj in [*made.values(), *others]:
        meta = obj["metadata"]
        assert meta["namespace"] == "ns1"
        assert meta["labels"][names.LABEL_VIRTUAL_CLUSTER] == "ns1.t1"
        assert names.LABEL_TENANT_COMPONENT in meta["labels"]
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "kosmos.io/v1alpha1",
                "kind": "VirtualCluster",
                "name": "t1",
                "uid": "uid-t1",
            }
        ]


def test_commands_are_the_components_flags_with_pod_addresses() -> None:
    etcd = container("etcd")["command"]
    assert etcd[0] == "/usr/local/bin/etcd"
    assert "--listen-client-urls=https://0.0.0.0:2379" in etcd
    assert "--advertise-client-urls=https://10.96.0.6:2379" in etcd
    assert "--data-dir=/etc/kubenest/etcd" in etcd  # the pod's emptyDir
    api = container("apiserver")
    assert "--secure-port=31234" in api["command"]  # its NodePort: the tenant's endpoint port
    assert "--bind-address=0.0.0.0" in api["command"]
    assert "--advertise-address=10.2.0.11" in api["command"]
    assert "--etcd-servers=https://10.96.0.6:2379" in api["command"]
    assert api["ports"] == [{"name": "https", "containerPort": 31234}]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container("coredns")["command"] == ["/coredns", "-conf=/etc/kubenest/Corefile"]


def test_each_pod_mounts_only_the_pki_files_and_entries_it_names() -> None:
    def mounted(name: str) -> tuple[list[str], list[str]]:
        spec = by_name()[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        items = [i["key"] for i in volumes.get("pki", {"secret": {"items": []}})["secret"]["items"]]
        files = [m["subPath"] for m in spec["containers"][0]["volumeMounts"] if "subPath" in m]
        return items, files

    kcm_pki, kcm_files = mounted("kcm")
    assert "ca.key" in kcm_pki and "etcd-ca.key" not in kcm_pki  # it signs with the tenant CA
    assert kcm_files == ["controller-manager.kubeconfig"]
    api_pki, _ = mounted("apiserver")
    assert "ca.key" not in api_pki and "apiserver.key" in api_pki and "sa.key" in api_pki
    etcd_pki, _ = mounted("etcd")
    assert sorted(etcd_pki) == ["etcd-ca.crt", "etcd-server.crt", "etcd-server.key"]
    assert mounted("scheduler") == ([], ["scheduler.kubeconfig"])  # no pki volume at all
    assert mounted("coredns")[1] == ["coredns.kubeconfig", "Corefile"]
    spec = by_name()["scheduler"]["spec"]["template"]["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["state", "files"]


def test_components_reach_the_apiserver_at_its_cluster_ip() -> None:
    config = yaml.safe_load(ENTRIES["scheduler.kubeconfig"])
    assert config["clusters"][0]["cluster"]["server"] == "https://10.96.0.5:6443"
    assert ".:53 {" in ENTRIES["Corefile"]
    assert ENTRIES["kwok.yaml"] == "kind: Stage\n"


def test_the_config_hash_follows_the_pki() -> None:
    hashes = {
        w["spec"]["template"]["metadata"]["annotations"][workloads.ANNOTATION_CONFIG_HASH]
        for w in workloads.workloads(VC, PLAN, PKI, ENTRIES)
    }
    assert len(hashes) == 1
    other = TenantPKI.create("ns1/t1", ["10.2.0.11"])
    assert workloads.config_hash(other, ENTRIES) not in hashes


def test_services_and_placement() -> None:
    services = {s["metadata"]["name"]: s for s in workloads.services(VC)}
    assert services["apiserver"]["spec"]["type"] == "NodePort"
    assert services["apiserver"]["spec"]["ports"][0]["targetPort"] == "https"
    assert services["etcd"]["spec"]["type"] == "ClusterIP"
    assert [p["nodePort"] for p in workloads.dns_tcp(30053)] == [30053, 30053]
    assert {p["protocol"] for p in workloads.dns_tcp(30053)} == {"UDP", "TCP"}
    affinity = workloads.placement()["nodeAffinity"]
    required = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert {e["key"] for e in required["matchExpressions"]} == {
        names.LABEL_KWOK_NODE,
        names.LABEL_NODE,
    }
    plan = workloads.Plan("a", "b", 1, "c", node_selector={"local.kosmos.io/real-node": "true"})
    spec = workloads.pod_spec(components.SCHEDULER, VC, plan, ENTRIES)
    assert spec["nodeSelector"] == {"local.kosmos.io/real-node": "true"}
    assert budget_selects_every_pod()


def budget_selects_every_pod() -> bool:
    wanted = workloads.budget(VC)["spec"]["selector"]["matchLabels"]
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in by_name().values()]
    return all(wanted.items() <= labels.items() for labels in pods)
