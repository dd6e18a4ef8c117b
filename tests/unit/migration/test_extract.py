import yaml

from kosmos.migration import archive, extract

OWNED = [
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": True}
]


def test_server_fields_owned_objects_and_allocations_are_dropped():
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "s",
            "namespace": "a",
            "uid": "u",
            "resourceVersion": "9",
            "annotations": {extract._LAST_APPLIED: "{}"},
        },
        "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": []},
        "status": {},
    }
    assert extract.restorable(service) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "a"},
        "spec": {"ports": []},
    }
    headless = {**service, "spec": {"clusterIP": "None"}}
    assert extract.restorable(headless)["spec"] == {"clusterIP": "None"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "ownerReferences": OWNED}}
    assert extract.restorable(pod) is None
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "selector": {"matchLabels": {"controller-uid": "u"}},
            "template": {
                "metadata": {
                    "labels": {
                        "controller-uid": "u",
                        "job-name": "j",
                        "batch.kubernetes.io/controller-uid": "u",
                    }
                }
            },
        },
    }
    assert extract.restorable(job)["spec"] == {
        "template": {"metadata": {"labels": {"job-name": "j"}}}
    }
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "v"},
        "spec": {"claimRef": {"name": "c", "namespace": "a", "uid": "u", "resourceVersion": "1"}},
    }
    assert extract.restorable(pv)["spec"]["claimRef"] == {"name": "c", "namespace": "a"}


def test_files_are_numbered_in_backup_order():
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "a", "ownerReferences": OWNED},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}},
    ]
    backup = archive.read(archive.build({}, items))
    files = extract.files(backup)
    assert [name for name, _ in files] == ["0001-namespace-a.yaml", "0002-configmap-a.c.yaml"]
    assert yaml.safe_load(files[1][1])["metadata"] == {"name": "c", "namespace": "a"}
    assert extract.files(backup, "json")[0][0] == "0001-namespace-a.json"


def test_a_claim_forgets_its_completed_binding():
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "c",
            "annotations": {"pv.kubernetes.io/bind-completed": "yes", "keep": "x"},
        },
        "spec": {"volumeName": "v"},
    }
    out = extract.restorable(claim)
    assert out["metadata"]["annotations"] == {"keep": "x"} and out["spec"] == {"volumeName": "v"}
