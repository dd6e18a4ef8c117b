"""Two processes contend for one Lease on the real host apiserver."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for

SCRIPT = Path(__file__).with_name("leader_proc.py")
ROOT = Path(__file__).parents[3]


class Contender:
    def __init__(self, kubeconfig: Path, lease: str, identity: str) -> None:
        self.identity = identity
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(kubeconfig), lease, identity],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def when(self, text: str, timeout: float) -> float:
        """When the contender printed ``text`` (its monotonic clock reading)."""
        want = f"{text} {self.identity}"
        return wait_for(
            lambda: next((at for at, line in self.lines if line == want), None),
            timeout,
            f"{self.identity} to print {text}",
            interval=0.05,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_failover_after_leader_is_killed_and_fast_handover_on_release(local_env: LocalEnv):
    kubeconfig = local_env.kubeconfig(local_env.host)
    lease = f"kosmos-test-{secrets.token_hex(3)}"
    a = Contender(kubeconfig, lease, "a")
    contenders = [a]
    try:
        a.when("LEADING", 30)
        b = Contender(kubeconfig, lease, "b")
        contenders.append(b)
        time.sleep(4)  # b is up and polling as a standby
        assert not any("LEADING" in line for _, line in b.lines), "two leaders at once"

        killed = time.monotonic()
        a.proc.send_signal(signal.SIGKILL)  # no release: b must wait for expiry
        failover = b.when("LEADING", 30) - killed
        assert failover <= 15.0, f"failover took {failover:.1f}s"
        print(f"failover after SIGKILL: {failover:.1f}s")

        c = Contender(kubeconfig, lease, "c")
        contenders.append(c)
        time.sleep(3)
        released = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)  # clean shutdown releases the lease
        b.when("EXITED", 15)
        handover = c.when("LEADING", 15) - released
        assert handover <= 5.0, f"handover after release took {handover:.1f}s"
    finally:
        for contender in contenders:
            contender.stop()
        local_env.kubectl(local_env.host).run(
            "delete", "lease", lease, "-n", "default", "--ignore-not-found"
        )
