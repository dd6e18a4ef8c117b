"""Build the local environment's Go binaries from pinned tools modules, into a versioned cache.

Nothing on PyPI, npm or Debian ships a current kube-apiserver, so the binaries the local
clusters run (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok,
kwokctl) are compiled from Go modules. Each group of binaries has its own tools module under
``gotools/<group>/`` (one dependency graph per tool, so their pins never drag each other).

A group is built into ``<cache>/toolchain/<group>-<version>-<digest>/`` where the digest covers
the tools module, the Go version and the build flags: changing any of them builds a new
directory, an unchanged one is reused. A ``.complete`` marker is written only after every
binary printed the pinned version, so an interrupted build is never mistaken for a good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kosmos.local import paths

GOTOOLS_DIR = Path(__file__).parent / "gotools"
MIN_GO = (1, 26)
BUILD_TAGS = "selinux,notest,grpcnotrace"
HEARTBEAT_SECONDS = 15.0

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A build step failed; the message names the step, the cause and how to retry."""


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

    @property
    def module_dir(self) -> Path:
        return GOTOOLS_DIR / self.name

    def version(self) -> str:
        """The pinned version, read from the tools module: go.mod is the single source."""
        return required_version(self.module_dir / "go.mod", self.module)


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
        ),
        stamps_k8s_version=True,
    ),
)


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


def go_binary() -> tuple[str, str]:
    """Locate ``go`` and check it is new enough; return its path and ``GOVERSION``."""
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise ToolchainError(
            "step 'find go' failed: no `go` on PATH. Install Go >= 1.26 (the pinned Kubernetes "
            "release is built with it) and retry `kosmosctl local toolchain`."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    version = out.stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", version)
    if not match or (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise ToolchainError(
            f"step 'find go' failed: {go} is {version or 'unknown'}, need "
            f"go{MIN_GO[0]}.{MIN_GO[1]} or newer."
        )
    return go, version


def go_env(go: str) -> dict[str, str]:
    """Environment for every Go step: never download a toolchain, never modify go.mod."""
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-modcacherw -buildvcs=false -mod=readonly",
        PATH=f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


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
    return " ".join(flags)


def cache_key(group: Group, go_version: str) -> str:
    """Directory name for a group: its version plus a digest of everything that shapes it."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((group.module_dir / name).read_bytes())
    digest.update(f"{go_version}|{BUILD_TAGS}|{group.stamps_k8s_version}".encode())
    return f"{group.name}-{group.version()}-{digest.hexdigest()[:10]}"


def ensure(progress: Progress, *, rebuild: bool = False) -> Toolchain:
    """Return the toolchain, building whatever group is missing from the cache."""
    go, go_version = go_binary()
    toolchain = Toolchain()
    for group in GROUPS:
        directory = paths.toolchain_dir() / cache_key(group, go_version)
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
        peak = _run_step(
            f"download {group.name} modules",
            [go, "mod", "download"],
            group=group,
            env=env,
            log=log,
            progress=progress,
        )
        packages = [b.package for b in group.binaries]
        # `-o dir/` names a binary after its package's last element: etcd's would be "v3".
        single = len(packages) == 1
        output = str(staging / group.binaries[0].name) if single else f"{staging}/"
        build = [go, "build", "-v", "-p", str(os.cpu_count() or 2), "-trimpath"]
        build += ["-tags", BUILD_TAGS, "-ldflags", ldflags(group, version), "-o", output]
        peak = max(
            peak,
            _run_step(
                f"compile {group.name} {version}",
                build + packages,
                group=group,
                env=env,
                log=log,
                progress=progress,
            ),
        )
    _verify(group, staging, version)
    elapsed = time.monotonic() - started
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    meta = {"version": version, "build_seconds": round(elapsed, 1), "peak_rss_mib": round(peak)}
    (directory / ".complete").write_text(json.dumps(meta))
    progress(f"{group.name} {version}: built in {elapsed:.0f}s into {directory}")
    return BuiltGroup(group, directory, version, elapsed, peak, reused=False)


def _run_step(
    step: str,
    argv: list[str],
    *,
    group: Group,
    env: dict[str, str],
    log: TextIO,
    progress: Progress,
) -> float:
    """Run one Go command, streaming output to the log and a heartbeat to ``progress``.

    Returns the peak RSS in MiB of the command and its children (compilers, linker).
    """
    progress(f"{step} ...")
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=group.module_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            latest = lines[-1] if lines else "starting"
            progress(
                f"  {step}: {time.monotonic() - started:.0f}s, {len(lines)} packages, "
                f"latest {latest}"
            )

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    for line in proc.stdout:
        lines.append(line.rstrip())
        log.write(line)
    # wait4 reports the largest RSS among the command and the children it waited for.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    stop.set()
    if code != 0:
        tail = "\n".join(f"    {line}" for line in lines[-15:])
        raise ToolchainError(
            f"step '{step}' failed (exit {code}) in {group.module_dir}.\n{tail}\n"
            f"Full log: {log.name}\n"
            "Retry with `kosmosctl local toolchain`: downloaded modules and compiled packages "
            "are reused. Check `go env GOPROXY GOSUMDB` if the failure is a download."
        )
    return usage.ru_maxrss / 1024


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
    group = next(g for g in GROUPS if g.name == "k8s")
    head = (group.module_dir / "go.mod").read_text().split("require", 1)[0]
    head = re.sub(r"^go \S+", f"go {go_line.group(1) if go_line else '1.26.0'}", head, flags=re.M)
    if godebug:
        head = re.sub(r"^godebug \S+", f"godebug {godebug.group(1)}", head, flags=re.M)
    replaces = "".join(f"\t{m} => {m} {lib_version}\n" for m in staging)
    text = f"{head}require k8s.io/kubernetes {version}\n\nreplace (\n{replaces})\n"
    (group.module_dir / "go.mod").write_text(text)
    subprocess.run([go, "mod", "tidy"], cwd=group.module_dir, env=env, check=True)
