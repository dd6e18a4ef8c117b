"""Images: references, the cache keyed by inputs, and the recipes' layers (no engine, no root)."""

from __future__ import annotations

import json
import os
import struct
import sys
import tarfile
from pathlib import Path

import pytest

from kosmos.api import names
from kosmos.local import images, kosmos_image, oci, toolchain
from kosmos.local.images import Image, ImageError, Recipe
from kosmos.ops import manifests, scheduling


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_references_are_normalised_and_tagged_like_the_release():
    assert manifests.default_version() == images.TAG
    assert f"docker.io/kosmos/pause:{toolchain.PAUSE_VERSION}" == images.PAUSE_REF
    assert f"docker.io/kosmos/shell:{images.TAG}" == images.SHELL_REF
    assert f"docker.io/kosmos/http:{images.TAG}" == images.HTTP_REF
    assert f"docker.io/kosmos/kosmos:{images.TAG}" == images.KOSMOS_REF
    assert images.METRICS_SERVER_REF == "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
    # kosmos-scheduler's manifest names the upstream image: ours must answer to that name
    assert images.KUBE_SCHEDULER_REF == scheduling.KUBE_SCHEDULER_IMAGE
    for ref in images.REFS.values():
        oci.check_reference(ref)
    assert set(images.REFS) == set(images.ALL)


class FakeRecipes:
    """Replaces the real recipes: each image is one small file whose content is the input."""

    def __init__(self) -> None:
        self.inputs = dict.fromkeys(images.ALL, b"one")
        self.writes: list[str] = []

    def __call__(self, key: str, progress: object) -> Recipe:
        content = self.inputs[key]

        def write(archive: Path) -> oci.Written:
            self.writes.append(key)
            layer = oci.Layer()
            layer.file("content", content)
            written = oci.write_image(archive, images.REFS[key], [layer], oci.ImageConfig())
            age = 1000 + len(self.writes)  # distinct mtimes: file systems tick coarsely
            os.utime(archive, (age, age))
            return written

        return Recipe((content,), write)


@pytest.fixture
def recipes(monkeypatch) -> FakeRecipes:
    fake = FakeRecipes()
    monkeypatch.setattr(images, "_recipe", fake)
    return fake


def test_an_image_is_built_once_then_reused(recipes: FakeRecipes, cache_dir: Path):
    lines: list[str] = []
    first = images.ensure_images(lines.append, keys=["shell"])
    assert recipes.writes == ["shell"]
    image = first["shell"]
    assert image == Image("shell", images.SHELL_REF, image.archive)
    assert image.archive.parent == cache_dir / "images"
    assert image.archive.name.startswith(f"shell-{images.TAG}-")
    assert (
        oci.read_index(image.archive)["manifests"][0]["annotations"]["io.containerd.image.name"]
        == images.SHELL_REF
    )
    again = images.build(lines.append, keys=["shell"])
    assert recipes.writes == ["shell"]
    assert again[0].seconds is None and again[0].image == image
    assert any("cached" in line for line in lines)


def test_changed_inputs_build_a_new_archive_and_old_ones_are_pruned(recipes: FakeRecipes):
    archives = []
    for content in (b"a", b"b", b"c", b"d", b"b"):
        recipes.inputs["http"] = content
        archives.append(images.ensure_images(lambda _: None, keys=["http"])["http"].archive)
    assert len(set(archives[:4])) == 4
    assert recipes.writes == ["http"] * 4  # "b" again: still among the kept ones
    assert archives[-1] == archives[1]
    kept = sorted(p.name for p in (archives[0].parent).glob("http-*.tar"))
    assert len(kept) == 1 + images.KEEP_OLD
    assert archives[-1].name in kept and archives[0].name not in kept


def test_images_come_in_a_fixed_order_and_unknown_keys_fail(recipes: FakeRecipes):
    built = images.build(lambda _: None, keys=["kosmos", "pause"])
    assert [b.image.key for b in built] == ["pause", "kosmos"]
    with pytest.raises(ImageError, match="unknown image nginx: choose from pause, shell"):
        images.build(lambda _: None, keys=["nginx"])


def test_rebuild_writes_again(recipes: FakeRecipes):
    images.build(lambda _: None, keys=["pause"])
    images.build(lambda _: None, keys=["pause"], rebuild=True)
    assert recipes.writes == ["pause", "pause"]


def elf(tmp_path: Path, program_types: list[int]) -> Path:
    """A minimal 64-bit little-endian ELF header followed by its program header table."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, len(program_types))  # e_phentsize, e_phnum
    table = b"".join(struct.pack("<I", t) + bytes(52) for t in program_types)
    path = tmp_path / "elf"
    path.write_bytes(bytes(header) + table)
    return path


def test_static_elf_detection(tmp_path: Path):
    assert images.is_static_elf(elf(tmp_path, [1, 1, 4]))
    assert not images.is_static_elf(elf(tmp_path, [6, 3, 1]))  # PT_INTERP: dynamic
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not images.is_static_elf(script)
    assert not images.is_static_elf(Path(sys.executable).resolve())


def test_a_missing_static_busybox_names_the_package(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(images, "BUSYBOX_CANDIDATES", (tmp_path / "busybox",))
    with pytest.raises(ImageError, match="apt-get install busybox-static"):
        images.find_busybox()


def test_shell_layer_links_every_applet_to_busybox(tmp_path: Path):
    busybox = tmp_path / "busybox"
    busybox.write_text("#!/bin/sh\nprintf 'busybox\\nsh\\nnslookup\\nwget\\n'\n")
    busybox.chmod(0o755)
    entries = images.shell_layer(busybox).entries
    assert entries["bin/busybox"].source == busybox and entries["bin/busybox"].mode == 0o755
    assert {p for p, e in entries.items() if e.kind == "symlink"} == {
        "bin/sh",
        "bin/nslookup",
        "bin/wget",
    }
    assert entries["bin/sh"].target == "busybox"
    assert entries["tmp"].mode == 0o1777
    assert entries["etc/passwd"].data.startswith(b"root:x:0:0:")


def test_http_layer_serves_the_pod_name_a_file_and_a_cgi():
    entries = images.http_layer().entries
    serve = entries["usr/local/bin/serve"]
    assert serve.mode == 0o755
    assert b"httpd -f" in serve.data and b"POD_NAME" in serve.data and b"file.txt" in serve.data
    assert entries["var/www/cgi-bin/info"].mode == 0o755


def test_recipe_code_is_part_of_every_key():
    assert len(images.recipe_code_digest()) == 64


def test_kosmos_dependencies_are_pinned_to_what_runs_here():
    pins = kosmos_image.dependency_pins()
    names = {pin.split("==")[0] for pin in pins}
    assert {"aiohttp", "click", "pyroute2", "vici", "kubernetes-asyncio"} <= names
    assert "multidict" in names  # transitive
    assert "pytest" not in names and "kosmos" not in names  # dev extra, the package itself
    assert all("==" in pin for pin in pins)


def test_kosmos_source_digest_follows_the_sources(tmp_path: Path):
    root = tmp_path / "checkout"
    (root / "src" / "kosmos" / "__pycache__").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "kosmos"\nversion = "9.9.9"\n')
    (root / "README.md").write_text("readme\n")
    (root / "src" / "kosmos" / "__init__.py").write_text("")
    before = kosmos_image.source_digest(root)
    (root / "src" / "kosmos" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert kosmos_image.source_digest(root) == before  # build debris is no input
    (root / "src" / "kosmos" / "__init__.py").write_text("x = 1\n")
    assert kosmos_image.source_digest(root) != before
    assert kosmos_image.source_version(root) == "9.9.9"


def test_kosmos_image_is_built_from_this_checkout_for_bookworm():
    root = kosmos_image.source_root()
    assert (root / "src" / "kosmos" / "local" / "kosmos_image.py").is_file()
    assert "manylinux_2_17_x86_64" in kosmos_image.PLATFORMS
    assert kosmos_image.SITE == "usr/local/lib/python3.11/dist-packages"
    assert {"python3", "strongswan-swanctl", "wireguard-go", "tini"} <= set(kosmos_image.PACKAGES)


def test_missing_mmdebstrap_is_named(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(kosmos_image.shutil, "which", lambda _: None)
    recipe = kosmos_image.KosmosImage(lambda _: None, tmp_path, images.KOSMOS_REF, ())
    with pytest.raises(ImageError, match="mmdebstrap not found: apt-get install mmdebstrap"):
        recipe.ensure_base()


def test_metrics_server_image_is_the_static_binary_run_as_nobody(monkeypatch, tmp_path: Path):
    binary = tmp_path / "metrics-server"
    binary.write_bytes(Path(sys.executable).read_bytes())  # dynamic: refused
    built = toolchain.Toolchain(
        {
            "metrics-server": toolchain.BuiltGroup(
                toolchain.group("metrics-server"), tmp_path, "v0.8.0"
            )
        }
    )
    monkeypatch.setattr(toolchain, "ensure", lambda progress, only=(): built)
    if not images.is_static_elf(binary):
        with pytest.raises(ImageError, match="is not a static binary"):
            images._recipe("metrics-server", lambda _: None)
    monkeypatch.setattr(images, "is_static_elf", lambda path: True)
    recipe = images._recipe("metrics-server", lambda _: None)
    written = recipe.write(tmp_path / "out.tar")
    assert written.ref == images.METRICS_SERVER_REF
    with tarfile.open(written.archive) as tar:
        member = tar.extractfile(f"blobs/sha256/{written.config_digest.split(':')[1]}")
        assert member is not None
        config = json.loads(member.read())["config"]
    assert config["User"] == "65534"
    assert config["Entrypoint"] == ["/metrics-server"]


@pytest.mark.parametrize(
    ("key", "group", "ref"),
    [
        ("kube-apiserver", "k8s", "registry.k8s.io/kube-apiserver:v1.36.3"),
        ("kube-controller-manager", "k8s", "registry.k8s.io/kube-controller-manager:v1.36.3"),
        ("etcd", "etcd", "registry.k8s.io/etcd:3.6.16-0"),
        ("kwok", "kwok", "registry.k8s.io/kwok/kwok:v0.8.0"),
    ],
)
def test_control_plane_images_are_the_static_binary_where_upstream_has_it(
    monkeypatch, tmp_path: Path, key: str, group: str, ref: str
):
    binary = tmp_path / key
    binary.write_bytes(Path(sys.executable).read_bytes())
    built = toolchain.Toolchain(
        {group: toolchain.BuiltGroup(toolchain.group(group), tmp_path, "v")}
    )
    monkeypatch.setattr(toolchain, "ensure", lambda progress, only=(): built)
    assert images.REFS[key] == ref and key in images.ALL
    if not images.is_static_elf(binary):
        with pytest.raises(ImageError, match=f"step '{key} image' failed: .* not a static"):
            images._recipe(key, lambda _: None)
    monkeypatch.setattr(images, "is_static_elf", lambda path: True)
    written = images._recipe(key, lambda _: None).write(tmp_path / "out.tar")
    assert written.ref == ref
    with tarfile.open(written.archive) as tar:
        blob = tar.extractfile(f"blobs/sha256/{written.config_digest.split(':')[1]}")
        assert blob is not None
        config = json.loads(blob.read())["config"]
        manifest = json.loads(
            tar.extractfile(f"blobs/sha256/{written.manifest_digest.split(':')[1]}").read()  # type: ignore[union-attr]
        )
        layer = tar.extractfile(f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}")
        assert layer is not None
        with tarfile.open(fileobj=layer) as files:
            assert f"usr/local/bin/{key}" in files.getnames()
    assert "Entrypoint" not in config or not config["Entrypoint"]


def test_kwok_stages_go_into_the_image_without_kustomizations_or_test_data(tmp_path: Path):
    root = tmp_path / "stage"
    for relative in (
        "node/fast/node-initialize.yaml",
        "node/fast/kustomization.yaml",
        "node/fast/testdata/node-pending.input.yaml",
        "pod/general/pod-ready.yaml",
        "stage_test.go",
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("kind: Stage\n")
    found = [str(p.relative_to(root)) for p in kosmos_image.stage_files(root)]
    assert found == ["node/fast/node-initialize.yaml", "pod/general/pod-ready.yaml"]
    with pytest.raises(kosmos_image.ImageError, match="no <kind>/<set>/"):
        kosmos_image.stage_files(tmp_path / "empty")
    # where the operator looks for them (kosmos.kubenest.kwokstages)
    assert names.KWOK_STAGES_DIR == "/usr/share/kosmos/kwok/stage"
