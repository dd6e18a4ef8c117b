"""One isolated local environment for the whole e2e tier, brought up as a user would.

``kosmosctl local up --real-nodes 1 --sample-app`` runs once, as a subprocess of the installed
entry point, with its own ``KOSMOS_LOCAL_DIR`` and port range (17500+), so it never disturbs
the shared environment other tiers use (16400+). With a real node per cluster Kosmos is
installed in-cluster, from our image, as a user installs it. Every e2e file shares it; the
tests that take it down (marked ``env_down``) run last, and the session takes it down in any
case.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kosmos.local.kubectl import Kubectl

KOSMOSCTL = str(Path(sys.executable).parent / "kosmosctl")
#: KOSMOS_E2E_PORT_BASE moves it, so two checkouts can run the e2e tier at once.
PORT_BASE = int(os.environ.get("KOSMOS_E2E_PORT_BASE", "17500"))
UP_ARGS = ("--port-base", str(PORT_BASE), "--real-nodes", "1", "--sample-app")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "env_down: takes the shared e2e environment down (last)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that take the shared environment down run after every other e2e test.

    This hook sees the whole session's items: the environment must go as soon as the e2e
    tier is done, not stay up while other tiers run.
    """
    here = Path(__file__).parent
    down = [i for i in items if i.get_closest_marker("env_down") is not None]
    if not down:
        return
    rest = [i for i in items if i.get_closest_marker("env_down") is None]
    e2e = [n for n, item in enumerate(rest) if Path(str(item.path)).is_relative_to(here)]
    at = e2e[-1] + 1 if e2e else len(rest)
    items[:] = [*rest[:at], *down, *rest[at:]]


def kosmosctl(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [KOSMOSCTL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and out.returncode != 0:
        raise AssertionError(f"kosmosctl {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def exports(stdout: str) -> dict[str, str]:
    """``export NAME=value`` lines of ``local up``/``local env``."""
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in stdout.splitlines()
        if line.startswith("export ")
    )


@dataclass(frozen=True)
class ContextKubectl(Kubectl):
    """Kubectl on one context of a kubeconfig that holds every cluster."""

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        return super().run("--context", self.cluster, *args, stdin=stdin, timeout=timeout)


@dataclass
class E2EEnv:
    env: dict[str, str]
    state: Path
    first_up: subprocess.CompletedProcess[str]
    first_up_seconds: float

    @property
    def kubeconfig(self) -> str:
        return exports(self.first_up.stdout)["KUBECONFIG"]

    @property
    def kubectl_binary(self) -> str:
        return exports(self.first_up.stdout)["PATH"].split(":")[0] + "/kubectl"

    def kosmosctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return kosmosctl(self.env, *args, check=check)

    def kubectl(self, context: str = "host") -> Kubectl:
        """kubectl on one context of the kubeconfig ``local up`` exported."""
        return ContextKubectl(Path(self.kubectl_binary), Path(self.kubeconfig), context)


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EEnv]:
    """``KOSMOS_KEEP_ENV=1`` (with ``KOSMOS_LOCAL_DIR``) reuses and keeps that environment, for
    quick iterations on one test: ``up`` again converges it; the env_down tests still run."""
    keep = os.environ.get("KOSMOS_KEEP_ENV") == "1" and "KOSMOS_LOCAL_DIR" in os.environ
    state = (
        Path(os.environ["KOSMOS_LOCAL_DIR"]) if keep else tmp_path_factory.mktemp("e2e") / "local"
    )
    env = dict(os.environ, KOSMOS_LOCAL_DIR=str(state))
    started = time.monotonic()
    first = kosmosctl(env, "local", "up", *UP_ARGS, check=False)
    seconds = time.monotonic() - started
    try:
        if first.returncode != 0:
            pytest.fail(f"kosmosctl local up failed:\n{first.stdout}\n{first.stderr}")
        yield E2EEnv(env, state, first, seconds)
    finally:
        if not keep:
            kosmosctl(env, "local", "down", check=False)
