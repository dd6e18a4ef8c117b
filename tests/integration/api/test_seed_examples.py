"""Every manifest the seed documents show for Kosmos kinds applies unchanged to the CRDs.

The files under seed_examples/ are the documents' YAML, re-indented only (see INDEX.md for
their sources and oddities). kubectl validates strictly: an unknown field fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fixtures.clusters import LocalEnv

EXAMPLES = sorted((Path(__file__).parent / "seed_examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_seed_example_applies_unchanged(local_env: LocalEnv, kosmos_crds, path: Path):
    host = local_env.kubectl(local_env.host)
    for doc in yaml.safe_load_all(path.read_text()):
        namespace = (doc.get("metadata") or {}).get("namespace")
        if namespace and not host.ok("get", "namespace", namespace):
            host.run("create", "namespace", namespace)
    try:
        host.run("apply", "--validate=strict", "-f", str(path))
    finally:
        host.run("delete", "--ignore-not-found", "--wait=false", "-f", str(path))


def test_every_seed_kind_is_covered():
    kinds = {doc["kind"] for p in EXAMPLES for doc in yaml.safe_load_all(p.read_text())}
    assert kinds >= {
        "DistributionPolicy",
        "ClusterDistributionPolicy",
        "PromotePolicy",
        "VirtualCluster",
        "ServiceExport",
        "ServiceImport",
    }
