"""Bad input, adopted imports, auto-MCS and the seed's v1alpha1 manifests, against real
apiservers with the MCS controllers in the tree fixture's ``kosmos cluster-manager``."""

from __future__ import annotations

import time

from kosmos.api import names
from kosmos.local.kubectl import Kubectl
from kosmos.mcs.forge import derived_name
from tests.fixtures.tree import TreeEnv
from tests.integration.mcs import helpers as h
from tests.support import apply, wait_for

TIMEOUT = 30


def _condition(kubectl, read, namespace, name, kind):  # type: ignore[no-untyped-def]
    return h.conditions(read(kubectl, namespace, name)).get(kind)


def test_export_of_a_missing_service_says_no_service_then_recovers(
    mcs: TreeEnv, namespace: str
) -> None:
    apply(mcs.host, h.export("ghost"), namespace=namespace)
    valid = wait_for(
        lambda: _condition(mcs.host, h.export_of, namespace, "ghost", "Valid"), TIMEOUT, "Valid"
    )
    assert valid[:2] == ("False", "NoService")
    ready = _condition(mcs.host, h.export_of, namespace, "ghost", "Ready")
    assert ready is not None and ready[:2] == ("False", "Failed")
    member = mcs.member(mcs.env.members[0])
    time.sleep(1)
    assert h.imported(member, namespace, "ghost") is None
    apply(mcs.host, h.service("ghost", [("http", 80, 80)]), namespace=namespace)
    wait_for(
        lambda: h.imported(member, namespace, "ghost"), TIMEOUT, "import once the Service exists"
    )


def test_external_name_is_an_invalid_service_type(mcs: TreeEnv, namespace: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "example.com"},
    }
    apply(mcs.host, body, h.export("ext"), namespace=namespace)
    valid = wait_for(
        lambda: _condition(mcs.host, h.export_of, namespace, "ext", "Valid"), TIMEOUT, "Valid"
    )
    assert valid[:2] == ("False", "InvalidServiceType")
    assert h.imported(mcs.member(mcs.env.members[0]), namespace, "ext") is None


def test_seed_manifests_v1alpha1_with_a_manual_import_adopted(mcs: TreeEnv, namespace: str) -> None:
    """The tutorial's order reversed on purpose: the user's import exists first (NoExport),
    then the v1alpha1 export adopts it; unexporting leaves the user's import in place."""
    member = mcs.member(mcs.env.members[0])
    manual = {
        "apiVersion": h.ALPHA,
        "kind": "ServiceImport",
        "metadata": {"name": "nginx"},
        "spec": {"type": "ClusterSetIP", "ports": [{"protocol": "TCP", "port": 80}]},
    }
    apply(member, manual, namespace=namespace)
    wait_for(
        lambda: (
            (c := _condition(member, h.imported, namespace, "nginx", "Ready"))
            and c[1] == "NoExport"
        ),
        TIMEOUT,
        "NoExport",
    )
    seed_service = h.service("nginx", [("", 80, 80)])
    seed_service["spec"]["ports"][0].pop("name")
    apply(
        mcs.host,
        seed_service,
        h.source_slice("nginx-src", "nginx", [("10.6.0.1", True)], [("", 80)]),
        h.export("nginx", h.ALPHA),
        namespace=namespace,
    )
    imp = wait_for(
        lambda: (i := h.imported(member, namespace, "nginx")) and i["spec"].get("ips") and i,
        TIMEOUT,
        "adopted import with ips",
    )
    assert names.LABEL_MANAGED_BY not in (imp["metadata"].get("labels") or {})
    wait_for(
        lambda: (_condition(member, h.imported, namespace, "nginx", "Ready") or ("",))[0] == "True",
        TIMEOUT,
        "adopted import Ready",
    )
    wait_for(
        lambda: h.addresses(member, namespace, "nginx"), TIMEOUT, "slices of the adopted import"
    )
    mcs.host.run("delete", h.EXPORTS, "nginx", "-n", namespace)
    wait_for(
        lambda: (
            not h.mcs_slices(member, namespace, "nginx")
            and not h.derived(member, namespace, "nginx")
        ),
        TIMEOUT,
        "derived objects gone",
    )
    reason = wait_for(
        lambda: (
            (c := _condition(member, h.imported, namespace, "nginx", "Ready"))
            and c[1] == "NoExport"
        ),
        TIMEOUT,
        "the user's import kept, NoExport",
    )
    assert reason


def test_manual_import_with_unknown_ports(mcs: TreeEnv, namespace: str) -> None:
    member = mcs.member(mcs.env.members[0])
    manual = {
        "apiVersion": h.BETA,
        "kind": "ServiceImport",
        "metadata": {"name": "web"},
        "spec": {"type": "ClusterSetIP", "ports": [{"name": "x", "protocol": "TCP", "port": 81}]},
    }
    apply(member, manual, namespace=namespace)
    h.publish(mcs.host, namespace, "web", [("http", 80, 8080)], [("10.7.0.1", True)])
    ready = wait_for(
        lambda: (
            (c := _condition(member, h.imported, namespace, "web", "Ready"))
            and c[1] == "UnknownPorts"
            and c
        ),
        TIMEOUT,
        "UnknownPorts",
    )
    assert "TCP/81" in ready[2]
    assert not h.mcs_slices(member, namespace, "web")


def test_auto_annotation_exports_and_removal_withdraws(mcs: TreeEnv, namespace: str) -> None:
    body = h.service("auto", [("http", 80, 80)])
    body["metadata"]["annotations"] = {names.ANNOTATION_AUTO_MCS: "true"}
    apply(mcs.host, body, namespace=namespace)
    export = wait_for(lambda: h.export_of(mcs.host, namespace, "auto"), TIMEOUT, "auto export")
    assert export["metadata"]["labels"][names.LABEL_MANAGED_BY] == names.MANAGED_BY_KOSMOS
    for member in mcs.env.members:
        wait_for(lambda m=member: h.imported(mcs.member(m), namespace, "auto"), TIMEOUT, "import")
    mcs.host.run("annotate", "service", "auto", "-n", namespace, f"{names.ANNOTATION_AUTO_MCS}-")
    wait_for(lambda: h.export_of(mcs.host, namespace, "auto") is None, TIMEOUT, "export withdrawn")
    for member in mcs.env.members:
        wait_for(lambda m=member: h.imported(mcs.member(m), namespace, "auto") is None, 10, "gone")


def test_prefix_namespace_exports_every_service(mcs: TreeEnv, namespace: str) -> None:
    assert namespace.startswith("t-test-prefix")
    apply(mcs.host, h.service("pre", [("http", 80, 80)]), namespace=namespace)
    wait_for(lambda: h.export_of(mcs.host, namespace, "pre"), TIMEOUT, "prefix export")
    for member in mcs.env.members:
        wait_for(lambda m=member: h.imported(mcs.member(m), namespace, "pre"), TIMEOUT, "import")
    # the derived Service in the host is never exported again
    time.sleep(1)
    assert len(h.get_exports(mcs.host, namespace)) == 1


def test_exported_labels_reach_the_import_and_leave_with_the_export_spec(
    mcs: TreeEnv, namespace: str
) -> None:
    member = mcs.member(mcs.env.members[0])
    body = h.export("lab")
    body["spec"] = {"exportedLabels": {"tier": "web"}, "exportedAnnotations": {"team": "a"}}
    apply(mcs.host, h.service("lab", [("http", 80, 80)]), body, namespace=namespace)
    imp = wait_for(
        lambda: (
            (i := h.imported(member, namespace, "lab"))
            and i["metadata"].get("labels", {}).get("tier")
            and i
        ),
        TIMEOUT,
        "exported label on the import",
    )
    assert imp["metadata"]["annotations"]["team"] == "a"
    mcs.host.run("patch", h.EXPORTS, "lab", "-n", namespace, "--type=merge", "-p",
                 '{"spec": {"exportedLabels": null}}')  # fmt: skip
    wait_for(
        lambda: (
            "tier" not in (h.imported(member, namespace, "lab")["metadata"].get("labels") or {})
        ),
        TIMEOUT,
        "the label removed with the export's spec",
    )


def test_a_foreign_service_of_the_derived_name_is_left_alone(mcs: TreeEnv, namespace: str) -> None:
    member = mcs.member(mcs.env.members[0])
    foreign = h.service(derived_name(namespace, "taken"), [("http", 80, 80)])
    apply(member, foreign, namespace=namespace)
    h.publish(mcs.host, namespace, "taken", [("http", 80, 8080)], [("10.9.0.1", True)])
    other = mcs.member(mcs.env.members[1])
    wait_for(lambda: h.addresses(other, namespace, "taken"), TIMEOUT, "slices in the other member")
    time.sleep(1)
    assert not h.mcs_slices(member, namespace, "taken")
    svc = h.derived(member, namespace, "taken")
    assert svc is not None and names.LABEL_MANAGED_BY not in (svc["metadata"].get("labels") or {})


def test_unjoin_removes_what_mcs_made_in_the_member(mcs: TreeEnv, namespace: str) -> None:
    """Unjoin (ClusterTree's leaving, with the MCS cleanup the launcher composes) leaves no
    managed import, derived Service or MCS slice in the member, and releases the finalizer of
    the member's own export (no controller would any more) and takes the prober away; a rejoin
    brings them back."""
    leaving = mcs.env.members[-1]
    member = mcs.member(leaving)
    h.publish(mcs.host, namespace, "bye", [("http", 80, 8080)], [("10.10.0.1", True)])
    h.publish(member, namespace, "own", [("http", 80, 8080)], [("10.10.0.2", True)])
    wait_for(lambda: h.addresses(member, namespace, "bye"), TIMEOUT, "slices in the member")
    wait_for(lambda: names.FINALIZER_MCS in _finalizers(member, namespace, "own"), TIMEOUT,
             "the finalizer on the member's export")  # fmt: skip
    mcs.unjoin(leaving)
    try:
        assert h.imported(member, namespace, "bye") is None
        assert not h.mcs_slices(member, namespace, "bye")
        assert h.derived(member, namespace, "bye") is None
        assert names.FINALIZER_MCS not in _finalizers(member, namespace, "own")
        assert not member.ok("get", "deployment", "-n", "kosmos-system", "kosmos-eps-probe")
    finally:
        mcs.join(leaving)
    wait_for(lambda: h.addresses(member, namespace, "bye"), 60, "slices again after the rejoin")


def _finalizers(kubectl: Kubectl, namespace: str, name: str) -> list[str]:
    return list(((h.export_of(kubectl, namespace, name) or {}).get("metadata") or {}).get(
        "finalizers") or [])  # fmt: skip
