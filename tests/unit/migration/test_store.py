import base64

import pytest

from kosmos.api.resources import SECRETS
from kosmos.migration import store
from kosmos.migration.archive import BackupError
from tests.unit.migration.fakes import FakeClient

KEY = store.key_for("default", "my-policy")


def data(size):
    return bytes(i % 251 for i in range(size))


def test_key_is_a_dns_label_with_a_readable_prefix():
    assert KEY.startswith("default-my-policy-") and len(KEY) <= 63
    long = store.key_for("n" * 63, "p" * 63)
    assert len(long) <= 63 and long[0].isalnum() and long[-1].isalnum()
    assert store.key_for("a-b", "c") != store.key_for("a", "b-c")
    assert len(store.secret_name(long, 99)) <= 253


async def test_write_read_round_trip_over_parts_and_rewrite_nothing():
    client = FakeClient()
    payload = data(store.PART_BYTES * 2 + 10)
    ref = await store.write(client, KEY, payload)
    assert ref == f"secret://kosmos-system/promote-backup-{KEY}"
    names = [name for verb, name in client.writes]
    assert names == [
        f"promote-backup-{KEY}-1",
        f"promote-backup-{KEY}-2",
        f"promote-backup-{KEY}-0",
    ]
    assert await store.read(client, KEY) == payload
    client.writes.clear()
    assert await store.write(client, KEY, payload) == ref
    assert client.writes == []
    [found] = await store.backups(client)
    assert (found.key, found.index.size, found.index.parts, found.secrets) == (
        KEY,
        len(payload),
        3,
        3,
    )


async def test_a_smaller_archive_replaces_a_larger_one_and_removes_its_parts():
    client = FakeClient()
    await store.write(client, KEY, data(store.PART_BYTES * 2 + 10))
    await store.write(client, KEY, b"small")
    assert await store.read(client, KEY) == b"small"
    assert len(client.objects) == 1


async def test_readers_never_see_a_half_written_backup():
    client = FakeClient()
    await store.write(client, KEY, data(store.PART_BYTES + 1))
    first = await client.get(SECRETS, store.secret_name(KEY, 0), "kosmos-system")
    first["metadata"]["annotations"] = {}  # as a rewrite leaves it before its final write
    client.objects[("secrets", "kosmos-system", store.secret_name(KEY, 0))] = first
    with pytest.raises(BackupError, match="incomplete.*no index"):
        await store.read(client, KEY)
    [found] = await store.backups(client)
    assert found.index is None


async def test_a_corrupted_or_missing_part_is_named():
    client = FakeClient()
    await store.write(client, KEY, data(store.PART_BYTES * 2 + 10))
    name = store.secret_name(KEY, 1)
    secret = client.objects[("secrets", "kosmos-system", name)]
    secret["data"]["part"] = base64.b64encode(b"garbage").decode()
    with pytest.raises(BackupError, match=f"part {name} is corrupted"):
        await store.read(client, KEY)
    del client.objects[("secrets", "kosmos-system", name)]
    with pytest.raises(BackupError, match=f"part {name} is missing"):
        await store.read(client, KEY)


async def test_delete_is_idempotent_and_a_missing_backup_is_an_error():
    client = FakeClient()
    await store.write(client, KEY, data(store.PART_BYTES + 1))
    await store.delete(client, KEY)
    await store.delete(client, KEY)
    assert client.objects == {}
    with pytest.raises(BackupError, match="not found"):
        await store.read(client, KEY)
    assert await store.backups(client) == []


async def test_writing_the_same_data_again_repairs_a_damaged_part():
    client = FakeClient()
    payload = data(store.PART_BYTES * 2 + 10)
    await store.write(client, KEY, payload)
    name = store.secret_name(KEY, 2)
    client.objects[("secrets", "kosmos-system", name)]["data"]["part"] = "eA=="
    await store.write(client, KEY, payload)
    assert await store.read(client, KEY) == payload
