"""Backups against real apiservers: collect a member namespace, store it in the host, read,
verify, extract and restore it (server-side dry run), and name a corrupted part.

The member namespace holds what users make without Kosmos: a Deployment, a StatefulSet with a
claim (on a PersistentVolume pre-bound to it, of a StorageClass of the test), a ConfigMap, a
Secret, a ServiceAccount with a ClusterRoleBinding to a ClusterRole of the test, a Job. Pods
land on the members' kwok nodes. Cluster-scoped objects are named after the namespace and
deleted at the end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kosmos.api.objects import Obj
from kosmos.cli.main import cli
from kosmos.local.kubectl import Kubectl
from kosmos.migration import archive, collect, extract, store
from kosmos.migration.archive import BackupError
from tests.fixtures.clusters import LocalEnv
from tests.support import apply, get, wait_for

LABELS = {"app": "web"}


def app_objects(ns: str) -> list[Obj]:
    container = {"name": "c", "image": "registry.k8s.io/pause:3.10"}
    template = {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}}
    db_template = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container]}}
    job_template = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    claim = {
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": f"{ns}-manual",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": f"{ns}-manual"},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{ns}-pv"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": f"{ns}-manual",
                "hostPath": {"path": "/tmp/x"},
                "claimRef": {"namespace": ns, "name": "data-db-0"},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{ns}-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{ns}-runner"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": ns}],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{ns}-reader",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "runner", "namespace": ns},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns},
            "data": {"mode": "blue"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": ns},
            "stringData": {"password": "s3cret"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": template},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": db_template,
                "volumeClaimTemplates": [claim],
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": ns},
            "spec": {"template": job_template},
        },
    ]


def cluster_scoped(ns: str) -> list[tuple[str, str]]:
    return [
        ("clusterrolebinding", f"{ns}-runner"),
        ("clusterrole", f"{ns}-reader"),
        ("pv", f"{ns}-pv"),
        ("storageclass", f"{ns}-manual"),
    ]


@pytest.fixture
def app(local_env: LocalEnv, namespace: str) -> Iterator[Kubectl]:
    """The application in the first member's namespace (cluster-scoped parts removed after)."""
    member = local_env.kubectl(local_env.members[0])
    apply(member, *app_objects(namespace))
    try:
        wait_for(lambda: get(member, "replicasets", "-n", namespace)["items"], 30, "a ReplicaSet")
        wait_for(lambda: get(member, "controllerrevisions", "-n", namespace)["items"], 30, "a rev")
        wait_for(
            lambda: get(member, "pods", "-n", namespace, "-l", "job-name=once")["items"],
            30,
            "the Job's pod",
        )
        yield member
    finally:
        for kind, name in cluster_scoped(namespace):
            member.run("delete", kind, name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def system_namespace(local_env: LocalEnv) -> Iterator[str]:
    """kosmos-system in the host (made for the test when Kosmos is not installed)."""
    host = local_env.kubectl(local_env.host)
    made = not get(host, "namespaces", "--field-selector", "metadata.name=kosmos-system")["items"]
    if made:
        host.run("create", "namespace", "kosmos-system")
    yield "kosmos-system"
    if made:
        # waited for: a session fixture (the tree's) may make it again next, and would find
        # a terminating one that then disappears under it
        host.run("delete", "namespace", "kosmos-system", "--ignore-not-found")


async def kosmosctl(env: LocalEnv, *args: str) -> Result:
    """kosmosctl in a thread: it runs its own event loop (asyncio.run), the test's is busy."""
    argv = ["--kubeconfig", str(env.kubeconfig(env.host)), *args]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv)


def described(items: list[Obj]) -> set[str]:
    return {
        f"{i['kind']} {i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items
    }


async def test_collect_a_member_namespace_with_its_cluster_scoped_dependencies(
    local_env: LocalEnv, namespace: str, app: Kubectl
):
    client = await local_env.client(local_env.members[0])
    try:
        items = await collect.collect(client, [namespace], ["*"], [])
    finally:
        await client.close()
    ns = namespace
    found = described(items)
    expected = {
        f"Namespace /{ns}",
        f"StorageClass /{ns}-manual",
        f"PersistentVolume /{ns}-pv",
        f"ClusterRole /{ns}-reader",
        f"ClusterRoleBinding /{ns}-runner",
        f"ServiceAccount {ns}/runner",
        f"ServiceAccount {ns}/default",
        f"Secret {ns}/creds",
        f"ConfigMap {ns}/settings",
        f"Deployment {ns}/web",
        f"StatefulSet {ns}/db",
        f"PersistentVolumeClaim {ns}/data-db-0",
        f"Job {ns}/once",
        f"Service {ns}/db",
    }
    assert expected <= found, expected - found
    kinds = {i["kind"] for i in items}
    assert {"ReplicaSet", "ControllerRevision", "Pod"} <= kinds
    assert not kinds & {"Event", "Endpoints", "EndpointSlice", "Lease"}
    assert f"ConfigMap {ns}/kube-root-ca.crt" not in found
    assert not [i for i in items if i.get("type") == "kubernetes.io/service-account-token"]
    assert items[0]["kind"] == "Namespace" and all(i["metadata"].get("uid") for i in items)
    data = archive.build({"policy": "default/p", "namespaces": [ns]}, items)
    backup = archive.read(data)
    assert backup.items == items


def big_configmaps(ns: str, count: int) -> list[Obj]:
    """ConfigMaps of ~690 KiB of random base64 each: an archive over several parts."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"blob-{i}", "namespace": ns},
            "data": {"blob": base64.b64encode(os.urandom(520 * 1024)).decode()},
        }
        for i in range(count)
    ]


async def test_store_cli_verify_extract_and_a_corrupted_part(
    local_env: LocalEnv, namespace: str, app: Kubectl, system_namespace: str, tmp_path: Path
):
    apply(app, *big_configmaps(namespace, 4), namespace=namespace, server_side=True)
    member = await local_env.client(local_env.members[0])
    host = await local_env.client(local_env.host)
    key = store.key_for("default", namespace)
    try:
        items = await collect.collect(member, [namespace], ["*"], ["pods"])
        meta = {
            "policy": f"default/{namespace}",
            "cluster": local_env.members[0],
            "namespaces": [namespace],
            "created": "2026-12-07T00:00:00Z",
        }
        data = archive.build(meta, items)
        assert len(data) > store.PART_BYTES * 2
        ref = await store.write(host, key, data)
        assert ref == f"secret://kosmos-system/promote-backup-{key}"
        assert await store.read(host, key) == data
        assert await store.write(host, key, data) == ref  # idempotent
        parts = get(
            local_env.kubectl(local_env.host),
            "secrets",
            "-n",
            system_namespace,
            "-l",
            f"kosmos.io/promote-backup={key}",
        )["items"]
        assert len(parts) == 3 and all(p["type"] == "Opaque" for p in parts)

        listed = await kosmosctl(local_env, "migration", "backup", "list", "-o", "json")
        assert listed.exit_code == 0, listed.output
        [row] = [b for b in json.loads(listed.stdout) if b["key"] == key]
        assert (row["items"], row["parts"], row["problem"]) == (len(items), 3, "")
        verified = await kosmosctl(
            local_env, "migration", "backup", "verify", f"default/{namespace}"
        )
        assert verified.exit_code == 0 and "verified" in verified.stdout, verified.output

        out = tmp_path / "restore"
        extracted = await kosmosctl(local_env, "migration", "backup", "extract", key, str(out))
        assert extracted.exit_code == 0, extracted.output
        files = sorted(p.name for p in out.iterdir())
        assert files[0] == f"0001-namespace-{namespace}.yaml"
        assert not [f for f in files if "-pod-" in f or "-replicaset-" in f]
        # the files restore by themselves: the host's apiserver accepts every one (dry run;
        # server-side: the big ConfigMaps would not fit kubectl's last-applied annotation)
        local_env.kubectl(local_env.host).run(
            "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", str(out)
        )

        broken = store.secret_name(key, 1)
        patch = {"data": {"part": base64.b64encode(b"not the part").decode()}}
        local_env.kubectl(local_env.host).run(
            "patch",
            "secret",
            broken,
            "-n",
            system_namespace,
            "--type",
            "merge",
            "-p",
            json.dumps(patch),
        )
        with pytest.raises(BackupError, match=f"part {broken} is corrupted"):
            await store.read(host, key)
        bad = await kosmosctl(local_env, "migration", "backup", "verify", key)
        assert bad.exit_code == 1 and broken in bad.stderr, bad.output
        failed = await kosmosctl(
            local_env, "migration", "backup", "extract", key, str(tmp_path / "x")
        )
        assert failed.exit_code == 1 and not (tmp_path / "x").exists()
    finally:
        await store.delete(host, key)
        remaining = get(
            local_env.kubectl(local_env.host),
            "secrets",
            "-n",
            system_namespace,
            "-l",
            f"kosmos.io/promote-backup={key}",
        )["items"]
        await member.close()
        await host.close()
    assert remaining == []


async def test_extracted_files_restore_the_application_in_another_cluster(
    local_env: LocalEnv, namespace: str, app: Kubectl, tmp_path: Path
):
    """``kubectl apply -f`` of an extract into the second member (same namespace, empty):
    workloads come back with their own pods, the claim binds to the restored volume."""
    source = await local_env.client(local_env.members[0])
    try:
        items = await collect.collect(source, [namespace], ["*"], [])
    finally:
        await source.close()
    for file_name, body in extract.files(archive.read(archive.build({}, items))):
        (tmp_path / file_name).write_bytes(body)
    target = local_env.kubectl(local_env.members[1])
    try:
        target.run("apply", "-f", str(tmp_path))
        claim = wait_for(
            lambda: get(target, "pvc", "data-db-0", "-n", namespace)["status"]["phase"] == "Bound",
            60,
            "the restored claim bound",
        )
        assert claim
        assert get(target, "pvc", "data-db-0", "-n", namespace)["spec"]["volumeName"] == (
            f"{namespace}-pv"
        )
        wait_for(lambda: get(target, "replicasets", "-n", namespace)["items"], 30, "a ReplicaSet")
        wait_for(lambda: get(target, "pods", "-n", namespace, "-l", "app=db")["items"], 30, "db-0")
        wait_for(
            lambda: get(target, "pods", "-n", namespace, "-l", "job-name=once")["items"],
            30,
            "the Job's pod",
        )
        secret = get(target, "secret", "creds", "-n", namespace)
        assert base64.b64decode(secret["data"]["password"]) == b"s3cret"
    finally:
        for kind, name in cluster_scoped(namespace):
            target.run("delete", kind, name, "--ignore-not-found", "--wait=false")
