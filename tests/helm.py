"""The real ``helm`` (built by kosmos.local.toolchain) on charts/kosmos, for the chart tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kosmos.local import toolchain
from kosmos.ops.chart import CHART_DIR


@dataclass(frozen=True)
class Helm:
    binary: Path
    #: HELM_CACHE_HOME/CONFIG/DATA: nothing written to the user's own Helm directories
    home: Path

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        variables = {
            **(env or {}),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            # the Kubernetes client's discovery cache (~/.kube/cache) goes here too
            "HOME": str(self.home),
        }
        if "PATH" not in variables:
            variables["PATH"] = "/usr/bin:/bin"
        out = subprocess.run(
            [str(self.binary), *args],
            env=variables,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out

    def template(self, values: dict[str, Any], namespace: str = "kosmos-system") -> list[Any]:
        """The objects ``helm template`` renders with ``values`` (hooks included)."""
        path = self.home / "values.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(values))
        out = self.run("template", "kosmos", str(CHART_DIR), "-n", namespace, "-f", str(path))
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def helm(home: Path) -> Helm:
    """The toolchain's helm (built once into the cache, then reused)."""
    built = toolchain.ensure(lambda _: None, only=("helm",))
    return Helm(built.path("helm"), home)
