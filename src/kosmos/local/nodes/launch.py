"""Start, find and stop the processes of a real node.

A node process starts as ``sh -c 'echo $$ > <system cgroup>/cgroup.procs ...; exec nsenter
--mount=<pin> --net=<netns> -- <command>'``: it is in the node's cgroups before it runs a
single instruction of its own (so whatever it forks is too), then joins the node's
namespaces, then becomes the command; the pid we record is the command's. It runs in a new
session (detached from ``up``), its output appended to ``logs/<name>.log``.

Alive means: the pid in the pid file exists, is not a zombie (after ``kill -9`` a process can
stay a zombie for a while when its reaper is slow) and still runs the command we started
(pid reuse). That is all ``up`` needs to restart exactly what died.

Every start is recorded (``etc/commands/<name>.json``: the wrapper's full argv, the command
inside it and its extra environment), so the node-agent can start kubelet, kube-proxy and
flanneld again exactly as ``up`` did, without knowing the toolchain or the cgroup layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kosmos.local import procs
from kosmos.local.nodes.layout import NodeDirs, put


@dataclass(frozen=True)
class Command:
    """One node process: ``name`` (its pid and log file), argv, extra environment."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def binary(self) -> str:
        return Path(self.argv[0]).name


def wrapper(command: Command, procs_files: Sequence[Path], enter: Sequence[str]) -> list[str]:
    """The full argv that places the process in its cgroups and namespaces (pure)."""
    files = " ".join(shlex.quote(str(f)) for f in procs_files)
    script = f'for f in {files}; do echo $$ > "$f"; done; exec "$@"'
    return ["sh", "-c", script, "sh", *enter, *command.argv]


def pid_of(dirs: NodeDirs, command: Command) -> int | None:
    """The running process of ``command``, if it is alive (see the module docstring)."""
    try:
        pid = int(dirs.pid_file(command.name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if running_as(pid, command, f"{dirs.base}/") else None


def running_as(pid: int, command: Command, marker: str) -> bool:
    """``pid`` runs ``command``'s binary with an argument under ``marker`` (the node's
    directory, where every node process's configuration lives): a stranger that got the
    pid after ours died does not pass."""
    entry = procs.PROC / str(pid)
    try:
        state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        argv = (entry / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    if state in ("Z", "X") or not argv or not argv[0]:
        return False
    return Path(argv[0].decode(errors="replace")).name == command.binary and any(
        marker in a.decode(errors="replace") for a in argv[1:]
    )


@dataclass(frozen=True)
class Recorded:
    """How ``up`` last started a node process: ``argv`` is the full wrapper argv,
    ``command`` the command inside it (its name, argv and extra environment)."""

    command: Command
    argv: tuple[str, ...]


def record(dirs: NodeDirs, command: Command, argv: Sequence[str]) -> None:
    body = {"argv": list(argv), "env": command.env, "command": list(command.argv)}
    put(dirs.commands / f"{command.name}.json", json.dumps(body, indent=2) + "\n", 0o644)


def recorded(dirs: NodeDirs, name: str) -> Recorded | None:
    """The record of process ``name``; None when there is none (or it cannot be read)."""
    try:
        body = json.loads((dirs.commands / f"{name}.json").read_text())
        command = Command(name, tuple(map(str, body["command"])), dict(body.get("env") or {}))
        return Recorded(command, tuple(map(str, body["argv"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start(
    dirs: NodeDirs, command: Command, procs_files: Sequence[Path], enter: Sequence[str]
) -> int:
    """Start ``command`` unless it runs; returns its pid. Either way the start is recorded."""
    argv = wrapper(command, procs_files, enter)
    record(dirs, command, argv)
    pid = pid_of(dirs, command)
    if pid:
        return pid
    return spawn(dirs, command, argv)


def spawn(dirs: NodeDirs, command: Command, argv: Sequence[str]) -> int:
    """Run ``argv`` (the wrapper of ``command``) detached, log appended; record its pid."""
    dirs.logs.mkdir(parents=True, exist_ok=True)
    with dirs.log(command.name).open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **command.env},
        )
    dirs.pids.mkdir(parents=True, exist_ok=True)
    dirs.pid_file(command.name).write_text(str(process.pid))
    return process.pid


def stop(pid: int, timeout: float = 10) -> bool:
    """SIGKILL ``pid`` and wait until it is gone; False if it is still there."""
    kill({pid})
    deadline = time.monotonic() + timeout
    while not exited(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def exited(pid: int) -> bool:
    """The process is gone or a zombie (our own child is reaped here)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
    return not procs.alive(pid)


def kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def output(argv: Sequence[str], timeout: float = 120) -> str:
    """Run a short command (ctr, kubectl-like tools); its stdout, or RuntimeError with stderr."""
    try:
        out = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"`{' '.join(argv[:3])} ...`: {exc}") from exc
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def quiet_ok(argv: Sequence[str], timeout: float = 10) -> bool:
    try:
        output(argv, timeout)
    except RuntimeError:
        return False
    return True
