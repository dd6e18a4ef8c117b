"""kosmos-coredns's objects and the clusterset.local stanza in the cluster DNS's Corefile."""

from __future__ import annotations

from kosmos.api import names
from kosmos.local import toolchain
from kosmos.local.nodes import clusterdns
from kosmos.ops import manifests, mcsdns

KUBEADM = clusterdns.corefile(forward=True)


def test_coredns_version_is_the_toolchains() -> None:
    assert toolchain.group("coredns").version() == mcsdns.COREDNS_VERSION
    assert manifests.InstallOptions(image_repository="r.io/k").coredns_image == (
        f"r.io/k/coredns:{mcsdns.COREDNS_VERSION}"
    )


def test_stanza_is_added_once_and_removed_exactly() -> None:
    once = mcsdns.with_stanza(KUBEADM, "10.96.0.53")
    assert once.startswith(KUBEADM)
    assert f"{names.MCS_ZONE}:53" in once
    assert "forward . 10.96.0.53" in once
    twice = mcsdns.with_stanza(once, "10.96.0.54")  # a new ClusterIP replaces the old one
    assert twice.count(mcsdns.BEGIN) == 1
    assert "10.96.0.53" not in twice
    assert mcsdns.without_stanza(twice) == KUBEADM
    assert mcsdns.without_stanza(KUBEADM) == KUBEADM


def test_objects_share_the_zone_and_read_only_what_they_need() -> None:
    objects = mcsdns.objects("kosmos-system", "r/kosmos:v1", "r/coredns:v1.14.2", manifests.labels)
    kinds = [b["kind"] for _, b in objects]
    assert kinds == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
    ]
    role = objects[1][1]
    assert {v for rule in role["rules"] for v in rule["verbs"]} <= {"get", "list", "watch"}
    pod = objects[4][1]["spec"]["template"]["spec"]
    coredns, writer = pod["containers"]
    assert writer["args"][:3] == ["mcs-dns", "--zone-file", mcsdns.ZONE_FILE]
    assert mcsdns.ZONE_FILE in objects[3][1]["data"]["Corefile"]
    assert f"reload {mcsdns.RELOAD}" in objects[3][1]["data"]["Corefile"]
    mounts = {m["name"] for c in (coredns, writer) for m in c["volumeMounts"]}
    assert "zone" in mounts
    assert {p["port"] for p in objects[5][1]["spec"]["ports"]} == {53}


def test_local_cluster_dns_is_kubeadms() -> None:
    objects = {o["kind"]: o for o in clusterdns.objects("10.111.0.0/16", ["10.255.255.53"])}
    assert objects["Service"]["spec"]["clusterIP"] == "10.111.0.10"
    assert objects["Service"]["metadata"]["name"] == "kube-dns"
    corefile = objects["ConfigMap"]["data"]["Corefile"]
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    assert "forward . /etc/resolv.conf" in corefile
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["dnsPolicy"] == "None"
    assert pod["dnsConfig"]["nameservers"] == ["10.255.255.53"]
    assert "forward" not in clusterdns.corefile(forward=False)
