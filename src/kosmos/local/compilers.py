"""Run the compilers the toolchain builds with (Go, gcc) and report their steps.

Split from :mod:`kosmos.local.toolchain`, which says *what* is built: this module finds the
compilers, gives every Go command the same environment (never download a toolchain, never
modify go.mod) and runs a step with a heartbeat, its log and its peak memory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

MIN_GO = (1, 26)
HEARTBEAT_SECONDS = 15.0

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A build step failed; the message names the step, the cause and how to retry."""


def go_binary() -> tuple[str, str]:
    """Locate ``go`` and check it is new enough; return its path and ``GOVERSION``."""
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise ToolchainError(
            "step 'find go' failed: no `go` on PATH. Install Go >= 1.26 (the pinned Kubernetes "
            "release is built with it) and retry `kosmosctl local toolchain`."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    version = out.stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", version)
    if not match or (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise ToolchainError(
            f"step 'find go' failed: {go} is {version or 'unknown'}, need "
            f"go{MIN_GO[0]}.{MIN_GO[1]} or newer."
        )
    return go, version


def go_env(go: str) -> dict[str, str]:
    """Environment for every Go step: never download a toolchain, never modify go.mod."""
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-modcacherw -buildvcs=false -mod=readonly",
        PATH=f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def gcc_binary() -> tuple[str, str]:
    """Locate gcc and a static libc; return gcc's path and full version."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ToolchainError(
            "step 'find gcc' failed: no `gcc` on PATH (the pause binary is C): "
            "apt-get install gcc libc6-dev (scripts/bootstrap installs them)."
        )
    libc = subprocess.run(
        [gcc, "-print-file-name=libc.a"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not Path(libc).is_absolute():
        raise ToolchainError(
            "step 'find gcc' failed: no static libc (libc.a) for `gcc -static`: "
            "apt-get install libc6-dev (scripts/bootstrap installs it)."
        )
    out = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True, check=False)
    return gcc, f"gcc{out.stdout.strip()}"


def module_source(go: str, module_dir: Path, module: str) -> Path:
    """The module cache directory of ``module`` at the version ``module_dir`` pins."""
    out = subprocess.run(
        [go, "mod", "download", "-json", module],
        cwd=module_dir,
        env=go_env(go),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise ToolchainError(
            f"step 'download {module}' failed in {module_dir}: {(out.stdout + out.stderr)[-400:]}"
        )
    return Path(json.loads(out.stdout)["Dir"])


def run_step(
    step: str,
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: TextIO,
    progress: Progress,
) -> float:
    """Run one Go command, streaming output to the log and a heartbeat to ``progress``.

    Returns the peak RSS in MiB of the command and its children (compilers, linker).
    """
    progress(f"{step} ...")
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            latest = lines[-1] if lines else "starting"
            progress(
                f"  {step}: {time.monotonic() - started:.0f}s, {len(lines)} packages, "
                f"latest {latest}"
            )

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    for line in proc.stdout:
        lines.append(line.rstrip())
        log.write(line)
    # wait4 reports the largest RSS among the command and the children it waited for.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    stop.set()
    if code != 0:
        tail = "\n".join(f"    {line}" for line in lines[-15:])
        raise ToolchainError(
            f"step '{step}' failed (exit {code}) in {cwd}.\n{tail}\n"
            f"Full log: {log.name}\n"
            "Retry with `kosmosctl local toolchain`: downloaded modules and compiled packages "
            "are reused. Check `go env GOPROXY GOSUMDB` if the failure is a download."
        )
    return usage.ru_maxrss / 1024
