"""Claims pin pods: bound in a member -> that member's leaf nodes; host volume -> host nodes."""

from __future__ import annotations

from typing import Any

from tests.integration.scheduler.support import HOST_WORKERS, bound, pod
from tests.support import apply


def volume(name: str, namespace: str, claim: str, **meta: Any) -> dict[str, Any]:
    """A pre-bound volume without node affinity (VolumeBinding alone would allow any node)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, **meta},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "hostPath": {"path": f"/tmp/{name}"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }


def claim(name: str, volume_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": volume_name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def mounting(name: str, claim_name: str) -> dict[str, Any]:
    return pod(
        name,
        {"app": name},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
    )


def test_claims_keep_pods_with_their_data(workers, namespace):
    host = workers.host
    in_member = f"{namespace}-member"
    in_host = f"{namespace}-host"
    member_labels = {"kosmos.io/owner-cluster": "cluster2"}
    member_notes = {"kosmos.io/member-claim": f"cluster2/{namespace}/member-data"}
    apply(
        host,
        volume(in_member, namespace, "member-data", labels=member_labels, annotations=member_notes),
        volume(in_host, namespace, "host-data"),
    )
    try:
        apply(
            host, claim("member-data", in_member), claim("host-data", in_host), namespace=namespace
        )
        apply(
            host,
            *(mounting(f"m{i}", "member-data") for i in range(2)),
            *(mounting(f"h{i}", "host-data") for i in range(2)),
            namespace=namespace,
        )
        on_member = {
            p["spec"]["nodeName"]
            for p in bound(host, namespace, 4)
            if p["metadata"]["name"][0] == "m"
        }
        on_host = {
            p["spec"]["nodeName"]
            for p in bound(host, namespace, 4)
            if p["metadata"]["name"][0] == "h"
        }
        assert on_member == {"kosmos-cluster2"}
        assert on_host <= set(HOST_WORKERS)
    finally:  # released once the namespace (and its claims) go
        host.run("delete", "pv", in_member, in_host, "--ignore-not-found", "--wait=false")
