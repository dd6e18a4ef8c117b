"""Every kind Kosmos serves, and the CRD manifests generated from their models.

``python -m kosmos.api.crds [DIR]`` writes one YAML per CRD (default ``deploy/crds``); a unit
test fails when the committed files differ from what the models generate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from kosmos.api.cluster import Cluster
from kosmos.api.kubenest import GlobalNode, VirtualCluster
from kosmos.api.mcs import ServiceExport, ServiceImport
from kosmos.api.migration import PromotePolicy
from kosmos.api.network import ClusterNode, NodeConfig
from kosmos.api.policy import (
    ClusterDistributionPolicy,
    ClusterPodConvertPolicy,
    DistributionPolicy,
    PodConvertPolicy,
)
from kosmos.api.schema import crd, kind_info

KINDS: tuple[type[Any], ...] = (
    Cluster,
    ClusterNode,
    NodeConfig,
    ServiceExport,
    ServiceImport,
    DistributionPolicy,
    ClusterDistributionPolicy,
    PodConvertPolicy,
    ClusterPodConvertPolicy,
    VirtualCluster,
    GlobalNode,
    PromotePolicy,
)


def crd_manifests() -> list[dict[str, Any]]:
    return [crd(k) for k in KINDS]


def file_name(manifest: dict[str, Any]) -> str:
    spec = manifest["spec"]
    return f"{spec['group']}_{spec['names']['plural']}.yaml"


def render(manifest: dict[str, Any]) -> str:
    header = "# Generated from the models in src/kosmos/api by `python -m kosmos.api.crds`.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=100)


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in crd_manifests():
        path = directory / file_name(manifest)
        path.write_text(render(manifest))
        written.append(path)
    return written


def kind_by_name(name: str) -> type[Any]:
    """Find a kind by kind name, plural, singular or short name (case-insensitive)."""
    wanted = name.lower()
    for k in KINDS:
        info = kind_info(k)
        aliases = {info.kind.lower(), info.plural, info.singular, *info.short_names}
        if wanted in aliases:
            return k
    raise KeyError(name)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("deploy/crds")
    for path in write(target):
        print(path)
