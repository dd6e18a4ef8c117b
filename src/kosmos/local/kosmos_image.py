"""The Kosmos image: a Debian root file system with the dataplane tools, plus our wheel.

Two layers, so that a code change only rebuilds the small one:

1. **base**: ``mmdebstrap --variant=minbase`` of Debian bookworm with python3 and what the
   agent drives (iproute2, iptables, ipset, strongSwan's charon + swanctl with the openssl and
   kernel-libipsec plugins that ``scripts/bootstrap`` also installs, wireguard-go,
   wireguard-tools), what the netdoctor floater checks with (ping, curl, nslookup) and tini
   as PID 1. Cached as a tar under ``<cache>/images/base/``, keyed by
   the package list and options; docs, man pages and locales are left out.
2. **app**: our wheel built from this source tree (``pip wheel --no-deps``) and its
   dependencies installed for bookworm's CPython into ``/usr/local/lib/python3.11/dist-packages``
   (on Debian's ``sys.path``), compiled to hash-checked ``.pyc`` files, and the console scripts
   ``kosmos`` and ``kosmosctl``. Dependencies are pinned to the versions this environment runs
   (the tests ran against those), downloaded once into ``<cache>/images/wheels``. With them,
   kwok's stage files (``<set>/<stage>.yaml`` of the kwok module the toolchain built kwok
   from) under ``/usr/share/kosmos/kwok/stage``: kubenest's operator gives them to tenants'
   kwok and has no Go module cache in its pod.

The entrypoint is ``tini -- kosmos``: the pod's args pick the component.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from kosmos.api import names
from kosmos.local import oci

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PYTHON = "3.11"  # bookworm's python3: the ABI of the wheels and the .pyc magic
SITE = f"usr/local/lib/python{PYTHON}/dist-packages"
PACKAGES = (
    "python3",
    "iproute2",
    "iptables",
    "ipset",
    "strongswan-charon",
    "strongswan-swanctl",
    "libcharon-extra-plugins",
    "libstrongswan-standard-plugins",
    "wireguard-go",
    "wireguard-tools",
    "procps",
    "iputils-ping",
    "curl",  # the floater's tcp check (kosmosctl netdoctor), as operators run it by hand
    "bind9-dnsutils",  # nslookup: the floater's dns check
    "ca-certificates",
    "tini",
)
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
CLEANUP_HOOK = (
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log '
    '"$1"/var/cache/ldconfig/aux-cache'
)
#: Wheels for bookworm (glibc 2.36, x86_64): every manylinux tag up to 2.36.
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)), "manylinux2014_x86_64")
ENTRYPOINT = ("/usr/bin/tini", "--", "/usr/local/bin/kosmos")
SOURCE_IGNORE = ("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")

Progress = Callable[[str], None]


class ImageError(RuntimeError):
    """An image cannot be built; the message names the step, what is missing and the log."""


def source_root() -> Path:
    """The checkout this package runs from: the wheel in the image is built from it."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / "kosmos").is_dir():
        raise ImageError(
            f"step 'find sources' failed: {root} is not a kosmos checkout (no pyproject.toml "
            "and src/kosmos): the kosmos image is built from a source tree"
        )
    return root


def source_version(root: Path) -> str:
    project: dict[str, str] = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return project["version"]


def dependency_pins(dist: str = "kosmos") -> tuple[str, ...]:
    """``name==version`` of every installed distribution ``dist`` needs, transitively.

    Used as pip constraints, so the image carries the versions the tests ran against;
    requirements only under an extra (``dev``) are not followed.
    """
    pins: dict[str, str] = {}
    todo = [dist]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in pins:
            continue
        try:
            found = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pins[name] = found.version
        for requirement in found.requires or ():
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            if match and "extra ==" not in requirement:
                todo.append(match.group(0))
    pins.pop(re.sub(r"[-_.]+", "-", dist).lower(), None)
    return tuple(sorted(f"{name}=={version}" for name, version in pins.items()))


def source_digest(root: Path) -> str:
    """Digest of what the wheel is built from: pyproject.toml, README.md and src/."""
    files = [root / "pyproject.toml", root / "README.md"]
    files += sorted(
        p
        for p in (root / "src").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    return oci.files_digest(root, files)


class KosmosImage:
    """The recipe: :meth:`inputs` is its cache key, :meth:`write` builds the archive."""

    def __init__(
        self,
        progress: Progress,
        cache: Path,
        ref: str,
        labels: tuple[tuple[str, str], ...],
        kwok_stages: Path | None = None,
    ) -> None:
        self.progress = progress
        self.cache = cache
        self.ref = ref
        self.labels = labels
        self.root = source_root()
        self.pins = dependency_pins()
        #: kwok's ``kustomize/stage`` directory (None: the image carries no stages)
        self.kwok_stages = kwok_stages

    def base_key(self) -> str:
        spec = "|".join((SUITE, MIRROR, *PACKAGES, *DPKG_OPTIONS, CLEANUP_HOOK))
        return oci.text_digest(spec)[:12]

    def inputs(self) -> tuple[bytes, ...]:
        return (
            self.ref.encode(),
            self.base_key().encode(),
            source_digest(self.root).encode(),
            "\n".join(self.pins).encode(),
            "|".join(PLATFORMS).encode(),
            self._stages_digest().encode(),
        )

    def _stages_digest(self) -> str:
        if self.kwok_stages is None:
            return ""
        return oci.files_digest(self.kwok_stages, stage_files(self.kwok_stages))

    def write(self, archive: Path) -> oci.Written:
        base = self.ensure_base()
        with tempfile.TemporaryDirectory(prefix="kosmos-image-", dir=self.cache) as scratch:
            app = self.app_layer(Path(scratch))
            config = oci.ImageConfig(entrypoint=ENTRYPOINT, cmd=("--help",), labels=self.labels)
            self.progress("kosmos image: writing the archive (gzip of both layers) ...")
            return oci.write_image(archive, self.ref, [base, app], config)

    def ensure_base(self) -> Path:
        """The base root file system tar, from the cache or from mmdebstrap."""
        base = self.cache / "base" / f"kosmos-base-{SUITE}-{self.base_key()}.tar"
        if base.exists():
            self.progress(f"kosmos image: base layer cached ({base.name})")
            return base
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise ImageError(
                "step 'kosmos base layer' failed: mmdebstrap not found: apt-get install "
                "mmdebstrap (scripts/bootstrap installs it)"
            )
        base.parent.mkdir(parents=True, exist_ok=True)
        # mmdebstrap picks the output format from the name: it must end in .tar.
        partial = base.with_name(f"partial-{base.name}")
        argv = [mmdebstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        argv += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
        argv += [f"--customize-hook={CLEANUP_HOOK}", SUITE, str(partial), MIRROR]
        self.progress(f"kosmos image: mmdebstrap {SUITE} with {len(PACKAGES)} packages ...")
        _run("kosmos base layer (mmdebstrap)", argv, base.with_suffix(".log"))
        partial.replace(base)
        return base

    def app_layer(self, scratch: Path) -> oci.Layer:
        """Our wheel and its pinned dependencies, installed for bookworm's Python."""
        version = source_version(self.root)
        if "v" + version != self.ref.rsplit(":", 1)[1]:
            raise ImageError(
                f"step 'kosmos wheel' failed: {self.root}/pyproject.toml says {version} but the "
                f"image is tagged {self.ref}: reinstall kosmos (pip install -e .) and retry"
            )
        self.progress("kosmos image: building the wheel and installing its dependencies ...")
        wheel = self._wheel(scratch)
        site = scratch / "site"
        constraints = scratch / "constraints.txt"
        constraints.write_text("".join(f"{pin}\n" for pin in self.pins))
        wheels = self.cache / "wheels"
        target = [f"--python-version={PYTHON}", "--implementation=cp", "--only-binary=:all:"]
        target += [f"--platform={platform}" for platform in PLATFORMS]
        install = [sys.executable, "-m", "pip", "install", "--no-compile", "--target", str(site)]
        install += ["--no-index", "--find-links", str(wheels), "-c", str(constraints)]
        # By name from --find-links, not by path: a path would be recorded in direct_url.json.
        install += [*target, "--find-links", str(wheel.parent), f"kosmos=={version}"]
        log = scratch / "pip.log"
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            download = [sys.executable, "-m", "pip", "download", "--dest", str(wheels)]
            download += ["-c", str(constraints), *target, str(wheel)]
            _forget_own_wheel(wheels)
            _run("kosmos dependencies (pip download)", download, log)
            _forget_own_wheel(wheels)
            _run("kosmos dependencies (pip install)", install, log)
        shutil.rmtree(site / "bin", ignore_errors=True)  # scripts with the builder's shebang
        self._compile(site)
        layer = oci.Layer()
        layer.tree(SITE, site)
        for name, entry in self._scripts().items():
            module, function = entry.split(":")
            script = f"#!/usr/bin/python3\nimport sys\nfrom {module} import {function}\n"
            layer.file(f"usr/local/bin/{name}", script + f"sys.exit({function}())\n", 0o755)
        if self.kwok_stages is not None:
            into = names.KWOK_STAGES_DIR.strip("/")
            for path in stage_files(self.kwok_stages):
                layer.copy(f"{into}/{path.relative_to(self.kwok_stages)}", path, 0o644)
        return layer

    def _wheel(self, scratch: Path) -> Path:
        """``pip wheel --no-deps`` of a clean copy of the sources (no build debris)."""
        tree = scratch / "source"
        tree.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(self.root / name, tree / name)
        ignore = shutil.ignore_patterns(*SOURCE_IGNORE)
        shutil.copytree(self.root / "src", tree / "src", ignore=ignore)
        dist = scratch / "dist"
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(tree)]
        _run("kosmos wheel (pip wheel)", argv, scratch / "wheel.log")
        found = sorted(dist.glob("kosmos-*.whl"))
        if not found:
            raise ImageError(f"step 'kosmos wheel' failed: pip wheel wrote no wheel in {dist}")
        return found[0]

    def _compile(self, site: Path) -> None:
        """Hash-checked .pyc (reproducible, valid whatever the mtimes), if our Python matches."""
        if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON:
            self.progress(f"kosmos image: no .pyc (building with Python {sys.version[:4]})")
            return
        argv = [sys.executable, "-m", "compileall", "-q", "-j", "0", "-d", f"/{SITE}"]
        argv += ["--invalidation-mode", "checked-hash", str(site)]
        _run("kosmos .pyc (compileall)", argv, site.parent / "compileall.log")

    def _scripts(self) -> dict[str, str]:
        project = tomllib.loads((self.root / "pyproject.toml").read_text())["project"]
        scripts: dict[str, str] = project["scripts"]
        return scripts


def stage_files(root: Path) -> list[Path]:
    """kwok's stages under its ``kustomize/stage``: ``<kind>/<set>/<stage>.yaml``, without
    the kustomizations and test data (which set a tenant gets is kubenest's choice)."""
    found = sorted(root.glob("*/*/*.yaml"))
    files = [p for p in found if p.name != "kustomization.yaml"]
    if not files:
        raise ImageError(f"step 'kwok stages' failed: no <kind>/<set>/*.yaml under {root}")
    return files


def _forget_own_wheel(wheels: Path) -> None:
    """``pip download`` copies our wheel into the shared wheel cache, where a later build of
    the same version (other dependencies) would resolve against the stale copy's metadata."""
    for stale in wheels.glob("kosmos-*.whl"):
        stale.unlink()


def _run(step: str, argv: list[str], log: Path) -> None:
    """Run one build command with its output in ``log``; fail naming the step and the log."""
    with log.open("w") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        tail = "\n".join(f"    {line}" for line in log.read_text().splitlines()[-15:])
        raise ImageError(f"step '{step}' failed (exit {code}):\n{tail}\nFull log: {log}")
