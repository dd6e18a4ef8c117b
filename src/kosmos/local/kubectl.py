"""Run the pinned kubectl against one local cluster.

The local environment sets itself up with the same tool a user would (nodes, waits, health).
Kosmos components never shell out to kubectl: they use :mod:`kosmos.kube`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message names the cluster and carries stderr."""


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path
    cluster: str

    def run(self, *args: str, stdin: str | None = None, timeout: float = 180) -> str:
        argv = [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]
        try:
            out = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise KubectlError(
                f"cluster {self.cluster}: `kubectl {' '.join(args)}` timed out"
            ) from exc
        if out.returncode != 0:
            raise KubectlError(
                f"cluster {self.cluster}: `kubectl {' '.join(args)}` failed: {out.stderr.strip()}"
            )
        return out.stdout

    def ok(self, *args: str, timeout: float = 10) -> bool:
        try:
            self.run(*args, timeout=timeout)
        except KubectlError:
            return False
        return True
