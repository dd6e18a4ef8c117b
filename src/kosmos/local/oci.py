"""Write OCI image archives without a container engine (standard library only).

An archive is an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/*``) packed in
one tar: the form ``ctr -n k8s.io images import`` reads as it is. ctr names the imported image
after the index entry's ``io.containerd.image.name`` annotation, falling back to
``org.opencontainers.image.ref.name`` (a bare tag there becomes ``import-<date>:<tag>``), so
both carry the full normalised reference (``docker.io/kosmos/shell:v0.1.0``) — the name a
kubelet asks for when a pod says ``image: kosmos/shell:v0.1.0``.

Archives are deterministic: the same inputs give byte-identical files, so an image's digest
only moves when its content does. Every entry we write has uid/gid 0, mtime :data:`EPOCH`,
normalised modes and sorted names; gzip streams carry no name and no timestamp; JSON is
written with sorted keys. A layer can also be an existing tar (an mmdebstrap root file
system), passed through unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

#: mtime of every entry we write (1970-01-01): no build time leaks into a digest.
EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"
LAYOUT_VERSION = "1.0.0"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATIONS = ("org.opencontainers.image.ref.name", "io.containerd.image.name")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GZIP_LEVEL = 6
_CHUNK = 1 << 20


class OCIError(ValueError):
    """An image cannot be written as asked (a bad path or reference)."""


@dataclass(frozen=True)
class Entry:
    """One file system entry of a layer: its content is bytes or a file read when written."""

    kind: Literal["file", "dir", "symlink"]
    mode: int
    data: bytes = b""
    source: Path | None = None
    target: str = ""


def _clean(path: str) -> str:
    """``/usr/bin/x`` and ``usr/bin/x/`` both mean ``usr/bin/x``; ``..`` never leaves the root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OCIError(f"bad path in image: {path!r}")
    return "/".join(parts)


def _normal_mode(mode: int) -> int:
    """Files are 0644 or 0755 whatever the builder's umask was; special bits are kept."""
    special = stat.S_IMODE(mode) & 0o7000
    return special | (0o755 if mode & 0o111 else 0o644)


@dataclass
class Layer:
    """A layer assembled in memory: paths inside the image mapped to entries.

    Parent directories are added (0755) for every path, so a layer never relies on a lower
    layer to create them.
    """

    entries: dict[str, Entry] = field(default_factory=dict)

    def dir(self, path: str, mode: int = 0o755) -> None:
        clean = _clean(path)
        self._parents(clean)
        self.entries[clean] = Entry("dir", mode)

    def file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        content = data.encode() if isinstance(data, str) else data
        self._put(path, Entry("file", mode, data=content))

    def copy(self, path: str, source: Path, mode: int | None = None) -> None:
        """Add a host file, read when the layer is written; mode 0644/0755 unless given."""
        chosen = _normal_mode(source.stat().st_mode) if mode is None else mode
        self._put(path, Entry("file", chosen, source=source))

    def symlink(self, path: str, target: str) -> None:
        self._put(path, Entry("symlink", 0o777, target=target))

    def tree(self, path: str, root: Path) -> None:
        """Add everything under the host directory ``root`` at ``path`` (symlinks kept)."""
        self.dir(path)
        for source in sorted(root.rglob("*")):
            inner = f"{path.rstrip('/')}/{source.relative_to(root)}"
            if source.is_symlink():
                self.symlink(inner, str(source.readlink()))
            elif source.is_dir():
                self.dir(inner)
            elif source.is_file():
                self.copy(inner, source)

    def _put(self, path: str, entry: Entry) -> None:
        clean = _clean(path)
        self._parents(clean)
        self.entries[clean] = entry

    def _parents(self, clean: str) -> None:
        """Missing ancestors become 0755 directories; existing ones keep their mode."""
        parts = clean.split("/")
        for depth in range(1, len(parts)):
            self.entries.setdefault("/".join(parts[:depth]), Entry("dir", 0o755))

    def write_tar(self, out: IO[bytes]) -> None:
        """Write the layer as an uncompressed tar, entries in name order (parents first)."""
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                _add_entry(tar, name, self.entries[name])


def _add_entry(tar: tarfile.TarFile, name: str, entry: Entry) -> None:
    info = _tarinfo(name, entry.mode)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.target
        tar.addfile(info)
    elif entry.source is not None:
        with entry.source.open("rb") as content:
            info.size = os.fstat(content.fileno()).st_size
            tar.addfile(info, content)
    else:
        info.size = len(entry.data)
        tar.addfile(info, io.BytesIO(entry.data))


def _tarinfo(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.mode = EPOCH, mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config: what a container runs by default."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)
    workdir: str = "/"
    labels: tuple[tuple[str, str], ...] = ()
    ports: tuple[int, ...] = ()
    #: numeric ``uid[:gid]``, so a pod's ``runAsNonRoot`` can check it without an /etc/passwd
    user: str = ""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Env": list(self.env), "WorkingDir": self.workdir}
        if self.user:
            doc["User"] = self.user
        if self.entrypoint:
            doc["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            doc["Cmd"] = list(self.cmd)
        if self.labels:
            doc["Labels"] = dict(self.labels)
        if self.ports:
            doc["ExposedPorts"] = {f"{port}/tcp": {} for port in self.ports}
        return doc


@dataclass(frozen=True)
class Written:
    """What :func:`write_image` produced: digests and sizes, for progress and tests."""

    ref: str
    archive: Path
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    size: int


def write_image(
    archive: Path,
    ref: str,
    layers: Sequence[Layer | Path],
    config: ImageConfig,
    *,
    gzip_level: int = GZIP_LEVEL,
) -> Written:
    """Write ``ref`` as an OCI archive at ``archive`` (atomically: a rename at the end)."""
    check_reference(ref)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".oci-") as scratch:
        blobs = _Blobs(Path(scratch))
        layer_descs, diff_ids = [], []
        for layer in layers:
            descriptor, diff_id = blobs.add_layer(layer, gzip_level)
            layer_descs.append(descriptor)
            diff_ids.append(diff_id)
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": CREATED, "created_by": "kosmos.local.oci"} for _ in diff_ids],
        }
        config_desc = blobs.add_json(MT_CONFIG, image_config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config_desc,
            "layers": layer_descs,
        }
        manifest_desc = blobs.add_json(MT_MANIFEST, manifest)
        manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
        manifest_desc["annotations"] = dict.fromkeys(REF_ANNOTATIONS, ref)
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [manifest_desc]}
        partial = Path(scratch) / "archive.tar"
        _write_layout(partial, index, blobs)
        partial.replace(archive)
    return Written(
        ref,
        archive,
        manifest_desc["digest"],
        config_desc["digest"],
        tuple(d["digest"] for d in layer_descs),
        archive.stat().st_size,
    )


def check_reference(ref: str) -> None:
    """A kubelet asks for ``registry/repository:tag``: anything shorter would import under a
    name no pod uses (``kosmos/shell:v1`` is ``docker.io/kosmos/shell:v1`` to a kubelet)."""
    parts = ref.split("/")
    registry = parts[0]
    has_registry = len(parts) >= 2 and (
        "." in registry or ":" in registry or registry == "localhost"
    )
    if not has_registry or ":" not in parts[-1] or "@" in ref:
        raise OCIError(f"image reference must be normalised with a registry and a tag: {ref!r}")


class _Blobs:
    """Content-addressed blobs, kept as files in a scratch directory until packed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, Path] = {}

    def add_json(self, media_type: str, doc: dict[str, Any]) -> dict[str, Any]:
        data = canonical_json(doc)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.directory / digest.split(":", 1)[1]
        path.write_bytes(data)
        self.files[digest] = path
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_layer(self, layer: Layer | Path, level: int) -> tuple[dict[str, Any], str]:
        """Gzip one layer; return its descriptor and its diff id (digest of the plain tar)."""
        plain = self.directory / "layer.tar"
        if isinstance(layer, Layer):
            with plain.open("wb") as out:
                layer.write_tar(out)
            source = plain
        else:
            source = layer
        packed = self.directory / "layer.tar.gz"
        diff_id = _gzip_file(source, packed, level)
        digest = "sha256:" + _sha256_file(packed)
        final = self.directory / digest.split(":", 1)[1]
        packed.replace(final)
        plain.unlink(missing_ok=True)
        self.files[digest] = final
        return {"mediaType": MT_LAYER_GZIP, "digest": digest, "size": final.stat().st_size}, (
            diff_id
        )


def canonical_json(doc: object) -> bytes:
    """The one JSON encoding of a document (sorted keys, no spaces): stable digests."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _gzip_file(source: Path, target: Path, level: int) -> str:
    """Compress ``source`` with an empty name and mtime 0; return ``sha256:`` of the input."""
    digest = hashlib.sha256()
    with (
        source.open("rb") as src,
        target.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz,
    ):
        for chunk in _chunks(src):
            digest.update(chunk)
            gz.write(chunk)
    return "sha256:" + digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        for chunk in _chunks(src):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _write_layout(target: Path, index: dict[str, Any], blobs: _Blobs) -> None:
    """Pack the layout: oci-layout, index.json, then the blobs in digest order."""
    with tarfile.open(target, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
        _add_bytes(tar, "index.json", canonical_json(index))
        for directory in ("blobs", "blobs/sha256"):
            info = _tarinfo(directory, 0o755)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for digest in sorted(blobs.files):
            path = blobs.files[digest]
            info = _tarinfo("blobs/sha256/" + digest.split(":", 1)[1], 0o644)
            info.size = path.stat().st_size
            with path.open("rb") as content:
                tar.addfile(info, content)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _tarinfo(name, 0o644)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def read_index(archive: Path) -> dict[str, Any]:
    """The archive's index.json: how tests and ``kosmosctl local images`` see the ref."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise OCIError(f"{archive} has no index.json")
        doc: dict[str, Any] = json.loads(member.read())
    return doc


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file (used for cache keys of host binaries)."""
    return "sha256:" + _sha256_file(path)


def files_digest(root: Path, files: Sequence[Path]) -> str:
    """One digest over files: their paths relative to ``root`` and their contents."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root)}\0{_sha256_file(path)}\0".encode())
    return digest.hexdigest()


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
