"""Kosmos components as local processes next to the local clusters (no images, no kubelet).

In the local environment the host's nodes are simulated, so a component cannot run as a pod;
it runs here as ``python -m kosmos.launcher <component>`` against the host kubeconfig, with
its pid and log under ``$KOSMOS_LOCAL_DIR/components``. The host apiserver reaches the
cluster-manager's kubelet endpoint on 127.0.0.1, which is what leaf nodes advertise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kosmos.local import paths, procs
from kosmos.local.topology import HOST_PORT_OFFSETS

#: The module every component process runs (``python -m kosmos.launcher <component>``).
LAUNCHER = "kosmos.launcher"


@dataclass(frozen=True)
class Ports:
    kubelet: int
    health: int
    network_health: int = 0

    @classmethod
    def for_base(cls, port_base: int) -> Ports:
        """The host's spare ports (its apiserver port is ``port_base``): base + 6, 7 and 8.

        Inside the host's block of ten, so they never meet a member's ports (base + 10 * i)
        and stay inside the range ``Options.validate`` checked.
        """
        return cls(
            kubelet=port_base + HOST_PORT_OFFSETS["cluster-manager-kubelet"],
            health=port_base + HOST_PORT_OFFSETS["cluster-manager-health"],
            network_health=port_base + HOST_PORT_OFFSETS["network-manager-health"],
        )


def directory() -> Path:
    return paths.local_dir() / "components"


def pid_file(name: str) -> Path:
    return directory() / f"{name}.pid"


def log_file(name: str) -> Path:
    return directory() / f"{name}.log"


def running(name: str) -> int | None:
    """The pid of the component if it is alive.

    A pid file can outlive its process (a crash, a reboot) and the pid be reused by an
    unrelated program: only a process running the Kosmos launcher counts, so nothing else is
    ever signalled by ``stop``.
    """
    try:
        pid = int(pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    if LAUNCHER not in cmdline(pid):
        return None
    return pid


def cluster_manager_command(kubeconfig: Path, ports: Ports, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        LAUNCHER,
        "cluster-manager",
        "--kubeconfig",
        str(kubeconfig),
        "--listen-port",
        str(ports.kubelet),
        "--health-port",
        str(ports.health),
        "--node-address",
        "127.0.0.1",
        "--bind-address",
        "127.0.0.1",
        "--leader-elect",
        *extra,
    ]


def network_manager_command(kubeconfig: Path, ports: Ports, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        LAUNCHER,
        "network-manager",
        "--kubeconfig",
        str(kubeconfig),
        "--health-port",
        str(ports.network_health),
        "--bind-address",
        "127.0.0.1",
        "--leader-elect",
        *extra,
    ]


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


def healthy(port: int, timeout: float = 2.0) -> bool:
    """``/healthz`` on 127.0.0.1:``port`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


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
        port_text = flag_value(cmdline(pid), "--health-port") if pid else None
        port = int(port_text) if port_text and port_text.isdigit() else None
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
