"""Kosmos components as local processes next to the local clusters (no images, no kubelet).

In the local environment the host's nodes are simulated, so a component cannot run as a pod;
it runs here as ``python -m kosmos.launcher <component>`` against the host kubeconfig, with
its pid and log under ``$KOSMOS_LOCAL_DIR/components``. The host apiserver reaches the
cluster-manager's kubelet endpoint on ``leaf_address`` (never 127.0.0.1: the apiserver's
node proxy refuses loopback node addresses), which is what leaf nodes advertise.
kosmos-scheduler is a real kube-scheduler from the toolchain; its configuration file and
the extender's certificate live in the same directory.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kosmos.local import paths, procs
from kosmos.local.nodes import network
from kosmos.local.nodes.plan import network as network_plan
from kosmos.local.topology import HOST_PORT_OFFSETS, ClusterPlan

#: The module every component process runs (``python -m kosmos.launcher <component>``).
LAUNCHER = "kosmos.launcher"


#: first free offset in a member's block of ten (its components use 0..5)
MEMBER_SPARE_OFFSET = 6


@dataclass(frozen=True)
class Ports:
    kubelet: int
    health: int
    network_health: int = 0

    @classmethod
    def for_base(cls, port_base: int) -> Ports:
        """The components' ports for an environment whose host apiserver is ``port_base``.

        The cluster-manager's are the host's spare offsets 6 and 7 (8 and 9 are the
        scheduler's); the network-manager's health port is the first member's spare offset 6.
        Both stay inside the range ``Options.validate`` checked and never meet a cluster's
        own ports.
        """
        return cls(
            kubelet=port_base + HOST_PORT_OFFSETS["cluster-manager-kubelet"],
            health=port_base + HOST_PORT_OFFSETS["cluster-manager-health"],
            # the host's block is full (the scheduler's ports took 8 and 9): the first
            # member's block has spare offsets from 6 on, and a local environment always
            # has a member
            network_health=port_base + 10 + MEMBER_SPARE_OFFSET,
        )


@dataclass(frozen=True)
class SchedulerPorts:
    extender: int
    scheduler: int

    @classmethod
    def for_base(cls, port_base: int) -> SchedulerPorts:
        """The host's last spare ports: base + 8 (extender HTTPS), base + 9 (kube-scheduler)."""
        return cls(
            extender=port_base + HOST_PORT_OFFSETS["scheduler-extender"],
            scheduler=port_base + HOST_PORT_OFFSETS["kosmos-scheduler"],
        )


def directory() -> Path:
    return paths.local_dir() / "components"


def pid_file(name: str) -> Path:
    return directory() / f"{name}.pid"


def log_file(name: str) -> Path:
    return directory() / f"{name}.log"


def ours(argv: list[str]) -> bool:
    """A process of this environment: the Kosmos launcher, or a toolchain binary whose
    arguments name a file of this environment (kube-scheduler's ``--config``)."""
    if LAUNCHER in argv:
        return True
    local = str(paths.local_dir()).rstrip("/") + "/"
    return (
        bool(argv)
        and argv[0].startswith(str(paths.cache_dir()))
        and any(local in arg for arg in argv[1:])
    )


def running(name: str) -> int | None:
    """The pid of the component if it is alive.

    A pid file can outlive its process (a crash, a reboot) and the pid be reused by an
    unrelated program: only a process of ours (``ours``) counts, so nothing else is ever
    signalled by ``stop``.
    """
    try:
        pid = int(pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    if not ours(cmdline(pid)):
        return None
    return pid


def _launch(component: str, kubeconfig: Path, *flags: str) -> list[str]:
    """``python -m kosmos.launcher <component> --kubeconfig <kubeconfig> <flags>``."""
    return [sys.executable, "-m", LAUNCHER, component, "--kubeconfig", str(kubeconfig), *flags]


def _primary_address() -> str | None:
    """The machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.255", 9))  # TEST-NET-1: only the route lookup matters
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def leaf_address(host: ClusterPlan) -> str:
    """Where the local cluster-manager's kubelet endpoint listens, advertised on leaf nodes.

    Not loopback: the apiserver's node proxy (``kubectl get --raw /api/v1/nodes/<leaf>/proxy/
    pods``, metrics-server) refuses it. With real nodes, the host cluster network's address
    (a veth of this environment alone); in a kwok-only environment, the machine's own
    address; 127.0.0.1 only on a machine without any (then logs/exec/port-forward still
    work, the node proxy does not).
    """
    net = network_plan(host)
    if any(known.netns == net.netns for known in network.recorded()):
        return net.host_address
    return _primary_address() or "127.0.0.1"


def cluster_manager_command(
    kubeconfig: Path, ports: Ports, *extra: str, address: str = "127.0.0.1"
) -> list[str]:
    """The local cluster-manager; ``address`` is its kubelet endpoint's (``leaf_address``)."""
    return _launch(
        "cluster-manager",
        kubeconfig,
        "--listen-port",
        str(ports.kubelet),
        "--health-port",
        str(ports.health),
        "--node-address",
        address,
        "--kubelet-bind-address",
        address,
        "--bind-address",
        "127.0.0.1",
        "--leader-elect",
        *extra,
    )


def network_manager_command(kubeconfig: Path, ports: Ports, *extra: str) -> list[str]:
    return _launch(
        "network-manager",
        kubeconfig,
        "--health-port",
        str(ports.network_health),
        "--bind-address",
        "127.0.0.1",
        "--leader-elect",
        *extra,
    )


def extender_command(kubeconfig: Path, ports: SchedulerPorts, *extra: str) -> list[str]:
    """``kosmos scheduler-extender`` on loopback, certificate in ``extender_cert_dir()``."""
    return _launch(
        "scheduler-extender",
        kubeconfig,
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        str(ports.extender),
        "--cert-dir",
        str(extender_cert_dir()),
        "--leader-elect",
        *extra,
    )


def extender_cert_dir() -> Path:
    return directory() / "scheduler-extender-tls"


def scheduler_config_file() -> Path:
    return directory() / "kosmos-scheduler.yaml"


def start(name: str, command: list[str], *, health_port: int, timeout: float = 30.0) -> int:
    """Start the component in the background (idempotent) and wait for its /healthz."""
    pid = running(name)
    if pid:
        return pid
    directory().mkdir(parents=True, exist_ok=True)
    with log_file(name).open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    pid_file(name).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_file(name)}")
        if health_port in procs.listening_ports([process.pid]):
            return process.pid
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not serve /healthz on :{health_port} in {timeout:.0f}s")


def stop(name: str, *, grace: float = 10.0) -> None:
    pid = running(name)
    if pid:
        procs.terminate([pid], grace)
    pid_file(name).unlink(missing_ok=True)


def kill(name: str) -> None:
    """SIGKILL, as a crash would (tests of crash consistency)."""
    pid = running(name)
    if pid:
        os.kill(pid, signal.SIGKILL)
        procs.wait_exit([pid], 5.0)
    pid_file(name).unlink(missing_ok=True)


def names() -> list[str]:
    """Components with a pid file (running or left behind by a crash)."""
    if not directory().exists():
        return []
    return sorted(path.stem for path in directory().glob("*.pid"))


def stop_all(grace: float = 10.0) -> list[str]:
    """Stop every component (``down`` does this before the clusters go); returns their names."""
    stopped = names()
    for name in stopped:
        stop(name, grace=grace)
    return stopped


def cmdline(pid: int) -> list[str]:
    """The process's argv ([] if it is gone)."""
    try:
        raw = (procs.PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of ``--flag value`` or ``--flag=value`` in ``argv``."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


#: Ports whose command-line flag says where a component serves /healthz.
HEALTH_FLAGS = ("--health-port", "--secure-port")


def loopback_tls() -> ssl.SSLContext:
    """TLS for our own components' endpoints on 127.0.0.1, certificate not checked.

    HTTPS endpoints (kube-scheduler, the extender) have self-signed certificates on
    loopback; what is read through this (health, metrics) is a probe, not a trust decision.
    """
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    return insecure


def healthy(port: int, timeout: float = 2.0) -> bool:
    """``/healthz`` on 127.0.0.1:``port`` answers 200, over HTTP or HTTPS (``loopback_tls``)."""
    for url, context in (
        (f"http://127.0.0.1:{port}/healthz", None),
        (f"https://127.0.0.1:{port}/healthz", loopback_tls()),
    ):
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
                if r.status == 200:
                    return True
        except (OSError, ValueError):
            continue
    return False


def health_port(argv: list[str]) -> int | None:
    for flag in HEALTH_FLAGS:
        text = flag_value(argv, flag)
        if text and text.isdigit():
            return int(text)
    return None


@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    health_port: int | None
    healthy: bool
    rss_mib: float


def status() -> list[ComponentStatus]:
    """Every component with a pid file: its pid, health port (from its command line), RSS."""
    result = []
    for name in names():
        pid = running(name)
        port = health_port(cmdline(pid)) if pid else None
        result.append(
            ComponentStatus(
                name=name,
                pid=pid,
                health_port=port,
                healthy=bool(pid and port and healthy(port)),
                rss_mib=procs.rss_bytes([pid]) / 2**20 if pid else 0.0,
            )
        )
    return result
