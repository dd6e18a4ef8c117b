"""The backup archive: a deterministic tar.gz of objects with a manifest that proves it whole.

Deterministic (same meta and objects -> same bytes: fixed timestamps, owners and modes, keys
sorted) so that writing a backup again after a crash finds it unchanged and rewrites nothing.
``manifest.json`` comes first and lists every object with the sha256 of its file, so
``read`` can refuse an archive that lost, gained or changed a file, and say which. Each object
is one JSON file ``resources/<plural.group or plural>/<namespace or _cluster>/<name>.json``:
``tar xzf`` gives a person the objects without Kosmos.

The folder name is the kind's plural as Kubernetes guesses it when discovery is not at hand
(``UnsafeGuessKindToResource``: lower case, ``+s``/``+es``/``y->ies``); it only places the
file, the manifest's apiVersion and kind say what the object is.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kosmos.api.objects import Obj

FORMAT = "kosmos.io/promote-backup/v1"
MANIFEST = "manifest.json"
#: an archive a read accepts at most, decompressed (a few parts of compressed JSON)
MAX_UNPACKED = 256 * 1024 * 1024
_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


class BackupError(Exception):
    """A backup is missing, incomplete or does not match its manifest; ``str()`` says how."""


@dataclass(frozen=True)
class Entry:
    """One object's line in the manifest."""

    api_version: str
    kind: str
    namespace: str
    name: str
    path: str
    sha256: str

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class Backup:
    """A verified archive: its meta (policy, cluster, namespaces, created) and its objects."""

    meta: dict[str, Any]
    entries: list[Entry]
    items: list[Obj]


def guess_plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


def path_of(obj: Obj) -> str:
    """Where ``obj`` lives in the archive."""
    group = str(obj["apiVersion"]).rpartition("/")[0]
    plural = guess_plural(str(obj["kind"]))
    folder = f"{plural}.{group}" if group else plural
    meta = obj["metadata"]
    return f"resources/{folder}/{meta.get('namespace') or '_cluster'}/{meta['name']}.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(obj: Obj, body: bytes) -> Entry:
    meta = obj.get("metadata") or {}
    if not obj.get("apiVersion") or not obj.get("kind") or not meta.get("name"):
        raise BackupError(f"object without apiVersion, kind or name: {str(obj)[:200]}")
    return Entry(
        str(obj["apiVersion"]),
        str(obj["kind"]),
        str(meta.get("namespace") or ""),
        str(meta["name"]),
        path_of(obj),
        _digest(body),
    )


def _add(tar: tarfile.TarFile, path: str, data: bytes) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build(meta: Mapping[str, Any], items: Sequence[Obj]) -> bytes:
    """The archive of ``items`` (kept in the given order) described by ``meta``."""
    bodies = [orjson.dumps(item, option=_JSON) for item in items]
    entries = [_entry(item, body) for item, body in zip(items, bodies, strict=True)]
    paths: dict[str, Entry] = {}
    for entry in entries:
        if entry.path in paths:
            raise BackupError(f"{entry.describe()} twice in one backup ({entry.path})")
        paths[entry.path] = entry
    manifest = {
        "format": FORMAT,
        "meta": dict(meta),
        "items": [_manifest_line(e) for e in entries],
    }
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, orjson.dumps(manifest, option=_JSON))
        for entry, body in zip(entries, bodies, strict=True):
            _add(tar, entry.path, body)
    return raw.getvalue()


def _manifest_line(entry: Entry) -> dict[str, str]:
    return {
        "apiVersion": entry.api_version,
        "kind": entry.kind,
        "namespace": entry.namespace,
        "name": entry.name,
        "path": entry.path,
        "sha256": entry.sha256,
    }


def _unpack(data: bytes) -> dict[str, bytes]:
    """Every regular file of the archive by path; BackupError if it is no tar.gz."""
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    raise BackupError(f"unexpected archive member {member.name!r} (not a file)")
                total += member.size
                if total > MAX_UNPACKED:
                    raise BackupError(f"archive unpacks to more than {MAX_UNPACKED} bytes")
                if member.name in files:
                    raise BackupError(f"archive member {member.name!r} twice")
                handle = tar.extractfile(member)
                assert handle is not None
                files[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"not a readable tar.gz archive: {exc}") from exc
    return files


def _parse_manifest(files: Mapping[str, bytes]) -> tuple[dict[str, Any], list[Entry]]:
    if MANIFEST not in files:
        raise BackupError(f"archive has no {MANIFEST}")
    try:
        manifest = orjson.loads(files[MANIFEST])
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT}")
        entries = [
            Entry(
                str(i["apiVersion"]),
                str(i["kind"]),
                str(i.get("namespace") or ""),
                str(i["name"]),
                str(i["path"]),
                str(i["sha256"]),
            )
            for i in manifest["items"]
        ]
        meta = dict(manifest.get("meta") or {})
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{MANIFEST} is malformed: {exc!r}") from exc
    return meta, entries


def _check(entry: Entry, body: bytes | None) -> Obj:
    """The object behind a manifest line, or BackupError saying how it differs."""
    if body is None:
        raise BackupError(f"{entry.path} ({entry.describe()}) is missing from the archive")
    if _digest(body) != entry.sha256:
        raise BackupError(f"{entry.path} ({entry.describe()}): sha256 does not match the manifest")
    try:
        obj: Obj = orjson.loads(body)
        found = _entry(obj, body)
    except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
        raise BackupError(f"{entry.path} is not a JSON object: {exc}") from exc
    if found != entry:
        raise BackupError(f"{entry.path} holds {found.describe()}, the manifest says otherwise")
    return obj


def read(data: bytes) -> Backup:
    """Unpack and verify an archive: every file listed, present, unchanged; nothing more."""
    files = _unpack(data)
    meta, entries = _parse_manifest(files)
    items = [_check(entry, files.get(entry.path)) for entry in entries]
    extra = sorted(set(files) - {MANIFEST} - {e.path for e in entries})
    if extra:
        raise BackupError(f"archive files not in the manifest: {', '.join(extra[:5])}")
    return Backup(meta, entries, items)
