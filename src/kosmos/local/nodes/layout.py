"""Where a real node keeps its state: one directory per node under ``$KOSMOS_LOCAL_DIR/nodes``.

Inside its mount namespace a node sees three of these directories as ``/run``, ``/var/lib``
and ``/var/log``. So containerd, kubelet, the CNI plugins and flanneld keep their default
paths (the shim sockets containerd puts in ``/run/containerd/s``, kubelet's
``/var/log/containers`` links, the pods' network namespace pins in ``/run/netns``, the CNI
IP allocations in ``/var/lib/cni``), every node has its own, and none of it appears on the
host. Those three exist on every Linux host, so nothing is created on the host's file system
as a mount point (and ``down`` has no directory outside ours to remove).

``node.json`` records the node's plan, so ``down`` and ``status`` work from what is on disk
even when the environment's options are gone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kosmos.local import paths
from kosmos.local.nodes.plan import NetworkPlan, RealNodePlan

#: host path inside the node -> directory of the node's own
BINDS = {"/run": "run", "/var/lib": "lib", "/var/log": "log"}


def root() -> Path:
    return paths.local_dir() / "nodes"


def pins_dir() -> Path:
    """The pinned mount namespaces (a private mount, as ``/run/netns`` is for netns)."""
    return root() / "mnt"


def relay_dir() -> Path:
    return root() / "relay"


@dataclass(frozen=True)
class NodeDirs:
    """``parent``: the nodes' directory when it is not this environment's (the node-agent
    is given its node's directory on its command line)."""

    name: str
    parent: Path | None = field(default=None, compare=False)

    @classmethod
    def at(cls, base: Path) -> NodeDirs:
        return cls(base.name, base.parent)

    @property
    def base(self) -> Path:
        return (self.parent or root()) / self.name

    def bind_source(self, target: str) -> Path:
        return self.base / BINDS[target]

    @property
    def etc(self) -> Path:
        """Configuration files and kubeconfigs (read through their host paths)."""
        return self.base / "etc"

    @property
    def commands(self) -> Path:
        """``<process>.json``: the full argv and extra environment each process was last
        started with by ``up``, which the node-agent starts again (with some paths swapped)."""
        return self.etc / "commands"

    @property
    def tenant(self) -> Path:
        """The configuration and credentials of the tenant the node-agent joined it to."""
        return self.etc / "tenant"

    @property
    def agent_state(self) -> Path:
        """Which tenant the node serves (absent: its own cluster)."""
        return self.etc / "agent-state.json"

    @property
    def logs(self) -> Path:
        """One log per node process (``<process>.log``), appended across restarts."""
        return self.base / "logs"

    @property
    def pids(self) -> Path:
        return self.base / "pids"

    @property
    def pin(self) -> Path:
        return pins_dir() / self.name

    @property
    def record(self) -> Path:
        return self.base / "node.json"

    @property
    def containerd_socket(self) -> Path:
        """The host-side path of the node's ``/run/containerd/containerd.sock``."""
        return self.bind_source("/run") / "containerd" / "containerd.sock"

    @property
    def subnet_env(self) -> Path:
        """flanneld's ``/run/flannel/subnet.env``, seen from the host."""
        return self.bind_source("/run") / "flannel" / "subnet.env"

    @property
    def cni_conf_dir(self) -> Path:
        """The CNI configuration directory (``/var/lib/cni/net.d`` inside the node)."""
        return self.bind_source("/var/lib") / "cni" / "net.d"

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"

    def pid_file(self, process: str) -> Path:
        return self.pids / f"{process}.pid"

    def create(self) -> None:
        for directory in (self.etc, self.logs, self.pids, *map(self.bind_source, BINDS)):
            directory.mkdir(parents=True, exist_ok=True)
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)


def save(node: RealNodePlan) -> None:
    NodeDirs(node.name).record.write_text(json.dumps(asdict(node), indent=2))


def load(name: str) -> RealNodePlan | None:
    try:
        raw = json.loads(NodeDirs(name).record.read_text())
        raw["network"] = NetworkPlan(**raw["network"])
        return RealNodePlan(**raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def recorded() -> list[str]:
    """Names of the nodes with a directory (running, stopped or half-made)."""
    if not root().exists():
        return []
    skip = {pins_dir().name, relay_dir().name}
    return sorted(d.name for d in root().iterdir() if d.is_dir() and d.name not in skip)


def put(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write ``text`` unless the file holds it already; True when written.

    kube-proxy exits when its configuration file changes under it, so re-running ``up``
    must leave unchanged files untouched.
    """
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".new")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
    return True
