"""The images real nodes run, built without a container engine and cached by their inputs.

Each image is an OCI archive for ``ctr -n k8s.io images import`` (see :mod:`kosmos.local.oci`
for the format and why the reference is in the index):

- ``pause``: the sandbox process, the toolchain's static ``pause`` (Kubernetes' own C source);
- ``shell``: busybox-static with one symlink per applet (sh, hostname, nslookup, wget, ip, ...);
- ``http``: the shell image plus a busybox httpd answering ``GET /`` with its pod name, serving
  ``/file.txt`` and a CGI ``/cgi-bin/info`` with its name and addresses;
- ``kosmos``: Debian bookworm with the dataplane tools and our wheel
  (:mod:`kosmos.local.kosmos_image`);
- ``metrics-server``: the toolchain's static ``metrics-server`` alone, as upstream's image
  (``/metrics-server`` as the entrypoint, user 65534) under upstream's reference, so the
  manifests name the image a real cluster pulls.
- ``coredns``: the toolchain's static ``coredns`` (our main package with stock plugins) alone,
  ``/coredns`` as the entrypoint like upstream's image, as ``docker.io/kosmos/coredns:<version>``
  (tagged with CoreDNS's own version): the cluster DNS of the local env and kosmos-coredns.
- ``kube-scheduler``, ``kube-apiserver``, ``kube-controller-manager``, ``etcd``, ``kwok``: the
  toolchain's static binary at ``/usr/local/bin/<name>`` under the upstream reference
  (``registry.k8s.io/kube-scheduler:<k8s version>``, ``registry.k8s.io/etcd:<version>-0``,
  ``registry.k8s.io/kwok/kwok:<version>``), so kosmos-scheduler's Deployment and the
  in-cluster kubenest provider's tenant control planes name exactly what a real cluster pulls
  and still start without a registry.

An archive is ``<cache>/images/<key>-<tag>-<digest>.tar`` where the digest covers every input
(the binaries copied in, the files written, the code of the recipes): unchanged inputs reuse
it, a change builds a new one. The tag is the package version like the release images
(``v`` + version); pause and metrics-server keep the upstream tag they are built from.
"""

from __future__ import annotations

import fcntl
import hashlib
import struct
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kosmos.api import release
from kosmos.local import kosmos_image, oci, paths, toolchain
from kosmos.local.kosmos_image import ImageError

__all__ = [
    "ALL",
    "CONTROL_PLANE_BINARIES",
    "COREDNS_REF",
    "ETCD_REF",
    "HTTP_REF",
    "KOSMOS_REF",
    "KUBE_APISERVER_REF",
    "KUBE_CONTROLLER_MANAGER_REF",
    "KUBE_SCHEDULER_REF",
    "KWOK_REF",
    "METRICS_SERVER_REF",
    "PAUSE_REF",
    "SHELL_REF",
    "Built",
    "Image",
    "ImageError",
    "build",
    "ensure_images",
]

Progress = Callable[[str], None]

REPOSITORY = "docker.io/kosmos"
ALL = (
    "pause",
    "shell",
    "http",
    "kosmos",
    "kube-scheduler",
    "metrics-server",
    "coredns",
    "kube-apiserver",
    "kube-controller-manager",
    "etcd",
    "kwok",
)
#: Archives kept per image besides the current one (another checkout may still use them).
KEEP_OLD = 2
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
HTTP_PORT = 8080
PT_INTERP = 3  # ELF program header naming the dynamic loader
#: upstream's image runs as nobody (its distroless base's 65534)
NOBODY = "65534"


def image_tag() -> str:
    """The release tag (``kosmos.api.release``), or from a bare source tree its pyproject's."""
    tag = release.installed_tag()
    return tag or "v" + kosmos_image.source_version(kosmos_image.source_root())


TAG = image_tag()
PAUSE_REF = f"{REPOSITORY}/pause:{toolchain.PAUSE_VERSION}"
SHELL_REF = f"{REPOSITORY}/shell:{TAG}"
HTTP_REF = f"{REPOSITORY}/http:{TAG}"
KOSMOS_REF = f"{REPOSITORY}/kosmos:{TAG}"
METRICS_SERVER_REF = (
    f"registry.k8s.io/metrics-server/metrics-server:{toolchain.group('metrics-server').version()}"
)
COREDNS_REF = f"{REPOSITORY}/coredns:{toolchain.group('coredns').version()}"
_K8S = toolchain.group("k8s").version()
KUBE_SCHEDULER_REF = f"registry.k8s.io/kube-scheduler:{_K8S}"
KUBE_APISERVER_REF = f"registry.k8s.io/kube-apiserver:{_K8S}"
KUBE_CONTROLLER_MANAGER_REF = f"registry.k8s.io/kube-controller-manager:{_K8S}"
#: upstream's etcd image tags drop the ``v`` and add a build number
ETCD_REF = f"registry.k8s.io/etcd:{toolchain.group('etcd').version().lstrip('v')}-0"
KWOK_REF = f"registry.k8s.io/kwok/kwok:{toolchain.group('kwok').version()}"
#: image key -> toolchain group of the static binary it carries at /usr/local/bin/<key>
CONTROL_PLANE_BINARIES = {
    "kube-scheduler": "k8s",
    "kube-apiserver": "k8s",
    "kube-controller-manager": "k8s",
    "etcd": "etcd",
    "kwok": "kwok",
}
REFS = {
    "pause": PAUSE_REF,
    "shell": SHELL_REF,
    "http": HTTP_REF,
    "kosmos": KOSMOS_REF,
    "metrics-server": METRICS_SERVER_REF,
    "kube-scheduler": KUBE_SCHEDULER_REF,
    "coredns": COREDNS_REF,
    "kube-apiserver": KUBE_APISERVER_REF,
    "kube-controller-manager": KUBE_CONTROLLER_MANAGER_REF,
    "etcd": ETCD_REF,
    "kwok": KWOK_REF,
}


@dataclass(frozen=True)
class Image:
    """One image ready for import: its key, full reference and OCI archive."""

    key: str  # one of ALL
    ref: str  # fully normalised, e.g. "docker.io/kosmos/pause:3.10.2"
    archive: Path  # OCI archive for `ctr -n k8s.io images import`


@dataclass(frozen=True)
class Built:
    """An image and what getting it cost (``seconds`` is None when it came from the cache)."""

    image: Image
    seconds: float | None
    size: int


def images_dir() -> Path:
    return paths.cache_dir() / "images"


def ensure_images(progress: Progress, *, keys: Iterable[str] = ALL) -> dict[str, Image]:
    """Return the images named by ``keys``, building those the cache does not hold."""
    return {built.image.key: built.image for built in build(progress, keys=keys)}


def build(progress: Progress, *, keys: Iterable[str] = ALL, rebuild: bool = False) -> list[Built]:
    """Build (or reuse) each image in ``keys``, in the order of :data:`ALL`."""
    wanted = set(keys)
    unknown = wanted - set(ALL)
    if unknown:
        raise ImageError(
            f"unknown image {', '.join(sorted(unknown))}: choose from {', '.join(ALL)}"
        )
    results = []
    with _locked():
        for key in ALL:
            if key in wanted:
                results.append(_ensure_one(key, progress, rebuild))
    return results


def _ensure_one(key: str, progress: Progress, rebuild: bool) -> Built:
    recipe = _recipe(key, progress)
    digest = hashlib.sha256(b"\0".join(recipe.inputs)).hexdigest()[:12]
    tag = REFS[key].rsplit(":", 1)[1]
    archive = images_dir() / f"{key}-{tag}-{digest}.tar"
    image = Image(key, REFS[key], archive)
    if archive.exists() and not rebuild:
        progress(f"image {key}: cached {archive.name} ({_mib(archive.stat().st_size)})")
        return Built(image, None, archive.stat().st_size)
    progress(f"image {key}: building {REFS[key]} ...")
    started = time.monotonic()
    written = recipe.write(archive)
    elapsed = time.monotonic() - started
    progress(
        f"image {key}: built in {elapsed:.1f}s, {_mib(written.size)}, "
        f"manifest {written.manifest_digest[:19]}"
    )
    _prune(key, keep=archive)
    return Built(image, elapsed, written.size)


@dataclass(frozen=True)
class Recipe:
    """What an image is made of (its cache key) and how to write it."""

    inputs: tuple[bytes, ...]
    write: Callable[[Path], oci.Written]


def _recipe(key: str, progress: Progress) -> Recipe:
    code = recipe_code_digest()
    if key == "pause":
        pause = toolchain.ensure(progress, only=("pause",)).path("pause")
        layer = oci.Layer()
        layer.copy("pause", pause, 0o755)
        config = oci.ImageConfig(entrypoint=("/pause",), labels=_labels(toolchain.PAUSE_VERSION))
        inputs = (code, PAUSE_REF.encode(), oci.file_digest(pause).encode())
        return Recipe(inputs, lambda out: oci.write_image(out, PAUSE_REF, [layer], config))
    if key == "metrics-server":
        return _metrics_server_recipe(code, progress)
    if key in CONTROL_PLANE_BINARIES:
        return _control_plane_binary(key, code, progress)
    if key == "coredns":
        return _coredns_recipe(code, progress)
    if key in ("shell", "http"):
        busybox = find_busybox()
        shell = shell_layer(busybox)
        inputs = (code, REFS[key].encode(), oci.file_digest(busybox).encode())
        if key == "shell":
            config = oci.ImageConfig(cmd=("sh",), labels=_labels(TAG))
            return Recipe(inputs, lambda out: oci.write_image(out, SHELL_REF, [shell], config))
        config = oci.ImageConfig(
            entrypoint=("/usr/local/bin/serve",), ports=(HTTP_PORT,), labels=_labels(TAG)
        )
        layers = [shell, http_layer()]
        return Recipe(inputs, lambda out: oci.write_image(out, HTTP_REF, layers, config))
    stages = toolchain.module_dir_of("kwok") / "kustomize" / "stage"
    recipe = kosmos_image.KosmosImage(progress, images_dir(), KOSMOS_REF, _labels(TAG), stages)
    return Recipe((code, *recipe.inputs()), recipe.write)


def _metrics_server_recipe(code: bytes, progress: Progress) -> Recipe:
    """The binary alone plus a world-writable /tmp (its self-signed serving certificate)."""
    binary = toolchain.ensure(progress, only=("metrics-server",)).path("metrics-server")
    if not is_static_elf(binary):
        raise ImageError(f"step 'check metrics-server' failed: {binary} is not a static binary")
    layer = oci.Layer()
    layer.copy("metrics-server", binary, 0o755)
    layer.dir("tmp", 0o1777)
    version = METRICS_SERVER_REF.rsplit(":", 1)[1]
    config = oci.ImageConfig(entrypoint=("/metrics-server",), user=NOBODY, labels=_labels(version))
    inputs = (code, METRICS_SERVER_REF.encode(), oci.file_digest(binary).encode())
    return Recipe(inputs, lambda out: oci.write_image(out, METRICS_SERVER_REF, [layer], config))


def _coredns_recipe(code: bytes, progress: Progress) -> Recipe:
    """The binary alone, as upstream's image (scratch + coredns); it binds port 53, so the
    image sets no user and the manifests decide (kubeadm's: NET_BIND_SERVICE, no other)."""
    binary = toolchain.ensure(progress, only=("coredns",)).path("coredns")
    if not is_static_elf(binary):
        raise ImageError(f"step 'check coredns' failed: {binary} is not a static binary")
    layer = oci.Layer()
    layer.copy("coredns", binary, 0o755)
    layer.dir("tmp", 0o1777)
    version = COREDNS_REF.rsplit(":", 1)[1]
    config = oci.ImageConfig(entrypoint=("/coredns",), ports=(53,), labels=_labels(version))
    inputs = (code, COREDNS_REF.encode(), oci.file_digest(binary).encode())
    return Recipe(inputs, lambda out: oci.write_image(out, COREDNS_REF, [layer], config))


def _control_plane_binary(key: str, code: bytes, progress: Progress) -> Recipe:
    """The toolchain's ``key`` binary where the upstream image has it (``/usr/local/bin``),
    no entrypoint (pods name the command, as kubeadm's do); ``nonroot`` exists for pods that
    ask for it. It must be static, as the layer holds nothing else."""
    binary = toolchain.ensure(progress, only=(CONTROL_PLANE_BINARIES[key],)).path(key)
    if not is_static_elf(binary):
        raise ImageError(f"step '{key} image' failed: {binary} is not a static binary")
    layer = oci.Layer()
    for directory in ("usr/local/bin", "etc"):
        layer.dir(directory)
    layer.dir("tmp", 0o1777)
    layer.copy(f"usr/local/bin/{key}", binary, 0o755)
    layer.file(
        "etc/passwd",
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/:/sbin/nologin\n",
    )
    layer.file("etc/group", "root:x:0:\nnonroot:x:65532:\n")
    ref = REFS[key]
    config = oci.ImageConfig(labels=_labels(ref.rsplit(":", 1)[1]))
    inputs = (code, ref.encode(), oci.file_digest(binary).encode())
    return Recipe(inputs, lambda out: oci.write_image(out, ref, [layer], config))


def recipe_code_digest() -> bytes:
    """The code that shapes an archive is an input too: editing a recipe rebuilds."""
    digest = hashlib.sha256()
    for module in (oci, kosmos_image):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest().encode()


def _labels(version: str) -> tuple[tuple[str, str], ...]:
    return (("org.opencontainers.image.version", version),)


def find_busybox() -> Path:
    """The static busybox (Debian's busybox-static); a dynamic one would not run alone."""
    for path in BUSYBOX_CANDIDATES:
        if path.exists() and is_static_elf(path):
            return path
    raise ImageError(
        "step 'find busybox' failed: no static busybox at "
        f"{' or '.join(map(str, BUSYBOX_CANDIDATES))}: apt-get install busybox-static "
        "(scripts/bootstrap installs it)"
    )


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without a program interpreter (PT_INTERP)."""
    with path.open("rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4:6] != b"\x02\x01":
            return False
        (table_offset,) = struct.unpack_from("<Q", header, 32)  # e_phoff
        entry_size, entries = struct.unpack_from("<HH", header, 54)  # e_phentsize, e_phnum
        f.seek(table_offset)
        table = f.read(entry_size * entries)
    types = [struct.unpack_from("<I", table, i * entry_size)[0] for i in range(entries)]
    return PT_INTERP not in types


def shell_layer(busybox: Path) -> oci.Layer:
    """busybox, one ``/bin/<applet>`` symlink per applet, the files a shell image expects."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    layer = oci.Layer()
    layer.copy("bin/busybox", busybox, 0o755)
    for applet in applets:
        if applet != "busybox":
            layer.symlink(f"bin/{applet}", "busybox")
    for directory in ("sbin", "usr/bin", "usr/sbin", "var/www", "etc"):
        layer.dir(directory)
    layer.dir("tmp", 0o1777)
    layer.dir("root", 0o700)
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    layer.file("etc/group", "root:x:0:\nnogroup:x:65534:\n")
    layer.file("etc/hosts", "127.0.0.1 localhost\n")
    return layer


HTTP_SERVE = f"""#!/bin/sh
# Test HTTP server: GET / answers the pod name, /file.txt is a static file, /cgi-bin/info
# answers the name and the pod's addresses. PORT (default {HTTP_PORT}), POD_NAME (default:
# the hostname, which a kubelet sets to the pod name).
root=/var/www
name=${{POD_NAME:-$(hostname)}}
echo "$name" > $root/index.html
echo "kosmos test file" > $root/file.txt
echo "serving $name on :${{PORT:-{HTTP_PORT}}}"
exec httpd -f -v -p "${{PORT:-{HTTP_PORT}}}" -h $root
"""

HTTP_INFO = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "name=${POD_NAME:-$(hostname)}"
ip -o -4 addr show scope global | awk '{print "ip=" $4}'
"""


def http_layer() -> oci.Layer:
    layer = oci.Layer()
    layer.file("usr/local/bin/serve", HTTP_SERVE, 0o755)
    layer.file("var/www/cgi-bin/info", HTTP_INFO, 0o755)
    return layer


@contextmanager
def _locked() -> Iterator[None]:
    """One builder at a time per cache (tests and `up` may ask for images concurrently)."""
    images_dir().mkdir(parents=True, exist_ok=True)
    with (images_dir() / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _prune(key: str, keep: Path) -> None:
    """Drop all but the newest :data:`KEEP_OLD` older archives of an image."""
    older = sorted(
        (p for p in images_dir().glob(f"{key}-*.tar") if p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in older[KEEP_OLD:]:
        path.unlink(missing_ok=True)


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
