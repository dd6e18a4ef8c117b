"""What ``kosmosctl migration backup list|verify|extract`` do with the host's backups.

A backup is named by its store key (``list`` shows it) or by its PromotePolicy as
``<namespace>/<name>``. Reading one always verifies it (every part against the index, the
archive against its manifest), so ``verify`` is a read that says what it checked, and
``extract`` never writes files from a damaged backup. ``extract`` fills a new folder that
appears whole or not at all: the files are written into a temporary sibling that is renamed
at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kosmos.kube.client import Client
from kosmos.migration import archive, extract, store
from kosmos.migration.archive import Backup, BackupError
from kosmos.ops.errors import OperationError


@dataclass
class BackupInfo:
    """One backup as ``list`` and ``verify`` describe it; ``problem`` is why it cannot be read."""

    key: str
    policy: str = ""
    cluster: str = ""
    namespaces: list[str] = field(default_factory=list)
    created: str = ""
    size: int = 0
    parts: int = 0
    items: int = 0
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_of(name: str) -> str:
    """The store key of ``name``: a key as it is, or a policy's ``<namespace>/<name>``."""
    namespace, slash, policy = name.partition("/")
    return store.key_for(namespace, policy) if slash else name


def _info(key: str, data: bytes, backup: Backup) -> BackupInfo:
    meta = backup.meta
    return BackupInfo(
        key,
        policy=str(meta.get("policy", "")),
        cluster=str(meta.get("cluster", "")),
        namespaces=[str(n) for n in meta.get("namespaces") or []],
        created=str(meta.get("created", "")),
        size=len(data),
        parts=len(store.split(data)),
        items=len(backup.items),
    )


async def _load(host: Client, name: str) -> tuple[BackupInfo, Backup]:
    key = key_of(name)
    try:
        data = await store.read(host, key)
        backup = archive.read(data)
    except BackupError as exc:
        raise OperationError(str(exc)) from exc
    return _info(key, data, backup), backup


async def list_backups(host: Client) -> list[BackupInfo]:
    """Every backup in the host's kosmos-system, each read and verified (or its problem)."""
    out = []
    for stored in await store.backups(host):
        if stored.index is None:
            out.append(BackupInfo(stored.key, created=stored.created, problem="incomplete"))
            continue
        try:
            info, _ = await _load(host, stored.key)
        except OperationError as exc:
            info = BackupInfo(stored.key, size=stored.index.size, parts=stored.index.parts)
            info.problem = str(exc)
        out.append(info)
    return out


async def verify_backup(host: Client, name: str) -> BackupInfo:
    """Read backup ``name`` checking every sha256; OperationError says what is wrong."""
    info, _ = await _load(host, name)
    return info


async def extract_backup(
    host: Client, name: str, directory: Path, fmt: str = "yaml"
) -> tuple[BackupInfo, list[Path]]:
    """Write backup ``name`` into the new (or empty) ``directory`` as applyable files."""
    _check_target(directory)
    info, backup = await _load(host, name)
    return info, _write(directory, extract.files(backup, fmt))


def _check_target(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OperationError(f"{directory} exists and is not an empty directory")


def _write(directory: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Fill a staging sibling (mode 0700: a backup holds Secrets), then rename it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for file_name, body in files:
            (staging / file_name).write_bytes(body)
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(directory.iterdir())
