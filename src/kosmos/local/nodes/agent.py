"""The node-agent's backend for the local environment's real nodes: serve a tenant, and back.

To serve a tenant the node keeps its containerd (and the pods' bridge on its own /24), stops
flanneld (it leaves its cluster's pod network) and restarts kubelet and kube-proxy pointed at
the tenant's apiserver: the same command lines ``up`` recorded (``etc/commands``), with their
``--kubeconfig=``/``--config=`` files swapped for copies under ``etc/tenant/`` that name the
tenant (its server, CA, credentials and cluster DNS). ``etc/agent-state.json`` says which
tenant; while it exists ``up`` leaves kubelet, kube-proxy and flanneld to the agent. Leaving
starts everything again from the records and removes the state and the tenant's files.

A kubelet started against an apiserver that does not know its pods kills them (the host's
DaemonSet pods on a node lent to a tenant): that is what a node changing clusters means.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from kosmos.api.nodeagent import TENANT, Failed, Join, Refused, State
from kosmos.local.nodes import launch, pki
from kosmos.local.nodes.configs import dump_yaml
from kosmos.local.nodes.launch import Command, Recorded
from kosmos.local.nodes.layout import NodeDirs, put

KUBELET, PROXY, FLANNEL = "kubelet", "kube-proxy", "flanneld"
#: what serving a tenant restarts with swapped files
SWAPPED = (KUBELET, PROXY)
#: flags whose file, when it is one of the node's ``etc/`` files, the tenant's copy replaces
SWAPPED_FLAGS = ("--kubeconfig", "--config")
#: how long a process just started must stay alive to count as started
SETTLE = 1.0


@dataclass(frozen=True)
class Served:
    """The state file: the tenant a node serves and its apiserver."""

    tenant: str
    server: str


def read_state(path: Path) -> Served | None:
    try:
        body = json.loads(path.read_text())
        return Served(str(body["tenant"]), str(body["server"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Failed(f"cannot read {path}: {exc}") from exc


def write_state(path: Path, served: Served) -> bool:
    body = {"tenant": served.tenant, "server": served.server}
    return put(path, json.dumps(body, indent=2) + "\n", 0o644)


def swap_paths(argv: Sequence[str], etc: Path, tenant: Path) -> tuple[str, ...]:
    """``argv`` with every ``--kubeconfig=``/``--config=`` naming a file in ``etc`` naming
    the file of the same name in ``tenant`` instead (pure)."""
    swapped = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag in SWAPPED_FLAGS and Path(value).parent == etc:
            swapped.append(f"{flag}={tenant / Path(value).name}")
        else:
            swapped.append(arg)
    return tuple(swapped)


def swapped(record: Recorded, etc: Path, tenant: Path) -> Recorded:
    command = record.command
    inner = Command(command.name, swap_paths(command.argv, etc, tenant), command.env)
    return Recorded(inner, swap_paths(record.argv, etc, tenant))


def tenant_kubelet_config(text: str, client_ca: Path, join: Join) -> str:
    """The node's KubeletConfiguration for the tenant: the tenant's CA checks the clients
    (its apiserver's kubelet client certificate), the tenant's cluster DNS (the node's own
    when the tenant names none) and domain for pods (pure)."""
    body = yaml.safe_load(text)
    body.setdefault("authentication", {}).setdefault("x509", {})["clientCAFile"] = str(client_ca)
    if join.clusterDNS:
        body["clusterDNS"] = list(join.clusterDNS)
    body["clusterDomain"] = join.clusterDomain
    return dump_yaml(body)


def tenant_proxy_config(text: str, kubeconfig: Path) -> str:
    """The node's KubeProxyConfiguration talking to the tenant's apiserver (pure)."""
    body = yaml.safe_load(text)
    body.setdefault("clientConnection", {})["kubeconfig"] = str(kubeconfig)
    return dump_yaml(body)


class LocalBackend:
    """:class:`kosmos.api.nodeagent.NodeBackend` for the real node in ``node_dir``."""

    def __init__(self, node_dir: Path) -> None:
        # absolute: a process is known as the node's by its arguments under this directory
        self.dirs = NodeDirs.at(node_dir.absolute())

    def state(self) -> State:
        served = read_state(self.dirs.agent_state)
        record = launch.recorded(self.dirs, KUBELET)
        running = record is not None and launch.pid_of(self.dirs, record.command) is not None
        kubelet = "running" if running else "stopped"
        if served is None:
            return State(self.dirs.name, kubelet=kubelet)
        return State(self.dirs.name, TENANT, served.tenant, served.server, kubelet)

    def join(self, join: Join) -> State:
        served = read_state(self.dirs.agent_state)
        if served is not None and served.tenant != join.tenant:
            raise Refused(f"node {self.dirs.name} serves {served.tenant}: leave it first")
        records = self.records()
        changed = self.write_tenant_files(join)
        write_state(self.dirs.agent_state, Served(join.tenant, join.server))
        self.stop(records[FLANNEL].command)
        started = []
        for name in SWAPPED:
            record = swapped(records[name], self.dirs.etc, self.dirs.tenant)
            if name in changed or not self.runs_for_tenant(record.command):
                started.append(self.restart(record))
        self.settled(started)
        return self.state()

    def leave(self) -> State:
        if read_state(self.dirs.agent_state) is None:
            return self.state()
        records = self.records()
        started = [self.restart(records[name]) for name in SWAPPED]
        if launch.pid_of(self.dirs, records[FLANNEL].command) is None:
            started.append(self.restart(records[FLANNEL]))
        self.settled(started)
        self.dirs.agent_state.unlink(missing_ok=True)
        shutil.rmtree(self.dirs.tenant, ignore_errors=True)
        return self.state()

    # -- steps ------------------------------------------------------------------------------

    def records(self) -> dict[str, Recorded]:
        found = {}
        for name in (KUBELET, PROXY, FLANNEL):
            record = launch.recorded(self.dirs, name)
            if record is None:
                where = self.dirs.commands / f"{name}.json"
                raise Failed(
                    f"node {self.dirs.name}: no record of {name}'s start ({where}); "
                    "`kosmosctl local up` writes it"
                )
            found[name] = record
        return found

    def write_tenant_files(self, join: Join) -> set[str]:
        """The tenant's CA, kubeconfigs and configurations; which processes' files changed."""
        tenant, etc, changed = self.dirs.tenant, self.dirs.etc, set()
        try:
            ca = tenant / "ca.crt"
            if put(ca, join.caData, 0o644):
                changed.add(KUBELET)
            for name, creds in ((KUBELET, join.kubelet), (PROXY, join.proxy)):
                config = pki.kubeconfig(
                    join.server,
                    join.caData.encode(),
                    creds.certData.encode(),
                    creds.keyData.encode(),
                    name,
                )
                if put(tenant / f"{name}.kubeconfig", config):
                    changed.add(name)
            kubelet = tenant_kubelet_config((etc / "kubelet.yaml").read_text(), ca, join)
            if put(tenant / "kubelet.yaml", kubelet, 0o644):
                changed.add(KUBELET)
            proxy = tenant_proxy_config(
                (etc / "kube-proxy.yaml").read_text(), tenant / "kube-proxy.kubeconfig"
            )
            if put(tenant / "kube-proxy.yaml", proxy, 0o644):
                changed.add(PROXY)
        except (OSError, yaml.YAMLError) as exc:
            raise Failed(f"node {self.dirs.name}: writing the tenant's files: {exc}") from exc
        return changed

    def runs_for_tenant(self, command: Command) -> bool:
        pid = launch.pid_of(self.dirs, command)
        return pid is not None and launch.running_as(pid, command, f"{self.dirs.tenant}/")

    def stop(self, command: Command) -> None:
        pid = launch.pid_of(self.dirs, command)
        if pid is not None and not launch.stop(pid):
            raise Failed(f"node {self.dirs.name}: {command.name} (pid {pid}) does not stop")

    def restart(self, record: Recorded) -> tuple[str, int]:
        self.stop(record.command)
        return record.command.name, launch.spawn(self.dirs, record.command, record.argv)

    def settled(self, started: list[tuple[str, int]]) -> None:
        """Every process just started still runs a moment later, or Failed with its log."""
        if not started:
            return
        time.sleep(SETTLE)
        for name, pid in started:
            if launch.exited(pid):
                log = self.dirs.log(name)
                raise Failed(
                    f"node {self.dirs.name}: {name} exited right after it started; "
                    f"last lines of {log}:\n{launch.tail(log)}"
                )
