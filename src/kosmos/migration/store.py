"""Where backups live: Secrets in the host's kosmos-system, one archive split over a few.

The host, not the member (whose namespaces the migration is about to change) and not the
controller's pod (which may be rescheduled); Secrets, because a backup holds the namespaces'
Secrets and needs no volume provisioner. An etcd object is limited (1.5 MiB requests by
default), so an archive is cut into parts of at most 900 KiB: ``promote-backup-<key>-<i>``,
type Opaque, data key ``part``, label ``kosmos.io/promote-backup=<key>``.

All or nothing for readers: the parts are written first; part 0, written last, carries the
index (size and sha256 of the whole archive, the number of parts and each part's sha256) in
its annotations. A reader requires the index and checks every part against it, so it sees a
complete backup or an error naming the part that is missing or wrong, never a mix. A write
that would change a complete backup first removes the index. Writing the same data again
finds the index equal and the parts intact and writes nothing (a resumed migration rewrites
nothing).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import dataclass

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, labels_of, name_of
from kosmos.api.resources import SECRETS
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.migration.archive import BackupError

PART_BYTES = 900 * 1024
PREFIX = "promote-backup-"
DATA_KEY = "part"
ANNOTATION_SHA256 = "kosmos.io/promote-backup-sha256"
ANNOTATION_SIZE = "kosmos.io/promote-backup-size"
ANNOTATION_PARTS = "kosmos.io/promote-backup-parts"
ANNOTATION_PART_SHA256 = "kosmos.io/promote-backup-part-sha256"  # on part 0: all, in order
NAMESPACE = names.SYSTEM_NAMESPACE
_PREFIX_CHARS = 40


@dataclass(frozen=True)
class Index:
    """What part 0 says about the whole archive."""

    sha256: str
    size: int
    part_digests: tuple[str, ...]

    @property
    def parts(self) -> int:
        return len(self.part_digests)

    def annotations(self) -> dict[str, str]:
        return {
            ANNOTATION_SHA256: self.sha256,
            ANNOTATION_SIZE: str(self.size),
            ANNOTATION_PARTS: str(self.parts),
            ANNOTATION_PART_SHA256: ",".join(self.part_digests),
        }


@dataclass(frozen=True)
class Stored:
    """A backup as ``backups()`` finds it: its key, index (None: incomplete), parts present."""

    key: str
    index: Index | None
    secrets: int
    created: str


def key_for(namespace: str, name: str) -> str:
    """A DNS label for policy ``namespace/name``: readable prefix, then a short hash."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9]+", "-", f"{namespace}-{name}".lower()).strip("-")
    return f"{readable[:_PREFIX_CHARS].strip('-')}-{digest}".lstrip("-")


def secret_name(key: str, part: int) -> str:
    return f"{PREFIX}{key}-{part}"


def reference(key: str) -> str:
    """What ``PromotePolicy.status.backedupFile`` shows."""
    return f"secret://{NAMESPACE}/{PREFIX}{key}"


def split(data: bytes) -> list[bytes]:
    return [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]


def index_of(data: bytes) -> Index:
    digests = tuple(hashlib.sha256(p).hexdigest() for p in split(data))
    return Index(hashlib.sha256(data).hexdigest(), len(data), digests)


def parse_index(secret: Obj) -> Index | None:
    """Part 0's index, or None while a write has not finished (or if it is damaged)."""
    notes = annotations_of(secret)
    try:
        digests = tuple(notes[ANNOTATION_PART_SHA256].split(","))
        index = Index(notes[ANNOTATION_SHA256], int(notes[ANNOTATION_SIZE]), digests)
    except (KeyError, ValueError):
        return None
    return index if str(index.parts) == notes.get(ANNOTATION_PARTS) else None


def _part_body(key: str, part: int, chunk: bytes, index: Index | None) -> Obj:
    meta: Obj = {
        "name": secret_name(key, part),
        "namespace": NAMESPACE,
        "labels": {names.LABEL_PROMOTE_BACKUP: key},
    }
    if index is not None:
        meta["annotations"] = index.annotations()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {DATA_KEY: base64.b64encode(chunk).decode()},
    }


def _chunk(secret: Obj) -> bytes:
    return base64.b64decode((secret.get("data") or {}).get(DATA_KEY) or "")


async def _get(client: Client, key: str, part: int) -> Obj | None:
    try:
        return await client.get(SECRETS, secret_name(key, part), NAMESPACE)
    except NotFound:
        return None


async def _put(client: Client, body: Obj, current: Obj | None) -> None:
    """Create the part, or replace it (compare-and-swap on the version just read)."""
    if current is None:
        await client.create(SECRETS, body)
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await client.replace(SECRETS, body)


async def write(client: Client, key: str, data: bytes) -> str:
    """Store ``data`` as backup ``key``; same data again writes nothing. Returns the reference.

    "Same" is checked by reading the stored backup: a part damaged since is written again.
    The parts come first, part 0 (data and index in one write) last, then parts a previous,
    larger archive left behind are deleted.
    """
    index = index_of(data)
    chunks = split(data)
    first = await _get(client, key, 0)
    if first is not None and parse_index(first) == index:
        with contextlib.suppress(BackupError):  # a damaged part: written again below
            await read(client, key)
            return reference(key)
    if first is not None and parse_index(first) is not None:
        first["metadata"]["annotations"] = {
            k: v
            for k, v in annotations_of(first).items()
            if k not in index.annotations()  # the keys, whatever their values
        }
        first = await client.replace(SECRETS, first)
    for part in range(1, len(chunks)):
        await _put(client, _part_body(key, part, chunks[part], None), await _get(client, key, part))
    await _put(client, _part_body(key, 0, chunks[0], index), first)
    for secret in await _secrets(client, key):
        if _part_number(key, secret) >= len(chunks):
            with contextlib.suppress(NotFound):
                await client.delete(SECRETS, name_of(secret), NAMESPACE)
    return reference(key)


async def read(client: Client, key: str) -> bytes:
    """The archive of backup ``key``, every part checked; BackupError names what is wrong."""
    first = await _get(client, key, 0)
    where = f"secret {NAMESPACE}/{secret_name(key, 0)}"
    if first is None:
        raise BackupError(f"backup {key} not found ({where} does not exist)")
    index = parse_index(first)
    if index is None:
        raise BackupError(f"backup {key} is incomplete: {where} has no index (write interrupted?)")
    chunks = [_chunk(first)]
    for part in range(1, index.parts):
        secret = await _get(client, key, part)
        if secret is None:
            raise BackupError(f"backup {key}: part {secret_name(key, part)} is missing")
        chunks.append(_chunk(secret))
    for part, (chunk, digest) in enumerate(zip(chunks, index.part_digests, strict=True)):
        if hashlib.sha256(chunk).hexdigest() != digest:
            raise BackupError(
                f"backup {key}: part {secret_name(key, part)} is corrupted "
                "(its sha256 differs from the index on part 0)"
            )
    data = b"".join(chunks)
    if len(data) != index.size or hashlib.sha256(data).hexdigest() != index.sha256:
        raise BackupError(f"backup {key}: the joined parts do not match the index's sha256/size")
    return data


async def delete(client: Client, key: str) -> None:
    """Remove backup ``key``: part 0 (the index) first, so no reader sees it half gone."""
    with contextlib.suppress(NotFound):
        await client.delete(SECRETS, secret_name(key, 0), NAMESPACE)
    for secret in await _secrets(client, key):
        with contextlib.suppress(NotFound):
            await client.delete(SECRETS, name_of(secret), NAMESPACE)


async def _secrets(client: Client, key: str) -> list[Obj]:
    selector = f"{names.LABEL_PROMOTE_BACKUP}={key}"
    try:
        return (await client.list(SECRETS, NAMESPACE, label_selector=selector)).items
    except NotFound:
        return []


def _part_number(key: str, secret: Obj) -> int:
    suffix = name_of(secret).removeprefix(secret_name(key, 0)[:-1])
    return int(suffix) if suffix.isdigit() else -1


async def backups(client: Client) -> list[Stored]:
    """Every backup in the host, by key (complete or not), from the parts' labels."""
    try:
        listed = await client.list(SECRETS, NAMESPACE, label_selector=names.LABEL_PROMOTE_BACKUP)
    except NotFound:
        return []
    by_key: dict[str, list[Obj]] = {}
    for secret in listed.items:
        by_key.setdefault(labels_of(secret)[names.LABEL_PROMOTE_BACKUP], []).append(secret)
    out = []
    for key, secrets in sorted(by_key.items()):
        first = next((s for s in secrets if _part_number(key, s) == 0), None)
        index = parse_index(first) if first else None
        created = str(first["metadata"].get("creationTimestamp", "")) if first else ""
        out.append(Stored(key, index, len(secrets), created))
    return out
