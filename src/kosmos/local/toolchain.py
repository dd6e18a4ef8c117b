"""Build the local environment's binaries from pinned tools modules, into a versioned cache.

Nothing on PyPI, npm or Debian ships a current kube-apiserver, so the binaries the local
clusters run (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok,
kwokctl) and the ones real nodes run (kubelet, kube-proxy, flanneld, pause, metrics-server,
coredns) and the ones the tests drive (helm)
are compiled from Go modules. Each group of binaries has its own tools module under
``gotools/<group>/`` (one dependency graph per tool, so their pins never drag each other).
``pause`` is the one C program: the sandbox process from the Kubernetes module's own
``build/pause`` sources, compiled statically with gcc.

A group is built into ``<cache>/toolchain/<group>-<version>-<digest>/`` where the digest covers
the tools module, the compiler version and the build flags: changing any of them builds a new
directory, an unchanged one is reused. A ``.complete`` marker is written only after every
binary printed the pinned version, so an interrupted build is never mistaken for a good one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kosmos.local import paths
from kosmos.local.compilers import (
    Progress,
    ToolchainError,
    gcc_binary,
    go_binary,
    go_env,
    module_source,
    run_step,
)

__all__ = [
    "GOTOOLS_DIR",
    "GROUPS",
    "PAUSE_VERSION",
    "Binary",
    "BuiltGroup",
    "Group",
    "Toolchain",
    "ToolchainError",
    "cache_key",
    "ensure",
    "group",
    "ldflags",
    "regenerate_k8s_module",
    "required_version",
]

GOTOOLS_DIR = Path(__file__).parent / "gotools"
BUILD_TAGS = "selinux,notest,grpcnotrace"
#: The pause image tag kubeadm of the pinned release uses (its ``PauseVersion``); checked
#: against ``build/pause/Makefile`` of the module at build time.
PAUSE_VERSION = "3.10.2"
#: Static, so the pause image needs no libc; -s strips it (as upstream's image build does).
CFLAGS = ("-Os", "-Wall", "-Werror", "-static", "-s")


@dataclass(frozen=True)
class Binary:
    """One binary of a group: its file name, Go package, and how it reports its version."""

    name: str
    package: str
    version_args: tuple[str, ...] = ("--version",)


@dataclass(frozen=True)
class Group:
    """A tools module and the binaries built from it."""

    name: str
    module: str
    binaries: tuple[Binary, ...]
    stamps_k8s_version: bool = False
    #: Go variable that ``-X`` sets to the version (what ``--version`` prints), if any.
    version_var: str = ""
    #: The tools module directory when it is another group's (pause reads k8s's sources).
    tools: str = ""
    #: Set for a C program compiled by gcc from ``module``'s source tree: the version it prints.
    c_version: str = ""

    @property
    def module_dir(self) -> Path:
        return GOTOOLS_DIR / (self.tools or self.name)

    def version(self) -> str:
        """The pinned version, read from the tools module: go.mod is the single source."""
        return self.c_version or required_version(self.module_dir / "go.mod", self.module)


GROUPS: tuple[Group, ...] = (
    Group(
        "kwok",
        "sigs.k8s.io/kwok",
        (
            Binary("kwok", "sigs.k8s.io/kwok/cmd/kwok"),
            Binary("kwokctl", "sigs.k8s.io/kwok/cmd/kwokctl"),
        ),
    ),
    Group("etcd", "go.etcd.io/etcd/server/v3", (Binary("etcd", "go.etcd.io/etcd/server/v3"),)),
    Group(
        "k8s",
        "k8s.io/kubernetes",
        (
            Binary("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
            Binary("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
            Binary("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
            Binary("kubectl", "k8s.io/kubernetes/cmd/kubectl", ("version", "--client")),
            Binary("kubelet", "k8s.io/kubernetes/cmd/kubelet"),
            Binary("kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy"),
        ),
        stamps_k8s_version=True,
    ),
    # Our own main package (gotools/flannel/cmd/flanneld): see its doc comment for why.
    Group(
        "flannel",
        "github.com/flannel-io/flannel",
        (Binary("flanneld", "kosmos.local/tools/flannel/cmd/flanneld"),),
        version_var="github.com/flannel-io/flannel/pkg/version.Version",
    ),
    # metrics-server prints client-go's gitVersion (upstream's Makefile stamps it the same way).
    Group(
        "metrics-server",
        "sigs.k8s.io/metrics-server",
        (Binary("metrics-server", "sigs.k8s.io/metrics-server/cmd/metrics-server"),),
        version_var="k8s.io/client-go/pkg/version.gitVersion",
    ),
    # Our own main package (gotools/coredns/cmd/coredns): the stock plugins we run, no cloud SDKs.
    Group(
        "coredns",
        "github.com/coredns/coredns",
        (Binary("coredns", "kosmos.local/tools/coredns/cmd/coredns", ("-version",)),),
    ),
    # helm lints, renders and installs charts/kosmos (the chart tests and the Helm e2e); it
    # prints the version its Makefile stamps, so the same -X stamp is set here.
    Group(
        "helm",
        "helm.sh/helm/v4",
        (Binary("helm", "helm.sh/helm/v4/cmd/helm", ("version",)),),
        version_var="helm.sh/helm/v4/internal/version.version",
    ),
    Group(
        "pause",
        "k8s.io/kubernetes",
        (Binary("pause", "build/pause/linux/pause.c", ("-v",)),),
        tools="k8s",
        c_version=PAUSE_VERSION,
    ),
)


def group(name: str) -> Group:
    """The group called ``name``; raises ``ToolchainError`` naming the known ones."""
    for candidate in GROUPS:
        if candidate.name == name:
            return candidate
    known = ", ".join(g.name for g in GROUPS)
    raise ToolchainError(f"unknown toolchain group {name}: choose from {known}")


def module_dir_of(name: str) -> Path:
    """The module cache directory of group ``name``'s module at its pinned version
    (downloaded if missing): where files of the module other than its binaries are."""
    found = group(name)
    return module_source(go_binary()[0], found.module_dir, found.module)


def required_version(go_mod: Path, module: str) -> str:
    """Return the version a go.mod requires for ``module`` (``require M vX`` or in a block)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search(go_mod.read_text())
    if not match:
        raise ToolchainError(f"{go_mod} does not require {module}")
    return match.group(1)


@dataclass
class BuiltGroup:
    """A group present in the cache, with what its build cost."""

    group: Group
    directory: Path
    version: str
    build_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    reused: bool = True

    def path(self, binary: str) -> Path:
        return self.directory / binary


@dataclass
class Toolchain:
    """Every binary the local environment needs, by name."""

    groups: dict[str, BuiltGroup] = field(default_factory=dict)

    def path(self, binary: str) -> Path:
        for built in self.groups.values():
            if any(b.name == binary for b in built.group.binaries):
                return built.path(binary)
        raise KeyError(binary)

    @property
    def k8s_version(self) -> str:
        return self.groups["k8s"].version


def ldflags(group: Group, version: str) -> str:
    """Linker flags; Kubernetes binaries get the version stamp their ``--version`` prints."""
    flags = ["-s", "-w"]
    if group.stamps_k8s_version:
        major, minor = version.lstrip("v").split(".")[:2]
        built = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        values = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
            "buildDate": built,
        }
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X '{pkg}.{key}={value}'" for key, value in values.items()]
    if group.version_var:
        flags.append(f"-X '{group.version_var}={version}'")
    return " ".join(flags)


def cache_key(group: Group, compiler_version: str) -> str:
    """Directory name for a group: its version plus a digest of everything that shapes it.

    The digest covers every file of the tools module (go.mod, go.sum, our own main packages),
    the compiler's version and the build flags.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in group.module_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(group.module_dir)}\0".encode())
        digest.update(path.read_bytes())
    flags = " ".join(CFLAGS) if group.c_version else BUILD_TAGS
    digest.update(f"{compiler_version}|{flags}|{group.stamps_k8s_version}".encode())
    digest.update(f"|{group.version_var}|{[b.package for b in group.binaries]}".encode())
    return f"{group.name}-{group.version()}-{digest.hexdigest()[:10]}"


def ensure(progress: Progress, *, rebuild: bool = False, only: Collection[str] = ()) -> Toolchain:
    """Return the toolchain (or the groups named in ``only``), building what the cache lacks."""
    unknown = set(only) - {g.name for g in GROUPS}
    if unknown:
        raise ToolchainError(f"unknown toolchain groups: {', '.join(sorted(unknown))}")
    go, go_version = go_binary()
    toolchain = Toolchain()
    for group in GROUPS:
        if only and group.name not in only:
            continue
        compiler = gcc_binary()[1] if group.c_version else go_version
        directory = paths.toolchain_dir() / cache_key(group, compiler)
        marker = directory / ".complete"
        if marker.exists() and not rebuild:
            meta = json.loads(marker.read_text())
            toolchain.groups[group.name] = BuiltGroup(
                group, directory, group.version(), meta["build_seconds"], meta["peak_rss_mib"]
            )
            progress(f"{group.name} {group.version()}: cached in {directory}")
            continue
        toolchain.groups[group.name] = _build_group(go, group, directory, progress)
    _link_bin_dir(toolchain)
    return toolchain


def _build_group(go: str, group: Group, directory: Path, progress: Progress) -> BuiltGroup:
    version = group.version()
    env = go_env(go)
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log_path = directory.with_name(directory.name + ".log")
    started = time.monotonic()
    with log_path.open("w") as log:
        run = functools.partial(run_step, cwd=group.module_dir, env=env, log=log, progress=progress)
        if group.c_version:
            peak = _compile_c(go, group, staging, run)
        else:
            peak = run(f"download {group.name} modules", [go, "mod", "download"])
            packages = [b.package for b in group.binaries]
            # `-o dir/` names a binary after its package's last element: etcd's would be "v3".
            single = len(packages) == 1
            output = str(staging / group.binaries[0].name) if single else f"{staging}/"
            build = [go, "build", "-v", "-p", str(os.cpu_count() or 2), "-trimpath"]
            build += ["-tags", BUILD_TAGS, "-ldflags", ldflags(group, version), "-o", output]
            peak = max(peak, run(f"compile {group.name} {version}", build + packages))
    _verify(group, staging, version)
    elapsed = time.monotonic() - started
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    meta = {"version": version, "build_seconds": round(elapsed, 1), "peak_rss_mib": round(peak)}
    (directory / ".complete").write_text(json.dumps(meta))
    progress(f"{group.name} {version}: built in {elapsed:.0f}s into {directory}")
    return BuiltGroup(group, directory, version, elapsed, peak, reused=False)


def _compile_c(
    go: str, group: Group, staging: Path, run: Callable[[str, list[str]], float]
) -> float:
    """Compile a C program of the group's module with gcc, from the module cache's sources.

    The version macro is stamped like upstream's image build does (``-DVERSION=v<tag>-...``),
    after checking the module's own build still says that tag: a re-pinned Kubernetes with
    another pause version must update :data:`PAUSE_VERSION` (and with it the image's tag).
    """
    gcc = gcc_binary()[0]
    root = module_source(go, group.module_dir, group.module)
    binary = group.binaries[0]
    source = root / binary.package
    makefile = source.parent.parent / "Makefile"
    tag = re.search(r"^TAG \?= (\S+)", makefile.read_text(), re.MULTILINE)
    if not tag or tag.group(1) != group.c_version:
        raise ToolchainError(
            f"step 'check {binary.name} version' failed: {makefile} says TAG "
            f"{tag.group(1) if tag else '(none)'}, the toolchain pins {group.c_version}. "
            "Update PAUSE_VERSION in kosmos/local/toolchain.py."
        )
    argv = [gcc, *CFLAGS, f"-DVERSION=v{group.c_version}-kosmos"]
    return run(
        f"compile {binary.name} {group.c_version}",
        [*argv, "-o", str(staging / binary.name), str(source)],
    )


def _verify(group: Group, staging: Path, version: str) -> None:
    """Every binary must run and print the pinned version (kwokctl reads it to pick flags)."""
    for binary in group.binaries:
        path = staging / binary.name
        out = subprocess.run(
            [str(path), *binary.version_args], capture_output=True, text=True, check=False
        )
        text = out.stdout + out.stderr
        if version.lstrip("v") not in text:
            raise ToolchainError(
                f"step 'verify {binary.name}' failed: `{path} {' '.join(binary.version_args)}` "
                f"printed {text.strip()[:200]!r}, expected version {version}. "
                "Retry with `kosmosctl local toolchain --rebuild`."
            )


def _link_bin_dir(toolchain: Toolchain) -> None:
    """Point ``<cache>/bin`` at the current binaries so users can put one dir on PATH."""
    bin_dir = paths.bin_dir()
    bin_dir.mkdir(parents=True, exist_ok=True)
    for built in toolchain.groups.values():
        for binary in built.group.binaries:
            link = bin_dir / binary.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(built.path(binary.name))


def regenerate_k8s_module(version: str, go: str | None = None) -> None:
    """Rewrite the k8s tools go.mod for another release, replace lines from its own go.mod.

    k8s.io/kubernetes requires its staging modules at v0.0.0 and satisfies them with local
    ``./staging`` replaces that do not apply to a consumer; we map each to the published
    ``v0.<minor>.<patch>`` tag. Generating the list from the release avoids drift when
    staging modules are added.
    """
    go = go or go_binary()[0]
    env = go_env(go)
    env["GOFLAGS"] = "-modcacherw"
    out = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    release_mod = Path(json.loads(out.stdout)["GoMod"]).read_text()
    staging = sorted(set(re.findall(r"(k8s\.io/[\w-]+) => \./staging/", release_mod)))
    go_line = re.search(r"^go (\S+)", release_mod, re.MULTILINE)
    godebug = re.search(r"^godebug (\S+)", release_mod, re.MULTILINE)
    lib_version = "v0." + version.lstrip("v").split(".", 1)[1]
    k8s = group("k8s")
    head = (k8s.module_dir / "go.mod").read_text().split("require", 1)[0]
    head = re.sub(r"^go \S+", f"go {go_line.group(1) if go_line else '1.26.0'}", head, flags=re.M)
    if godebug:
        head = re.sub(r"^godebug \S+", f"godebug {godebug.group(1)}", head, flags=re.M)
    replaces = "".join(f"\t{m} => {m} {lib_version}\n" for m in staging)
    text = f"{head}require k8s.io/kubernetes {version}\n\nreplace (\n{replaces})\n"
    (k8s.module_dir / "go.mod").write_text(text)
    subprocess.run([go, "mod", "tidy"], cwd=k8s.module_dir, env=env, check=True)
