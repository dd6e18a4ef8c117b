"""Detached processes of a local tenant: start, adopt after an operator restart, stop.

Each runs in its own session (a signal to the operator's process group does not reach it,
and it outlives the operator), with stdout and stderr appended to ``logs/<name>.log`` and
its pid in ``pids/<name>.pid``. A recorded pid counts only while that process is alive and
its command line names the tenant directory, so a pid the kernel reused for something else
is never adopted (nor signalled).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

PROC = Path("/proc")
STOP_GRACE = 10.0


def pid_file(tenant_dir: Path, name: str) -> Path:
    return tenant_dir / "pids" / f"{name}.pid"


def log_file(tenant_dir: Path, name: str) -> Path:
    return tenant_dir / "logs" / f"{name}.log"


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child (else it stays a zombie until we exit)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def owns(pid: int, tenant_dir: Path) -> bool:
    """``pid`` is alive (not a zombie) and its command line names ``tenant_dir``."""
    _reap(pid)
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    needle = str(tenant_dir).rstrip("/").encode() + b"/"
    return needle in cmdline.replace(b"\0", b" ")


def running(tenant_dir: Path, name: str) -> int | None:
    """The live pid of component ``name``, if any."""
    try:
        pid = int(pid_file(tenant_dir, name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if owns(pid, tenant_dir) else None


def start(tenant_dir: Path, name: str, argv: Sequence[str]) -> int:
    """Start ``argv`` detached in ``tenant_dir``; its pid (also written to the pid file)."""
    log = log_file(tenant_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pid_file(tenant_dir, name).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log.open("ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} start\n".encode())
        out.flush()
        child = subprocess.Popen(
            list(argv),
            cwd=tenant_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file(tenant_dir, name).write_text(f"{child.pid}\n")
    return child.pid


def last_words(tenant_dir: Path, name: str, limit: int = 200) -> str:
    """The last line ``name`` logged, when it was started before (it has a pid file) and is
    gone: what a condition message shows about a crash; empty otherwise."""
    if not pid_file(tenant_dir, name).exists():
        return ""
    try:
        with log_file(tenant_dir, name).open("rb") as log:
            log.seek(max(0, log.seek(0, 2) - 4096))
            lines = log.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    last = lines[-1].strip() if lines else ""
    return "" if last.startswith("--- ") else last[-limit:]


def tenant_pids(tenant_dir: Path) -> list[int]:
    """Live pids of every component recorded under ``tenant_dir``."""
    folder = tenant_dir / "pids"
    names = sorted(p.stem for p in folder.glob("*.pid")) if folder.is_dir() else []
    return [pid for name in names if (pid := running(tenant_dir, name)) is not None]


def stop(tenant_dir: Path, pids: Sequence[int], grace: float = STOP_GRACE) -> list[int]:
    """TERM ``pids``, KILL those still there after ``grace`` seconds; the ones that survived
    even that (empty when all are gone)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        left = [pid for pid in pids if owns(pid, tenant_dir)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if owns(pid, tenant_dir)]
        if not left:
            return []
        pids = left
    return list(pids)


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory of ``pids`` together (``VmRSS``), 0 for ones gone."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total
