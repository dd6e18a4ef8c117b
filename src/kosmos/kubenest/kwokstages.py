"""The lifecycle stages of a tenant's kwok, read from the kwok module kwok was built from.

kwok starts only with Stage objects. Its default stages are files of its Go module
(``kustomize/stage/...``), which the toolchain downloads to build the kwok binary, so they are
read from the module cache rather than copied into this repository: node ``fast`` (Ready at
once) with ``heartbeat-with-lease``, and pod ``general`` — the set kwokctl gives a cluster.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kosmos.kubenest.provider import ProviderError

STAGE_SETS = ("node/fast", "node/heartbeat-with-lease", "pod/general")


def module_cache() -> Path:
    return Path(os.environ.get("GOMODCACHE") or Path.home() / "go" / "pkg" / "mod")


def _version(module: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", module.name.partition("@")[2]))


def kwok_module(cache: Path | None = None) -> Path:
    """The newest kwok module in the cache (the toolchain pins one)."""
    root = (cache or module_cache()) / "sigs.k8s.io"
    found = sorted(root.glob("kwok@v*"), key=_version)
    if not found:
        raise ProviderError(
            f"kwok's stage files are not under {root}/kwok@*: build the toolchain "
            "(`kosmosctl local up` does) or set GOMODCACHE"
        )
    return found[-1]


def documents(cache: Path | None = None) -> bytes:
    """Every Stage of the sets above, as one multi-document YAML."""
    module = kwok_module(cache)
    files = [
        path
        for stage_set in STAGE_SETS
        for path in sorted((module / "kustomize" / "stage" / stage_set).glob("*.yaml"))
        if path.name != "kustomization.yaml"
    ]
    if not files:
        raise ProviderError(f"{module}/kustomize/stage holds none of {', '.join(STAGE_SETS)}")
    return b"\n---\n".join(path.read_bytes().strip() for path in files) + b"\n"
