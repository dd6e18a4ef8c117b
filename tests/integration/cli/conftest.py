"""Driving kosmosctl against the real host, and putting the host back as it was.

install/uninstall touch cluster-wide objects (CRDs, ClusterRoles, the root Cluster), so each
module that installs uses its own namespace and, when done, uninstalls and re-applies the
CRDs the session's ``kosmos_crds`` fixture promised to other tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from kosmos.cli.main import cli
from tests.fixtures.clusters import LocalEnv
from tests.integration.api.conftest import install_crds


def kosmosctl(local_env: LocalEnv, *args: str) -> Result:
    """Run kosmosctl in-process against the host, as a user would from a shell."""
    kubeconfig = str(local_env.kubeconfig(local_env.host))
    return CliRunner().invoke(cli, ["--kubeconfig", kubeconfig, *args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result


@pytest.fixture(scope="module")
def restore_host(local_env: LocalEnv) -> Iterator[list[str]]:
    """Namespaces used by the module; at the end uninstall from each and re-apply the CRDs."""
    namespaces: list[str] = []
    yield namespaces
    try:
        for namespace in namespaces:
            ok(kosmosctl(local_env, "uninstall", "-n", namespace, "--force", "--timeout", "60"))
    finally:
        asyncio.run(install_crds(local_env))
