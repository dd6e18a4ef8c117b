"""Export -> import across the host and both members, against real apiservers, with the
MCS controllers inside the tree fixture's real ``kosmos cluster-manager``."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from kosmos.api import names
from kosmos.mcs.forge import derived_name
from tests.fixtures.tree import TreeEnv
from tests.integration.mcs import helpers as h
from tests.support import apply, wait_for

HTTP = [("http", 80, 8080)]
TIMEOUT = 30


def clusters(mcs: TreeEnv) -> list:
    return [mcs.host, *(mcs.member(m) for m in mcs.env.members)]


def test_export_in_host_is_imported_everywhere_and_unexport_is_gone_within_5s(
    mcs: TreeEnv, namespace: str
) -> None:
    h.publish(mcs.host, namespace, "web", HTTP, [("10.1.0.1", True), ("10.1.0.2", False)])
    host = h.host_id(mcs.host)
    for kubectl in clusters(mcs):
        imp = wait_for(
            lambda k=kubectl: (i := h.imported(k, namespace, "web")) and i["spec"].get("ips") and i,
            TIMEOUT,
            f"import with ips in {kubectl.cluster}",
        )
        assert imp["metadata"]["labels"][names.LABEL_MANAGED_BY] == names.MANAGED_BY_KOSMOS
        assert imp["spec"]["type"] == "ClusterSetIP"
        assert [(p["name"], p["protocol"], p["port"]) for p in imp["spec"]["ports"]] == [
            ("http", "TCP", 80)
        ]
        annotations = imp["metadata"]["annotations"]
        assert annotations[names.ANNOTATION_DERIVED_SERVICE] == derived_name(namespace, "web")
        assert annotations[names.ANNOTATION_ADDRESS] == "10.1.0.1"
        svc = h.derived(kubectl, namespace, "web")
        assert svc is not None and imp["spec"]["ips"] == svc["spec"]["clusterIPs"]
        assert "selector" not in svc["spec"]
        wait_for(
            lambda k=kubectl: (
                h.conditions(h.imported(k, namespace, "web")).get("Ready", ("",))[0] == "True"
            ),
            TIMEOUT,
            "import Ready",
        )
        assert h.imported(kubectl, namespace, "web")["status"]["clusters"] == [{"cluster": host}]
        (item,) = wait_for(lambda k=kubectl: h.mcs_slices(k, namespace, "web"), TIMEOUT, "slice")
        labels = item["metadata"]["labels"]
        assert labels[names.LABEL_MCS_SOURCE_CLUSTER] == host
        assert labels[names.LABEL_SLICE_MANAGED_BY] == names.MCS_CONTROLLER
        assert labels[names.LABEL_SLICE_SERVICE_NAME] == derived_name(namespace, "web")
        assert [e["addresses"] for e in item["endpoints"]] == [["10.1.0.1"]]
        assert item["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
    export = wait_for(
        lambda: (
            h.conditions(e := h.export_of(mcs.host, namespace, "web")).get("Ready", ("",))[0]
            == "True"
            and e
        ),
        TIMEOUT,
        "export Ready",
    )
    cond = h.conditions(export)
    assert cond["Valid"][:2] == ("True", "Valid")
    assert cond["Conflict"][:2] == ("False", "NoConflicts")
    assert names.FINALIZER_MCS in export["metadata"]["finalizers"]

    started = time.monotonic()
    mcs.host.run("delete", h.EXPORTS, "web", "-n", namespace, "--wait=false")

    def gone() -> bool:
        return all(
            h.imported(k, namespace, "web") is None
            and not h.mcs_slices(k, namespace, "web")
            and h.derived(k, namespace, "web") is None
            for k in clusters(mcs)
        )

    wait_for(gone, 10, "imports, derived Services and slices gone", interval=0.1)
    elapsed = time.monotonic() - started
    print(f"unexport -> gone everywhere: {elapsed:.2f}s")
    assert elapsed <= 5.0
    assert h.export_of(mcs.host, namespace, "web") is None  # the finalizer was released


def test_member_export_merges_slices_and_conflicting_ports_name_both(
    mcs: TreeEnv, namespace: str
) -> None:
    member1, member2 = mcs.env.members[:2]
    h.publish(mcs.host, namespace, "api", HTTP, [("10.2.0.1", True)])
    wait_for(lambda: h.imported(mcs.member(member2), namespace, "api"), TIMEOUT, "first import")
    time.sleep(1.1)  # creationTimestamps have one-second resolution: the host's is older
    ports = [("http", 80, 8080), ("metrics", 9090, 9090)]
    h.publish(mcs.member(member1), namespace, "api", ports, [("10.3.0.1", True)])
    host = h.host_id(mcs.host)

    def merged() -> dict | None:
        found = h.addresses(mcs.member(member2), namespace, "api")
        return found if found == {host: {"10.2.0.1"}, member1: {"10.3.0.1"}} else None

    wait_for(merged, TIMEOUT, "slices from both source clusters")
    imp = h.imported(mcs.member(member2), namespace, "api")
    assert [p["name"] for p in imp["spec"]["ports"]] == ["http", "metrics"]
    assert sorted(c["cluster"] for c in imp["status"]["clusters"]) == sorted([host, member1])
    for kubectl in (mcs.host, mcs.member(member1)):
        _status, reason, message = wait_for(
            lambda k=kubectl: (
                (c := h.conditions(h.export_of(k, namespace, "api")).get("Conflict"))
                and c[0] == "True"
                and c
            ),
            TIMEOUT,
            "Conflict on both exports",
        )
        assert reason == "PortConflict"
        assert host in message and member1 in message and f"cluster {host}'s export" in message
    # the member's slices carry only its own ports the import has (both here)
    own = [s for s in h.mcs_slices(mcs.member(member2), namespace, "api")
           if s["metadata"]["labels"][names.LABEL_MCS_SOURCE_CLUSTER] == member1]  # fmt: skip
    assert sorted(p["name"] for p in own[0]["ports"]) == ["http", "metrics"]


def test_disconnected_address_leaves_that_clusters_slices_only(
    mcs: TreeEnv, namespace: str
) -> None:
    member1, member2 = mcs.env.members[:2]
    h.publish(mcs.host, namespace, "db", HTTP, [("10.4.0.1", True), ("10.4.0.2", True)])
    host = h.host_id(mcs.host)
    everything = {host: {"10.4.0.1", "10.4.0.2"}}
    for member in (member1, member2):
        wait_for(
            lambda m=member: h.addresses(mcs.member(m), namespace, "db") == everything,
            TIMEOUT,
            f"slices in {member}",
        )
    m1 = mcs.member(member1)
    m1.run(
        "annotate", h.IMPORTS, "db", "-n", namespace, f"{names.ANNOTATION_DISCONNECTED}=10.4.0.1"
    )
    wait_for(
        lambda: h.addresses(m1, namespace, "db") == {host: {"10.4.0.2"}},
        TIMEOUT,
        "10.4.0.1 out of member1's slices",
    )
    assert h.addresses(mcs.member(member2), namespace, "db") == everything
    imp = h.imported(m1, namespace, "db")
    assert imp["metadata"]["annotations"][names.ANNOTATION_ADDRESS] == "10.4.0.1,10.4.0.2"
    m1.run("annotate", h.IMPORTS, "db", "-n", namespace, f"{names.ANNOTATION_DISCONNECTED}-")
    wait_for(lambda: h.addresses(m1, namespace, "db") == everything, TIMEOUT, "10.4.0.1 back")


def test_ready_endpoint_changes_follow(mcs: TreeEnv, namespace: str) -> None:
    member = mcs.member(mcs.env.members[0])
    h.publish(mcs.host, namespace, "web", HTTP, [("10.5.0.1", True)])
    host = h.host_id(mcs.host)
    wait_for(
        lambda: h.addresses(member, namespace, "web") == {host: {"10.5.0.1"}}, TIMEOUT, "first"
    )
    apply(
        mcs.host,
        h.source_slice(
            "web-src", "web", [("10.5.0.1", False), ("10.5.0.3", True)], [("http", 8080)]
        ),
        namespace=namespace,
    )
    wait_for(
        lambda: h.addresses(member, namespace, "web") == {host: {"10.5.0.3"}}, TIMEOUT, "moved"
    )


def _metric(mcs: TreeEnv, series: str, **labels: str) -> float:
    """Sum of one series' samples on the cluster-manager's /metrics (matching ``labels``)."""
    url = f"http://127.0.0.1:{mcs.health_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == series and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_steady_state_writes_nothing_and_metrics_count(mcs: TreeEnv, namespace: str) -> None:
    """Once the imports are written, the controller neither re-applies slices nor re-queues."""
    member = mcs.member(mcs.env.members[0])
    h.publish(mcs.host, namespace, "calm", HTTP, [("10.8.0.1", True)])
    wait_for(lambda: h.addresses(member, namespace, "calm"), TIMEOUT, "slices")
    wait_for(
        lambda: (
            (h.conditions(h.export_of(mcs.host, namespace, "calm")).get("Ready") or ("",))[0]
            == "True"
        ),
        TIMEOUT,
        "export Ready",
    )
    time.sleep(2)

    def versions() -> list[str]:
        objects = [
            h.export_of(mcs.host, namespace, "calm"),
            h.imported(member, namespace, "calm"),
            h.derived(member, namespace, "calm"),
            *h.mcs_slices(member, namespace, "calm"),
        ]
        return [o["metadata"]["resourceVersion"] for o in objects if o]

    before = versions()
    assert len(before) == 4
    time.sleep(3)
    assert versions() == before
    assert _metric(mcs, "kosmos_mcs_slice_writes_total") >= 1
    assert _metric(mcs, "kosmos_mcs_exports", condition="Ready", status="True") >= 1
