"""A real node's cgroup subtree and its pinned mount namespace.

cgroups: every process of a node (containerd, its shims, kubelet, kube-proxy, flanneld) runs
in ``<environment>/<node>/system`` of every hierarchy the host has mounted, and kubelet's
``cgroupRoot`` is ``<environment>/<node>/pods``, so every container lands in the node's
subtree too. That is what lets ``down`` find and stop everything a node ever started, and
what the idle measurement reads. Hosts with cgroup v1 controllers (with or without the
hybrid cgroup2 mount) and pure cgroup2 hosts are both handled: the hierarchies are read from
``/proc/self/mountinfo``.

Mount namespace: one per node, pinned by a bind mount of its ``/proc/<pid>/ns/mnt`` (like
``ip netns`` pins network namespaces), so every process of the node, including one started
again after a crash, joins the same mounts. ``ip netns exec`` would give each process a fresh
mount namespace instead: kubelet's volume mounts would then be invisible to containerd.
Inside: a sysfs of the node's network namespace, the host's cgroup hierarchies mounted again
under it, the node's own directories on ``/run``, ``/var/lib`` and ``/var/log``
(:mod:`kosmos.local.nodes.layout`), and files over four ``/proc/sys`` knobs kubelet would
otherwise set host-wide at start (it only writes them when their value differs).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kosmos.local.nodes.layout import BINDS, NodeDirs, pins_dir

MOUNTINFO = Path("/proc/self/mountinfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: kubelet sets these at start unless they already hold its values
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
}


#: awk: the mount point of every nsfs mount (the file system type follows the " - " field)
NSFS_TARGETS = (
    '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "nsfs") print $5; break }}'
)


class IsolationError(RuntimeError):
    """A cgroup or the mount namespace could not be set up; the message says which."""


@dataclass(frozen=True)
class Mount:
    target: str
    fstype: str
    options: str  # the superblock options (controllers of a v1 hierarchy)


def mounts(text: str) -> list[Mount]:
    """The mounts of a ``mountinfo`` text (pure; escapes such as ``\\040`` stay as they are)."""
    found = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3:
            found.append(Mount(fields[4], rest[0], rest[2]))
    return found


def cgroup_mounts(all_mounts: list[Mount]) -> list[Mount]:
    """The cgroup hierarchies under /sys/fs/cgroup (v1 controllers and cgroup2)."""
    base = str(CGROUP_ROOT)
    return [
        m
        for m in all_mounts
        if m.fstype in ("cgroup", "cgroup2")
        and (m.target == base or m.target.startswith(base + "/"))
    ]


def host_cgroup_mounts() -> list[Mount]:
    return cgroup_mounts(mounts(MOUNTINFO.read_text()))


def unified_only(hierarchies: list[Mount]) -> bool:
    return len(hierarchies) == 1 and hierarchies[0].fstype == "cgroup2"


def process_hierarchies(hierarchies: list[Mount]) -> list[Mount]:
    """Where node processes are placed: every v1 hierarchy, or the cgroup2 one on a pure v2
    host (on a hybrid host the cgroup2 mount has no controllers; runc and kubelet still make
    cgroups there, which ``remove_cgroups`` takes care of)."""
    if unified_only(hierarchies):
        return hierarchies
    return [m for m in hierarchies if m.fstype == "cgroup"]


def _controllers(mount: Mount) -> list[str]:
    return [o for o in mount.options.split(",") if o not in ("rw", "ro") and "=" not in o]


def ensure_cgroups(cgroup: str, hierarchies: list[Mount]) -> None:
    """``<cgroup>/system`` and ``<cgroup>/pods`` in every hierarchy processes go to."""
    for mount in process_hierarchies(hierarchies):
        base = Path(mount.target)
        parts = Path(cgroup).parts
        for depth in range(1, len(parts) + 1):
            _make(base, Path(*parts[:depth]), mount)
        for leaf in ("system", "pods"):
            _make(base, Path(cgroup) / leaf, mount)


def _make(base: Path, relative: Path, mount: Mount) -> None:
    path = base / relative
    try:
        path.mkdir(exist_ok=True)
        if "cpuset" in _controllers(mount):  # v1 cpuset children start without cpus or mems
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text().strip():
                    (path / knob).write_text((path.parent / knob).read_text())
        if mount.fstype == "cgroup2" and relative.name not in ("system", "pods"):
            wanted = (path / "cgroup.controllers").read_text().split()
            control = " ".join(f"+{c}" for c in wanted)
            if control:
                (path / "cgroup.subtree_control").write_text(control)
    except OSError as exc:
        raise IsolationError(f"cgroup {path}: {exc}") from exc


def procs_files(cgroup: str, hierarchies: list[Mount]) -> list[Path]:
    """``cgroup.procs`` of the node's ``system`` cgroup in each hierarchy."""
    return [
        Path(m.target) / cgroup / "system" / "cgroup.procs"
        for m in process_hierarchies(hierarchies)
    ]


def cgroup_pids(cgroup: str, hierarchies: list[Mount]) -> set[int]:
    """Every process in the node's subtree (any hierarchy, any depth)."""
    pids: set[int] = set()
    for mount in hierarchies:
        top = Path(mount.target) / cgroup
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except (OSError, ValueError):
                continue
    return pids


def remove_cgroups(cgroup: str, hierarchies: list[Mount]) -> list[Path]:
    """Remove the node's subtree depth-first in every hierarchy; returns what is left."""
    left: list[Path] = []
    for mount in hierarchies:
        top = Path(mount.target) / cgroup
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                _rmdir(path, left)
        _rmdir(top, left)
    return left


def remove_if_empty(cgroup: str, hierarchies: list[Mount]) -> None:
    """Remove the environment's cgroup directory once no node is left in it."""
    for mount in hierarchies:
        path = Path(mount.target) / cgroup
        if path.is_dir() and not any(p.is_dir() for p in path.iterdir()):
            _rmdir(path, [])


def _rmdir(path: Path, left: list[Path]) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        left.append(path)


# -- the mount namespace --------------------------------------------------------------------


def ensure_pins_dir() -> Path:
    """The pins' directory, bind-mounted on itself and made private.

    A namespace pin cannot live on a shared mount (the kernel refuses the loop it could
    make), and a private one keeps the pins out of the namespaces created later.
    """
    directory = pins_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if str(directory) not in {m.target for m in mounts(MOUNTINFO.read_text())}:
        _run(["mount", "--bind", str(directory), str(directory)], "pin directory")
        _run(["mount", "--make-private", str(directory)], "pin directory")
    return directory


def is_pinned(pin: Path) -> bool:
    return str(pin) in {m.target for m in mounts(MOUNTINFO.read_text())}


def setup_script(dirs: NodeDirs, hierarchies: list[Mount]) -> str:
    """The shell commands that furnish a new node mount namespace (pure; unit-tested).

    First every nsfs mount copied from the host is dropped: those are other namespaces'
    pins (other nodes' mount namespaces, network namespaces), and a copy here would keep
    them alive after their own ``down``.
    """
    quote = shlex.quote
    lines = [
        "set -e",
        f"for m in $(awk {quote(NSFS_TARGETS)} /proc/self/mountinfo); do"
        ' umount -l "$m" 2>/dev/null || true; done',
        "mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",
    ]
    if unified_only(hierarchies):
        lines.append(f"mount -t cgroup2 cgroup2 {CGROUP_ROOT}")
    else:
        lines.append(f"mount -t tmpfs -o mode=755 cgroup {CGROUP_ROOT}")
        for mount in hierarchies:
            target = quote(mount.target)
            lines.append(f"mkdir -p {target}")
            if mount.fstype == "cgroup2":
                lines.append(f"mount -t cgroup2 cgroup2 {target}")
            else:
                named = [o for o in mount.options.split(",") if o.startswith("name=")]
                options = ",".join(_controllers(mount) + named) or "none"
                if named and not _controllers(mount):
                    options = "none," + ",".join(named)
                lines.append(f"mount -t cgroup -o {quote(options)} cgroup {target}")
    for target in BINDS:
        lines.append(f"mount --bind {quote(str(dirs.bind_source(target)))} {target}")
    for knob, value in KUBELET_SYSCTLS.items():
        holder = dirs.etc / f"sysctl-{knob.replace('/', '-')}"
        lines.append(f"printf '%s\\n' {value} > {quote(str(holder))}")
        lines.append(f"mount --bind {quote(str(holder))} /proc/sys/{knob}")
    return "\n".join(lines)


def ensure_mount_namespace(dirs: NodeDirs, netns: str, hierarchies: list[Mount]) -> bool:
    """Create and furnish the node's mount namespace unless it is pinned; True if created."""
    ensure_pins_dir()
    furnished = dirs.etc / "mount-namespace.ready"
    if is_pinned(dirs.pin):
        if furnished.exists() or pids_in_namespace("mnt", mount_ns_inode(dirs.pin)):
            furnished.touch()
            return False
        release(dirs.pin)  # pinned by an interrupted run, never furnished: start over
    furnished.unlink(missing_ok=True)
    dirs.pin.touch()
    _run(["unshare", f"--mount={dirs.pin}", "--propagation", "private", "true"], "unshare")
    script = setup_script(dirs, hierarchies)
    try:
        _run([*enter(dirs, netns), "sh", "-c", script], "mount namespace set-up")
    except IsolationError:
        release(dirs.pin)
        raise
    furnished.touch()
    return True


def enter(dirs: NodeDirs, netns: str) -> list[str]:
    """The argv prefix that runs a command in the node's mount and network namespaces."""
    return ["nsenter", f"--mount={dirs.pin}", f"--net=/run/netns/{netns}", "--"]


def release(pin: Path) -> None:
    """Unpin a mount namespace: with its last process gone, every mount in it goes too."""
    if is_pinned(pin):
        _run(["umount", str(pin)], "unpin")
    pin.unlink(missing_ok=True)


def release_pins_dir() -> None:
    directory = pins_dir()
    if is_pinned(directory) and not any(directory.iterdir()):
        _run(["umount", str(directory)], "pin directory")
    if directory.exists() and not any(directory.iterdir()):
        directory.rmdir()


def mount_ns_inode(pin: Path) -> int | None:
    try:
        return pin.stat().st_ino if is_pinned(pin) else None
    except OSError:
        return None


def pids_in_namespace(kind: str, inode: int | None) -> set[int]:
    """Processes whose ``kind`` namespace ("mnt", "net") has ``inode`` (/proc/<pid>/ns)."""
    if inode is None:
        return set()
    want = f"{kind}:[{inode}]"
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str((entry / "ns" / kind).readlink()) == want:
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _run(argv: list[str], what: str) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IsolationError(f"{what}: `{argv[0]}`: {exc}") from exc
    if out.returncode != 0:
        said = (out.stderr or out.stdout).strip()
        raise IsolationError(f"{what}: `{' '.join(argv[:3])} ...` failed: {said}")
