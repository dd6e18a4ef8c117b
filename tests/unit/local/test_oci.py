"""OCI archives: the layout ctr imports, byte-identical output, the entries a layer holds."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from kosmos.local import oci
from kosmos.local.oci import ImageConfig, Layer, OCIError, write_image

REF = "docker.io/kosmos/test:v1.2.3"


def small_layer(tmp_path: Path) -> Layer:
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o700)  # any umask: the image says 0755
    data = tmp_path / "data"
    data.write_text("payload\n")
    data.chmod(0o600)
    layer = Layer()
    layer.dir("tmp", 0o1777)
    layer.file("tmp/keep", "x")  # a file under tmp must not reset its mode
    layer.copy("usr/local/bin/tool", script)
    layer.copy("etc/data", data)
    layer.symlink("bin/sh", "busybox")
    layer.file("/etc/hosts", b"127.0.0.1 localhost\n")
    return layer


def blob(archive: Path, digest: str) -> bytes:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
        assert member is not None
        return member.read()


def write(tmp_path: Path, name: str, layers: list[Layer | Path]) -> oci.Written:
    config = ImageConfig(entrypoint=("/bin/sh",), ports=(8080,), labels=(("a", "b"),))
    return write_image(tmp_path / name, REF, layers, config)


def test_same_inputs_give_byte_identical_archives(tmp_path: Path):
    first = write(tmp_path, "one.tar", [small_layer(tmp_path)])
    second = write(tmp_path, "two.tar", [small_layer(tmp_path)])
    assert first.archive.read_bytes() == second.archive.read_bytes()
    assert first.manifest_digest == second.manifest_digest
    other = small_layer(tmp_path)
    other.file("etc/hosts", "changed\n")
    assert write(tmp_path, "three.tar", [other]).manifest_digest != first.manifest_digest


def test_archive_is_an_oci_layout_with_the_full_reference_in_the_index(tmp_path: Path):
    written = write(tmp_path, "img.tar", [small_layer(tmp_path)])
    with tarfile.open(written.archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:4] == ["oci-layout", "index.json", "blobs", "blobs/sha256"]
    assert names[4:] == sorted(names[4:])
    assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}
    index = oci.read_index(written.archive)
    assert index["mediaType"] == oci.MT_INDEX
    (entry,) = index["manifests"]
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": REF,
        "io.containerd.image.name": REF,
    }
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert entry["digest"] == written.manifest_digest
    assert written.size == written.archive.stat().st_size


def test_every_descriptor_names_the_digest_and_size_of_its_blob(tmp_path: Path):
    written = write(tmp_path, "img.tar", [small_layer(tmp_path)])
    manifest_bytes = blob(written.archive, written.manifest_digest)
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == written.manifest_digest
    manifest = json.loads(manifest_bytes)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        data = blob(written.archive, descriptor["digest"])
        assert descriptor["size"] == len(data)
        assert descriptor["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    config = json.loads(blob(written.archive, written.config_digest))
    assert config["config"]["Entrypoint"] == ["/bin/sh"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["created"] == oci.CREATED
    # diff ids are the digests of the uncompressed layers
    layer = gzip.decompress(blob(written.archive, written.layer_digests[0]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]


def test_layer_gzip_carries_no_name_and_no_time(tmp_path: Path):
    written = write(tmp_path, "img.tar", [small_layer(tmp_path)])
    packed = blob(written.archive, written.layer_digests[0])
    assert packed[:2] == b"\x1f\x8b"
    assert packed[3] & 0x08 == 0  # no FNAME
    assert packed[4:8] == b"\0\0\0\0"  # MTIME


def test_layer_entries_are_sorted_owned_by_root_with_normal_modes(tmp_path: Path):
    written = write(tmp_path, "img.tar", [small_layer(tmp_path)])
    plain = gzip.decompress(blob(written.archive, written.layer_digests[0]))
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        names = [m.name for m in tar.getmembers()]
        data = tar.extractfile("etc/data")
        assert data is not None and data.read() == b"payload\n"
    assert names == sorted(names)
    assert names.index("usr") < names.index("usr/local") < names.index("usr/local/bin/tool")
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members.values()} == {(0, 0, 0, "root")}
    assert members["tmp"].mode == 0o1777
    assert members["usr/local/bin/tool"].mode == 0o755
    assert members["etc/data"].mode == 0o644
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["usr/local"].isdir() and members["usr/local"].mode == 0o755


def test_an_existing_tar_is_a_layer_as_it_is(tmp_path: Path):
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("./etc/os-release")
        payload = b"ID=debian\n"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    written = write(tmp_path, "img.tar", [rootfs, small_layer(tmp_path)])
    assert len(written.layer_digests) == 2
    assert gzip.decompress(blob(written.archive, written.layer_digests[0])) == rootfs.read_bytes()
    config = json.loads(blob(written.archive, written.config_digest))
    assert config["rootfs"]["diff_ids"][0] == oci.file_digest(rootfs)


def test_tree_adds_a_host_directory_with_its_symlinks(tmp_path: Path):
    source = tmp_path / "site"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("")
    (source / "link").symlink_to("pkg")
    layer = Layer()
    layer.tree("usr/lib/python3/dist-packages", source)
    entries = layer.entries
    assert entries["usr/lib/python3/dist-packages/pkg/__init__.py"].kind == "file"
    assert entries["usr/lib/python3/dist-packages/link"].target == "pkg"
    assert entries["usr/lib"].kind == "dir"


@pytest.mark.parametrize("path", ["", "/", "../etc/passwd", "a/../../b"])
def test_paths_never_leave_the_image_root(path: str):
    with pytest.raises(OCIError, match="bad path"):
        Layer().file(path, "x")


@pytest.mark.parametrize(
    "ref", ["kosmos/shell", "shell:v1", "kosmos/shell:v1", "docker.io/kosmos/shell"]
)
def test_the_reference_must_be_normalised_with_a_tag(tmp_path: Path, ref: str):
    with pytest.raises(OCIError, match="normalised"):
        write_image(tmp_path / "x.tar", ref, [Layer()], ImageConfig())
    assert not (tmp_path / "x.tar").exists()
