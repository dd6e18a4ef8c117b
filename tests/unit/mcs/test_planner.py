import pytest

from kosmos.mcs import status
from kosmos.mcs.planner import MAX_CLUSTER_ID, Member, Port, plan


def export(created="2026-01-01T00:00:00Z", deleting=False, **spec):
    meta = {"name": "web", "namespace": "default", "creationTimestamp": created, "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    return {"metadata": meta, "spec": spec}


def service(*ports, type_="ClusterIP", cluster_ip="10.96.0.10", **spec):
    raw = [
        {"name": n, "protocol": proto, "port": p} if isinstance(n, str) else n
        for n, proto, p in ports
    ]
    return {"spec": {"type": type_, "clusterIP": cluster_ip, "ports": raw, **spec}}


HTTP = ("http", "TCP", 80)
DNS = ("dns", "UDP", 53)


def test_single_export_becomes_the_import():
    p = plan([Member("c1", export(), service(HTTP))])
    assert p.spec is not None
    assert p.spec.type == "ClusterSetIP"
    assert p.spec.ports == (Port("http", "TCP", 80),)
    assert p.spec.clusters == ("c1",)
    assert p.spec.ip_families == ("IPv4",)
    assert p.verdicts["c1"].valid and not p.verdicts["c1"].conflicts


def test_missing_service_is_invalid_and_nothing_is_imported():
    p = plan([Member("c1", export(), None)])
    assert p.spec is None
    assert (p.verdicts["c1"].valid, p.verdicts["c1"].reason) == (False, "NoService")


def test_external_name_is_an_invalid_service_type():
    p = plan([Member("c1", export(), service(HTTP, type_="ExternalName"))])
    assert p.spec is None
    assert p.verdicts["c1"].reason == "InvalidServiceType"


def test_cluster_id_longer_than_a_label_is_a_condition_not_a_crash():
    long_id = "c" * (MAX_CLUSTER_ID + 1)
    p = plan([Member(long_id, export(), service(HTTP)), Member("c2", export(), service(HTTP))])
    assert p.verdicts[long_id].reason == "InvalidClusterID"
    assert p.spec is not None and p.spec.clusters == ("c2",)


def test_exports_being_deleted_take_no_part():
    p = plan([Member("c1", export(deleting=True), service(HTTP))])
    assert p.spec is None and p.verdicts == {}


def test_port_union_and_conflict_on_all_exports_naming_clusters_and_winner():
    old = Member("c2", export("2026-01-01T00:00:00Z"), service(HTTP))
    new = Member("c1", export("2026-01-02T00:00:00Z"), service(HTTP, DNS))
    p = plan([new, old])
    assert p.spec is not None
    assert [pt.name for pt in p.spec.ports] == ["http", "dns"]
    for cluster in ("c1", "c2"):
        verdict = p.verdicts[cluster]
        assert verdict.conflicts == ("PortConflict",)
        assert "c1" in verdict.conflict_message and "c2" in verdict.conflict_message
        assert "cluster c2's export (the oldest) wins" in verdict.conflict_message
    assert p.spec.accepted == {"c1": frozenset({"http", "dns"}), "c2": frozenset({"http"})}


def test_same_name_other_port_keeps_the_older():
    old = Member("a", export("2026-01-01T00:00:00Z"), service(("http", "TCP", 80)))
    new = Member("b", export("2026-01-03T00:00:00Z"), service(("http", "TCP", 8080)))
    p = plan([new, old])
    assert p.spec is not None
    assert p.spec.ports == (Port("http", "TCP", 80),)
    assert p.spec.accepted["b"] == frozenset()
    assert p.verdicts["a"].conflicts == ("PortConflict",)


def test_same_number_other_name_keeps_the_older():
    old = Member("a", export("2026-01-01T00:00:00Z"), service(("web", "TCP", 80)))
    new = Member("b", export("2026-01-03T00:00:00Z"), service(("http", "TCP", 80)))
    p = plan([old, new])
    assert p.spec is not None and [pt.name for pt in p.spec.ports] == ["web"]


def test_tie_on_timestamp_broken_by_cluster_id():
    a = Member("a", export(), service(HTTP, cluster_ip="None"))
    b = Member("b", export(), service(HTTP))
    p = plan([b, a])
    assert p.spec is not None and p.spec.type == "Headless"
    assert p.verdicts["b"].conflicts == ("TypeConflict",)


def test_several_conflict_reasons_are_comma_joined_without_spaces():
    a = Member("a", export("2026-01-01T00:00:00Z"), service(HTTP, sessionAffinity="ClientIP"))
    b = Member("b", export("2026-01-02T00:00:00Z"), service(DNS, cluster_ip="None"))
    p = plan([a, b])
    conditions = status.export_conditions(export(), p.verdicts["b"], True)
    conflict = next(c for c in conditions if c["type"] == "Conflict")
    assert conflict["status"] == "True"
    assert conflict["reason"] == "PortConflict,TypeConflict,SessionAffinityConflict"
    assert " " not in conflict["reason"]


@pytest.mark.parametrize(
    ("field", "a", "b", "reason"),
    [
        ("ipFamilies", ["IPv4"], ["IPv6"], "IPFamilyConflict"),
        ("internalTrafficPolicy", "Cluster", "Local", "InternalTrafficPolicyConflict"),
        ("trafficDistribution", "PreferClose", "", "TrafficDistributionConflict"),
    ],
)
def test_service_wide_properties_conflict(field, a, b, reason):
    x = Member("a", export("2026-01-01T00:00:00Z"), service(HTTP, **{field: a}))
    y = Member("b", export("2026-01-02T00:00:00Z"), service(HTTP, **{field: b}))
    assert plan([x, y]).verdicts["b"].conflicts == (reason,)


def test_exported_labels_conflict():
    x = Member("a", export("2026-01-01T00:00:00Z", exportedLabels={"k": "1"}), service(HTTP))
    y = Member("b", export("2026-01-02T00:00:00Z", exportedLabels={"k": "2"}), service(HTTP))
    assert plan([x, y]).verdicts["a"].conflicts == ("LabelsConflict",)


def test_bad_ports_are_skipped_and_a_service_without_ports_is_invalid():
    bad = {"spec": {"type": "ClusterIP", "ports": [{"name": "x", "port": "eighty"}, {"port": 0}]}}
    p = plan([Member("c1", export(), bad)])
    assert p.spec is None and p.verdicts["c1"].reason == "NoPorts"


def test_conditions_ready_and_no_conflict():
    p = plan([Member("c1", export(), service(HTTP))])
    conditions = {c["type"]: c for c in status.export_conditions(export(), p.verdicts["c1"], True)}
    assert conditions["Valid"]["reason"] == "Valid"
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "Exported")
    assert (conditions["Conflict"]["status"], conditions["Conflict"]["reason"]) == (
        "False",
        "NoConflicts",
    )


def test_invalid_export_is_ready_false_failed():
    p = plan([Member("c1", export(), None)])
    conditions = {c["type"]: c for c in status.export_conditions(export(), p.verdicts["c1"], False)}
    assert (conditions["Valid"]["status"], conditions["Valid"]["reason"]) == ("False", "NoService")
    assert conditions["Ready"]["reason"] == "Failed"


def test_transition_time_kept_when_status_stays():
    p = plan([Member("c1", export(), service(HTTP))])
    first = status.export_conditions(export(), p.verdicts["c1"], True)
    again = status.export_conditions(
        {"metadata": {}, "status": {"conditions": first}}, p.verdicts["c1"], True
    )
    assert first == again
    assert status.transitions(first, again) == []


def test_exported_labels_and_annotations_come_from_the_oldest_export_spec_only():
    old = export(
        "2026-01-01T00:00:00Z", exportedLabels={"tier": "web"}, exportedAnnotations={"a": "1"}
    )
    old["metadata"]["labels"] = {"from-metadata": "never"}
    p = plan([Member("a", old, service(HTTP))])
    assert p.spec is not None
    assert p.spec.labels == {"tier": "web"} and p.spec.annotations == {"a": "1"}
