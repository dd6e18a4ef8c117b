"""Bring one real node up, step by step; re-running it restarts only what is not running.

The steps, in order: the node's files; its network namespace on the cluster network; its
cgroups; its mount namespace; its credentials; containerd; the images; kubelet (until the
node is registered and has a pod range from kcm); flanneld (until it wrote its subnet);
the CNI configuration from the node's pod range; kube-proxy; the node's Ready condition;
then its node-agent. A node its agent lent to a tenant (:mod:`kosmos.local.nodes.agent`)
gets only containerd and the agent: kubelet, flanneld and kube-proxy are the agent's then.
Each step converges: what exists is kept, configuration files are written only when their
content changes, a process whose pid still runs it is left alone. A step that
fails raises ``NodeError`` naming the node, the step and the tail of the log that explains it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosmos.api import nodeagent
from kosmos.api.objects import node_ready
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes import agent, agentsetup, configs, isolation, launch, layout, pki
from kosmos.local.nodes.artifacts import Artifacts
from kosmos.local.nodes.layout import NodeDirs
from kosmos.local.nodes.network import bridge_of
from kosmos.local.nodes.plan import WORKER_ROLE, RealNodePlan
from kosmos.net import wiring
from kosmos.net.errors import NetError

Progress = Callable[[str], None]
SOCKET_TIMEOUT = 20.0
REGISTER_TIMEOUT = 90.0
FLANNEL_TIMEOUT = 30.0
READY_TIMEOUT = 90.0
AGENT_TIMEOUT = 30.0
POLL = 0.2
SETTLE = 0.5  # how long a process just started must stay alive to count as started
#: per-namespace kernel settings of a node: pods route through it, kube-proxy's DNAT must
#: see bridged traffic (needs the br_netfilter module, hence optional), and kube-proxy
#: answers NodePorts on 127.0.0.1
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.ipv4.conf.all.route_localnet": "1",
}
OPTIONAL_SYSCTLS = frozenset({"net.bridge.bridge-nf-call-iptables"})
#: other names an image answers to on a node: our shell image is busybox, so the many
#: samples written for ``busybox:latest`` (the distribution-policy one among them) run
#: without a registry when they ask ``imagePullPolicy: IfNotPresent``
IMAGE_ALIASES = {"shell": ("docker.io/library/busybox:latest",)}


class NodeError(RuntimeError):
    """A real node did not come up: which node, which step, and the log that says why."""

    def __init__(self, node: str, step: str, detail: str, log: Path | None = None) -> None:
        message = f"real node {node}: step '{step}' failed: {detail}"
        if log is not None:
            message += f"\n--- last lines of {log} ---\n{launch.tail(log)}"
        super().__init__(message)
        self.node, self.step, self.log = node, step, log


@dataclass
class Context:
    """What bringing a node up needs besides its plan."""

    artifacts: Artifacts
    kubectl: Kubectl  # the node's cluster, as admin
    cluster_pki: Path  # kwokctl's pki directory of the cluster (ca.crt, ca.key, admin.*)
    hierarchies: list[isolation.Mount]


@dataclass
class Outcome:
    node: str
    started: list[str] = field(default_factory=list)  # processes (re)started by this run
    tenant: str = ""  # the tenant the node serves (its node-agent runs kubelet then)
    seconds: float = 0.0


class NodeRunner:
    def __init__(self, node: RealNodePlan, ctx: Context) -> None:
        self.node, self.ctx, self.dirs = node, ctx, NodeDirs(node.name)
        self.outcome = Outcome(node.name)
        self._step = "files"
        self.renewed: set[str] = set()  # processes whose credentials changed

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def step(self, name: str, log: str | None = None) -> Iterator[None]:
        self._step = name
        try:
            yield
        except NodeError:
            raise
        except (OSError, NetError, KubectlError, RuntimeError) as exc:
            where = self.dirs.log(log) if log else None
            raise NodeError(self.node.name, name, str(exc), where) from exc

    def fail(self, detail: str, log: str | None = None) -> NodeError:
        return NodeError(self.node.name, self._step, detail, self.dirs.log(log) if log else None)

    def start(
        self, command: launch.Command, changed: bool = False, enter: list[str] | None = None
    ) -> None:
        """Start ``command`` unless it runs; ``changed``: its configuration or credentials
        changed, so a running one is stopped first (it would keep the old ones). ``enter``:
        the namespaces to run in (default: the node's mount and network namespaces)."""
        files = isolation.procs_files(self.node.cgroup, self.ctx.hierarchies)
        enter = enter if enter is not None else isolation.enter(self.dirs, self.node.netns)
        before = launch.pid_of(self.dirs, command)
        if before is not None and (changed or command.name in self.renewed):
            launch.stop(before)
            before = None
        launch.start(self.dirs, command, files, enter)
        if before is None:
            self.outcome.started.append(command.name)

    def wait(self, what: str, timeout: float, check: Callable[[], Any], process: str) -> Any:
        """Poll ``check`` until it returns something truthy; fail early if ``process`` died."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            pid_file = self.dirs.pid_file(process)
            pid = int(pid_file.read_text()) if pid_file.exists() else 0
            if not pid or launch.exited(pid):
                raise self.fail(f"{process} exited while waiting for {what}", process)
            if time.monotonic() > deadline:
                raise self.fail(f"no {what} after {timeout:.0f}s", process)
            time.sleep(POLL)

    # -- the steps --------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.monotonic()
        node = self.node
        with self.step("files"):
            self.dirs.create()
            layout.save(node)
        with self.step("network namespace"):
            address = f"{node.address}/{node.network.prefix}"
            port = wiring.Port(node.netns, node.bridge_peer, address, node.network.host_address)
            wiring.ensure_port(bridge_of(node), port)
            wiring.sysctl(node.netns, NODE_SYSCTLS, optional=OPTIONAL_SYSCTLS)
        with self.step("cgroups"):
            isolation.ensure_cgroups(node.cgroup, self.ctx.hierarchies)
        with self.step("mount namespace"):
            isolation.ensure_mount_namespace(self.dirs, node.netns, self.ctx.hierarchies)
        with self.step("credentials"):
            if pki.ensure_kubeconfigs(
                self.ctx.cluster_pki,
                node.name,
                node.apiserver,
                self.kubelet_kubeconfig,
                self.admin_kubeconfig,
            ):
                self.renewed = {"kubelet", "flanneld", "kube-proxy"}
        self.containerd()
        self.images()
        with self.step("node-agent state"):
            served = agent.read_state(self.dirs.agent_state)
        if served is None:
            self.own_cluster()
        else:
            self.outcome.tenant = served.tenant
        self.node_agent()
        self.still_running()
        self.outcome.seconds = time.monotonic() - started
        return self.outcome

    def own_cluster(self) -> None:
        """What serves the node's own cluster; a node lent to a tenant leaves it to its agent."""
        pod_cidr = self.kubelet()
        self.flannel()
        self.cni(pod_cidr)
        self.host_route(pod_cidr)
        self.kube_proxy()
        self.ready()

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.dirs.etc / "kubelet.kubeconfig"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.dirs.etc / "admin.kubeconfig"

    def containerd(self) -> None:
        arts = self.ctx.artifacts
        with self.step("containerd", "containerd"):
            config = self.dirs.etc / "containerd.toml"
            changed = layout.put(
                config,
                configs.containerd_toml(arts.sandbox_image, arts.cni_bin_dir, arts.runc),
                0o644,
            )
            command = launch.Command("containerd", (str(arts.containerd), "--config", str(config)))
            self.start(command, changed)
            self.wait("containerd socket", SOCKET_TIMEOUT, self.containerd_answers, "containerd")

    def ctr(self, *args: str) -> list[str]:
        return [
            str(self.ctx.artifacts.ctr),
            "-a",
            str(self.dirs.containerd_socket),
            "-n",
            "k8s.io",
            *args,
        ]

    def containerd_answers(self) -> bool:
        if not self.dirs.containerd_socket.exists():
            return False
        return launch.quiet_ok(self.ctr("version"))

    def images(self) -> None:
        with self.step("images", "containerd"):
            present = images_present(launch.output(self.ctr("images", "ls")))
            for image in self.ctx.artifacts.images.values():
                if not image.archive.exists():
                    raise self.fail(f"image {image.ref}: archive {image.archive} is missing")
                digest = archive_digest(image.archive)
                if present.get(image.ref) != digest:
                    launch.output(self.ctr("images", "import", str(image.archive)))
                for alias in IMAGE_ALIASES.get(image.key, ()):
                    if present.get(alias) != digest:
                        launch.output(self.ctr("images", "tag", "--force", image.ref, alias))

    def kubelet(self) -> str:
        node, arts = self.node, self.ctx.artifacts
        with self.step("kubelet", "kubelet"):
            config = self.dirs.etc / "kubelet.yaml"
            body = configs.kubelet_config(node, self.ctx.cluster_pki / "ca.crt")
            changed = layout.put(config, configs.dump_yaml(body), 0o644)
            flags = configs.kubelet_flags(node, config, self.kubelet_kubeconfig)
            self.register()
            self.start(launch.Command("kubelet", (str(arts.kubelet), *flags)), changed)
            pod_cidr: str = self.wait(
                "registration with a pod range",
                REGISTER_TIMEOUT,
                self.registered_pod_cidr,
                "kubelet",
            )
            if node.role == "host":
                self.ctx.kubectl.run("label", "node", node.name, f"{WORKER_ROLE}=", "--overwrite")
        return pod_cidr

    def register(self) -> None:
        """Create the Node with its environment's pod /24 before kubelet registers (kubelet
        keeps an existing Node's spec): the controller manager would hand every
        environment the same first free /24. Labels and taints are kubelet's own."""
        pod_cidr = self.node.node_pod_cidr
        if pod_cidr is None or self.live_node() is not None:
            return
        body = configs.node_object(self.node, pod_cidr)
        self.ctx.kubectl.run("create", "-f", "-", stdin=configs.dump_json(body))

    def live_node(self) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = json.loads(
                self.ctx.kubectl.run("get", "node", self.node.name, "-o", "json", timeout=10)
            )
        except (KubectlError, ValueError):
            return None
        return body

    def registered_pod_cidr(self) -> str:
        live = self.live_node() or {}
        return str((live.get("spec") or {}).get("podCIDR") or "")

    def flannel(self) -> None:
        node, arts = self.node, self.ctx.artifacts
        with self.step("flannel", "flanneld"):
            net_conf = self.dirs.etc / "net-conf.json"
            body = configs.dump_json(configs.flannel_net_conf(node.pod_cidr))
            changed = layout.put(net_conf, body, 0o644)
            flags = configs.flannel_flags(self.admin_kubeconfig, net_conf)
            command = launch.Command(
                "flanneld", (str(arts.flanneld), *flags), {"NODE_NAME": node.name}
            )
            self.start(command, changed)
            self.wait("subnet file", FLANNEL_TIMEOUT, self.dirs.subnet_env.exists, "flanneld")

    def cni(self, pod_cidr: str) -> None:
        with self.step("cni"):
            values = configs.subnet_env(self.dirs.subnet_env.read_text())
            mtu = int(values.get("FLANNEL_MTU") or configs.DEFAULT_MTU)
            body = configs.cni_conflist(pod_cidr, mtu)
            layout.put(
                self.dirs.cni_conf_dir / configs.CNI_CONF_FILE, configs.dump_json(body), 0o644
            )

    def host_route(self, pod_cidr: str) -> None:
        """The apiserver, a process in the host's namespace, reaches this node's pods: the
        leaf nodes' kubelet endpoint (at the cluster-manager pod's IP) and aggregated APIs
        (metrics-server) are served there. ``down`` removes the route with the node."""
        with self.step("host route"):
            wiring.ensure_routes(None, {pod_cidr: self.node.address})

    def kube_proxy(self) -> None:
        with self.step("kube-proxy", "kube-proxy"):
            config = self.dirs.etc / "kube-proxy.yaml"
            body = configs.kube_proxy_config(self.node, self.admin_kubeconfig)
            changed = layout.put(config, configs.dump_yaml(body), 0o644)
            argv = (str(self.ctx.artifacts.kube_proxy), f"--config={config}", "--v=2")
            self.start(launch.Command("kube-proxy", argv), changed)

    def node_agent(self) -> None:
        """The node-agent, last: it restarts what the steps above started (in its network
        namespace only, see :mod:`kosmos.local.nodes.agentsetup`); up once it listens."""
        with self.step("node-agent", agentsetup.NAME):
            changed = agentsetup.ensure_node(self.ctx.cluster_pki, self.dirs, self.node)
            command = agentsetup.command(self.dirs, self.node)
            self.start(command, changed, agentsetup.enter(self.node.netns))
            self.wait("node-agent port", AGENT_TIMEOUT, self.agent_listens, agentsetup.NAME)

    def agent_listens(self) -> bool:
        address = (self.node.address, nodeagent.PORT)
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=1):
            return True
        return False

    def ready(self) -> None:
        with self.step("ready", "kubelet"):
            self.wait("Ready condition", READY_TIMEOUT, self.is_ready, "kubelet")

    def still_running(self) -> None:
        """Every process started by this run is alive a moment later: one that exits right
        after its start (a bad flag, a taken port) is reported here, not by ``status``."""
        if not self.outcome.started:
            return
        time.sleep(SETTLE)
        for name in self.outcome.started:
            with self.step(name, name):
                pid_file = self.dirs.pid_file(name)
                if launch.exited(int(pid_file.read_text())):
                    raise self.fail(f"{name} exited right after it started", name)

    def is_ready(self) -> bool:
        return node_ready(self.live_node() or {})


def images_present(listing: str) -> dict[str, str]:
    """``ctr images ls`` output -> {reference: manifest digest} (pure)."""
    found = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            found[fields[0]] = fields[2]
    return found


def archive_digest(archive: Path) -> str:
    """The manifest digest an OCI archive's index names (what ctr lists after the import)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise RuntimeError(f"{archive} has no index.json")
        index = json.loads(member.read())
    return str(index["manifests"][0]["digest"])
