import base64

import pytest
import yaml

from kosmos.migration import archive, store
from kosmos.ops import migration
from kosmos.ops.errors import OperationError
from tests.unit.migration.fakes import FakeClient

META = {"policy": "default/p", "cluster": "c1", "namespaces": ["app"], "created": "2026-01-01"}
ITEMS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app", "uid": "1"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "app"}},
]


async def stored():
    client = FakeClient()
    await store.write(client, store.key_for("default", "p"), archive.build(META, ITEMS))
    return client


async def test_list_and_verify_read_every_backup():
    client = await stored()
    [info] = await migration.list_backups(client)
    assert (info.policy, info.cluster, info.items, info.parts, info.problem) == (
        "default/p",
        "c1",
        2,
        1,
        "",
    )
    assert await migration.verify_backup(client, "default/p") == info
    assert await migration.verify_backup(client, info.key) == info
    with pytest.raises(OperationError, match="not found"):
        await migration.verify_backup(client, "default/other")


async def test_list_shows_a_damaged_backup_with_its_problem():
    client = await stored()
    [secret] = client.objects.values()
    secret["data"]["part"] = base64.b64encode(b"x").decode()
    [info] = await migration.list_backups(client)
    assert "is corrupted" in info.problem


async def test_extract_writes_applyable_files_into_a_new_directory(tmp_path):
    client = await stored()
    target = tmp_path / "out"
    _, files = await migration.extract_backup(client, "default/p", target)
    assert [f.name for f in files] == ["0001-namespace-app.yaml", "0002-configmap-app.c.yaml"]
    assert yaml.safe_load(files[0].read_text()) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "app"},
    }
    with pytest.raises(OperationError, match="not an empty directory"):
        await migration.extract_backup(client, "default/p", target)
    with pytest.raises(OperationError, match="not found"):
        await migration.extract_backup(client, "default/q", tmp_path / "none")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
