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
from dataclasses import dataclass
from pathlib import Path

from kosmos.local import paths, procs


@dataclass(frozen=True)
class Ports:
    kubelet: int
    health: int

    @classmethod
    def for_base(cls, port_base: int) -> Ports:
        """Above the clusters' ports (base + 10 * i): base + 90 and + 91."""
        return cls(kubelet=port_base + 90, health=port_base + 91)


def directory() -> Path:
    return paths.local_dir() / "components"


def pid_file(name: str) -> Path:
    return directory() / f"{name}.pid"


def log_file(name: str) -> Path:
    return directory() / f"{name}.log"


def running(name: str) -> int | None:
    """The pid of the component if it is alive."""
    try:
        pid = int(pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def cluster_manager_command(kubeconfig: Path, ports: Ports, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kosmos.launcher",
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
