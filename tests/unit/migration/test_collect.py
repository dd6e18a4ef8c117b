from kosmos.api import resources as r
from kosmos.api.resources import Resource
from kosmos.kube.discovery import parse_resources
from kosmos.migration import collect
from tests.unit.migration.fakes import FakeClient, resource_list

WIDGETS = Resource("example.com", "v1", "widgets", "Widget")
DISCOVERY = {
    "/api/v1": resource_list(
        "v1",
        ("pods", "Pod", True),
        ("pods/log", "Pod", True),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("events", "Event", True),
        ("endpoints", "Endpoints", True),
        ("namespaces", "Namespace", False),
    ),
    "/apis": {
        "groups": [
            {"name": "apps", "preferredVersion": {"version": "v1"}},
            {"name": "rbac.authorization.k8s.io", "preferredVersion": {"version": "v1"}},
            {"name": "example.com", "preferredVersion": {"version": "v1"}},
            {"name": "gone.example.com", "preferredVersion": {"version": "v1"}},
        ]
    },
    "/apis/apps/v1": resource_list(
        "apps/v1",
        ("deployments", "Deployment", True),
        ("controllerrevisions", "ControllerRevision", True),
    ),
    "/apis/rbac.authorization.k8s.io/v1": resource_list(
        "rbac.authorization.k8s.io/v1",
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
    ),
    "/apis/example.com/v1": resource_list("example.com/v1", ("widgets", "Widget", True)),
}


def meta(name, namespace="app", **extra):
    return {"metadata": {"name": name, "namespace": namespace, **extra}}


def cluster():
    c = FakeClient(DISCOVERY)
    c.add(r.NAMESPACES, {"metadata": {"name": "app"}})
    c.add(r.NAMESPACES, {"metadata": {"name": "other"}})
    c.add(r.CONFIGMAPS, meta("settings"))
    c.add(r.CONFIGMAPS, meta("kube-root-ca.crt"))
    c.add(r.CONFIGMAPS, meta("elsewhere", "other"))
    c.add(r.SECRETS, {**meta("creds"), "type": "Opaque"})
    c.add(r.SECRETS, {**meta("sa-token"), "type": "kubernetes.io/service-account-token"})
    c.add(r.SERVICEACCOUNTS, meta("runner"))
    c.add(r.EVENTS, meta("ev1"))
    c.add(r.PODS, {**meta("web-0"), "spec": {"priorityClassName": "high"}})
    c.add(r.PODS, {**meta("web-1"), "spec": {"priorityClassName": "system-node-critical"}})
    c.add(
        r.PERSISTENTVOLUMECLAIMS,
        {**meta("data"), "spec": {"volumeName": "pv-1", "storageClassName": "fast"}},
    )
    c.add(r.DEPLOYMENTS, meta("web"))
    c.add(WIDGETS, meta("w"))
    c.add(r.ROLEBINDINGS, {**meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "reader"}})
    c.add(
        r.CLUSTERROLEBINDINGS,
        {
            "metadata": {"name": "runner-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "app"}],
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        },
    )
    c.add(
        r.CLUSTERROLEBINDINGS,
        {
            "metadata": {"name": "unrelated"},
            "subjects": [{"kind": "ServiceAccount", "name": "x", "namespace": "other"}],
            "roleRef": {"kind": "ClusterRole", "name": "other-role"},
        },
    )
    c.add(r.CLUSTERROLES, {"metadata": {"name": "reader"}})
    c.add(
        r.CLUSTERROLES,
        {
            "metadata": {
                "name": "cluster-admin",
                "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            }
        },
    )
    c.add(r.CLUSTERROLES, {"metadata": {"name": "other-role"}})
    c.add(r.PERSISTENTVOLUMES, {"metadata": {"name": "pv-1"}, "spec": {"storageClassName": "fast"}})
    c.add(
        r.PERSISTENTVOLUMES,
        {"metadata": {"name": "pv-2"}, "spec": {"claimRef": {"namespace": "other", "name": "x"}}},
    )
    c.add(r.STORAGECLASSES, {"metadata": {"name": "fast"}})
    c.add(r.PRIORITYCLASSES, {"metadata": {"name": "high"}})
    return c


def described(items):
    return [
        f"{i['kind']} {i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items
    ]


async def test_collect_takes_the_namespace_objects_and_their_dependencies_in_restore_order():
    items = await collect.collect(cluster(), ["app"], ["*"], [])
    assert described(items) == [
        "Namespace /app",
        "PriorityClass /high",
        "StorageClass /fast",
        "ClusterRole /reader",
        "ClusterRoleBinding /runner-admin",
        "PersistentVolume /pv-1",
        "ServiceAccount app/runner",
        "Secret app/creds",
        "ConfigMap app/settings",
        "RoleBinding app/rb",
        "PersistentVolumeClaim app/data",
        "Pod app/web-0",
        "Pod app/web-1",
        "Deployment app/web",
        "Widget app/w",
    ]
    assert all(i["apiVersion"] and i["kind"] for i in items)


async def test_include_and_exclude_lists_name_resources_by_plural_or_plural_group():
    items = await collect.collect(cluster(), ["app"], ["configmaps", "widgets.example.com"], [])
    assert described(items) == ["Namespace /app", "ConfigMap app/settings", "Widget app/w"]
    items = await collect.collect(
        cluster(), ["app"], ["*"], ["pods", "deployments.apps", "secrets"]
    )
    kinds = {i["kind"] for i in items}
    assert not kinds & {"Pod", "Deployment", "Secret", "PriorityClass"}
    assert "Event" not in {
        i["kind"] for i in await collect.collect(cluster(), ["app"], ["events"], [])
    }


def test_selection_needs_list_create_delete_and_skips_what_the_cluster_makes():
    served = parse_resources("", "v1", DISCOVERY["/api/v1"])
    served += parse_resources(
        "x.io",
        "v1",
        {
            "resources": [
                {"name": "reviews", "kind": "Review", "namespaced": True, "verbs": ["create"]}
            ]
        },
    )
    names = [s.name for s in collect.selected(served, ["*"], [])]
    assert names == ["pods", "configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims"]
    assert collect.unknown(served, ["pods", "pods.", "nope.x.io", "*"]) == ["nope.x.io", "pods."]
