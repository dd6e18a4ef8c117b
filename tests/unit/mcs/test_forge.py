import base64
import hashlib

from kosmos.api import names
from kosmos.mcs import forge
from kosmos.mcs.planner import ImportSpec, Port


def ep(ip, ready=True, node="n1", hostname=None, zone=None):
    out = {"addresses": [ip], "conditions": {"ready": ready}, "nodeName": node}
    if hostname:
        out["hostname"] = hostname
    if zone:
        out["zone"] = zone
    return out


def source_slice(*endpoints, family="IPv4", ports=(("http", 8080),)):
    return {
        "addressType": family,
        "endpoints": list(endpoints),
        "ports": [{"name": n, "protocol": "TCP", "port": p} for n, p in ports],
    }


def identity(_cluster, endpoint):
    return list(endpoint["addresses"])


def test_derived_name_is_the_reference_rule_and_fits_any_length():
    digest = hashlib.sha256(b"default/nginx").digest()
    want = "derived-" + base64.b32hexencode(digest).decode().lower()[:10]
    assert forge.derived_name("default", "nginx") == want
    assert len(forge.derived_name("n" * 63, "s" * 63)) == 18


def test_slices_carry_ready_endpoints_with_labels_and_mapped_ports():
    sources = [
        forge.Source(
            "c1",
            [source_slice(ep("10.0.0.1", hostname="web-0", zone="z"), ep("10.0.0.2", ready=False))],
            {"http": "web"},
        )
    ]
    (item,) = forge.endpoint_slices("default", "nginx", sources, identity)
    derived = forge.derived_name("default", "nginx")
    assert item["metadata"]["name"] == f"{derived}-{forge.cluster_hash('c1')}-4"
    assert item["metadata"]["labels"] == {
        names.LABEL_MCS_SERVICE_NAME: "nginx",
        names.LABEL_MCS_SOURCE_CLUSTER: "c1",
        names.LABEL_SLICE_MANAGED_BY: names.MCS_CONTROLLER,
        names.LABEL_SLICE_SERVICE_NAME: derived,
    }
    assert item["ports"] == [{"name": "web", "protocol": "TCP", "port": 8080}]
    (endpoint,) = item["endpoints"]
    assert endpoint["addresses"] == ["10.0.0.1"]
    assert endpoint["hostname"] == "web-0" and endpoint["zone"] == "z"
    assert "nodeName" not in endpoint


def test_one_slice_per_cluster_family_and_chunk():
    many = [ep(f"10.0.{i // 250}.{i % 250 + 1}") for i in range(250)]
    sources = [
        forge.Source("c1", [source_slice(*many)], {"http": "http"}),
        forge.Source("c2", [source_slice(ep("fd00::1"), family="IPv6")], {"http": "http"}),
    ]
    out = forge.endpoint_slices("default", "nginx", sources, identity)
    counts = [len(s["endpoints"]) for s in out]
    assert counts == [100, 100, 50, 1]
    names_ = [s["metadata"]["name"] for s in out]
    assert names_[1].endswith("-4-1") and names_[2].endswith("-4-2") and names_[3].endswith("-6")
    assert len(set(names_)) == 4


def test_disconnected_addresses_are_left_out():
    sources = [forge.Source("c1", [source_slice(ep("10.0.0.1"), ep("10.0.0.2"))], {"http": "http"})]
    (item,) = forge.endpoint_slices("default", "nginx", sources, identity, frozenset({"10.0.0.1"}))
    assert [e["addresses"] for e in item["endpoints"]] == [["10.0.0.2"]]
    assert forge.candidate_addresses(sources, identity) == ["10.0.0.1", "10.0.0.2"]


def test_all_disconnected_means_no_slice_and_unknown_ports_are_dropped():
    sources = [forge.Source("c1", [source_slice(ep("10.0.0.1"))], {"http": "http"})]
    assert forge.endpoint_slices("d", "s", sources, identity, frozenset({"10.0.0.1"})) == []
    unmapped = [forge.Source("c1", [source_slice(ep("10.0.0.1"))], {})]
    assert forge.endpoint_slices("d", "s", unmapped, identity) == []


def test_fqdn_slices_are_ignored():
    sources = [forge.Source("c1", [source_slice(ep("a.example"), family="FQDN")], {"http": "http"})]
    assert forge.endpoint_slices("d", "s", sources, identity) == []


def test_global_translation_by_owner_cluster_except_in_the_owner_itself():
    maps = {"c1": {"10.244.0.0/16": "172.30.0.0/16"}}

    def owner(source, node):
        return "c1" if source == "host" and node == "leaf-c1" else None

    to_c2 = forge.global_translator("c2", maps, owner)
    assert to_c2("c1", ep("10.244.1.7")) == ["172.30.1.7"]
    assert to_c2("host", ep("10.244.1.7", node="leaf-c1")) == ["172.30.1.7"]
    assert to_c2("host", ep("10.244.1.7", node="real")) == ["10.244.1.7"]
    assert to_c2("c1", ep("10.9.0.1")) == ["10.9.0.1"]
    to_c1 = forge.global_translator("c1", maps, owner)
    assert to_c1("c1", ep("10.244.1.7")) == ["10.244.1.7"]


def test_derived_service_clusterip_and_headless():
    spec = ImportSpec("ClusterSetIP", (Port("http", "TCP", 80),), ("IPv4",))
    body = forge.derived_service(
        "default", "nginx", [{"name": "http", "protocol": "TCP", "port": 80}], spec
    )
    assert body["metadata"]["name"] == forge.derived_name("default", "nginx")
    assert body["metadata"]["annotations"] == {forge.ANNOTATION_SERVICE_IMPORT: "default/nginx"}
    assert body["spec"]["type"] == "ClusterIP" and "selector" not in body["spec"]
    assert body["spec"]["ipFamilyPolicy"] == "SingleStack"
    headless = ImportSpec("Headless", spec.ports, ("IPv4",))
    assert forge.derived_service("d", "s", [], headless)["spec"]["clusterIP"] == "None"
