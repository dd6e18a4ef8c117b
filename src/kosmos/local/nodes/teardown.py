"""Remove real nodes completely, and prove it.

A node is gone when no process of it runs, its mount namespace (and with it every mount it
made: overlay snapshots, kubelet volumes, the pods' network namespace pins) and its network
namespace are released, its cgroups are removed in every hierarchy and its directory is
deleted. Its processes are found four ways, because each misses some: the pid files, the
node's cgroup subtree (containers and shims too), and every process whose mount or network
namespace is the node's (found by the namespaces' inodes in ``/proc/<pid>/ns``). They are
killed with SIGKILL, round after round until none is left: graceful stops buy nothing for
throwaway state and would let a kubelet restart the containers being killed.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from kosmos.local import procs
from kosmos.local.nodes import isolation, launch, layout, network, relay
from kosmos.local.nodes.layout import NodeDirs
from kosmos.local.nodes.plan import RealNodePlan
from kosmos.net import wiring
from kosmos.net.errors import NetError

KILL_ROUNDS = 50


@dataclass
class Removal:
    nodes: list[str] = field(default_factory=list)
    killed: int = 0
    left: list[str] = field(default_factory=list)  # what could not be removed (should be [])


def _pid_files(dirs: NodeDirs) -> set[int]:
    found = set()
    for path in dirs.pids.glob("*.pid") if dirs.pids.exists() else ():
        try:
            found.add(int(path.read_text().strip()))
        except (OSError, ValueError):
            continue
    return {p for p in found if procs.alive(p)}


def node_pids(node: RealNodePlan, hierarchies: list[isolation.Mount]) -> set[int]:
    dirs = NodeDirs(node.name)
    pids = isolation.cgroup_pids(node.cgroup, hierarchies) | _pid_files(dirs)
    pids |= isolation.pids_in_namespace("mnt", isolation.mount_ns_inode(dirs.pin))
    pids |= isolation.pids_in_namespace("net", wiring.netns_inode(node.netns))
    pids.discard(os.getpid())
    return {p for p in pids if procs.alive(p)}


def remove_node(name: str, hierarchies: list[isolation.Mount], report: Removal) -> None:
    """Everything of one node; what resists is added to ``report.left``."""
    dirs = NodeDirs(name)
    node = layout.load(name)
    if node is not None:
        for _ in range(KILL_ROUNDS):
            pids = node_pids(node, hierarchies)
            if not pids:
                break
            launch.kill(pids)
            report.killed += len(pids)
            time.sleep(0.1)
            for pid in pids:  # our own children stay zombies, in their cgroup, until reaped
                launch.exited(pid)
        else:
            report.left.append(f"{name}: processes {sorted(node_pids(node, hierarchies))}")
    try:
        isolation.release(dirs.pin)
    except isolation.IsolationError as exc:
        report.left.append(f"{name}: {exc}")
    if node is not None:
        try:
            wiring.remove_host_routes_via(node.address)
            wiring.delete_netns(node.netns)
        except NetError as exc:
            report.left.append(f"{name}: {exc}")
        left = isolation.remove_cgroups(node.cgroup, hierarchies)
        report.left += [f"{name}: cgroup {p}" for p in left]
        if wiring.netns_exists(node.netns):
            report.left.append(f"{name}: network namespace {node.netns}")
    shutil.rmtree(dirs.base, ignore_errors=True)
    if dirs.base.exists():
        report.left.append(f"{name}: directory {dirs.base}")
    report.nodes.append(name)


def remove_all(environment_cgroup: str | None) -> Removal:
    """Every node on disk, then the networks, the relay, the pins and the cgroup root."""
    report = Removal()
    hierarchies = isolation.host_cgroup_mounts()
    roots = {n.cgroup.split("/")[0] for n in map(layout.load, layout.recorded()) if n}
    for name in layout.recorded():
        remove_node(name, hierarchies, report)
    relay.stop()
    try:
        network.remove_underlay(network.recorded())
    except NetError as exc:
        report.left.append(f"underlay: {exc}")
    for net in network.recorded():
        try:
            network.remove(net)
        except NetError as exc:
            report.left.append(f"network {net.netns}: {exc}")
        if wiring.netns_exists(net.netns) or wiring.link_exists(None, net.host_link):
            report.left.append(f"network {net.netns} (host link {net.host_link})")
    if environment_cgroup:
        roots.add(environment_cgroup)
    for cgroup_root in roots:
        isolation.remove_if_empty(cgroup_root, hierarchies)
    try:
        isolation.release_pins_dir()
    except isolation.IsolationError as exc:
        report.left.append(str(exc))
    shutil.rmtree(layout.relay_dir(), ignore_errors=True)
    report.left += leftovers(roots, hierarchies)
    if layout.root().exists() and not any(layout.root().iterdir()):
        layout.root().rmdir()
    return report


def leftovers(cgroup_roots: set[str], hierarchies: list[isolation.Mount]) -> list[str]:
    """What of the real nodes is still on the machine (expected: nothing)."""
    base = str(layout.root())
    left = [
        f"mount {m.target}"
        for m in isolation.mounts(isolation.MOUNTINFO.read_text())
        if m.target.startswith(base)
    ]
    for cgroup_root in cgroup_roots:
        left += [
            f"cgroup {Path(h.target) / cgroup_root}"
            for h in hierarchies
            if (Path(h.target) / cgroup_root).exists()
        ]
    left += [f"process {p.pid} {p.cmdline[:80]}" for p in procs.processes_under(layout.root())]
    return left
