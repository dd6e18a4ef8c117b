"""The lifecycle stages of a tenant's kwok, read from kwok's own stage files.

kwok starts only with Stage objects. Its default stages are files of its Go module
(``kustomize/stage/<set>/*.yaml``), never copied into this repository. They are found, in
this order, in the directory ``$KOSMOS_KWOK_STAGES`` names, in the Kosmos image
(``/usr/share/kosmos/kwok/stage``, which the image build copies from the module the toolchain
built kwok from: the operator's pod has no module cache), or in the Go module cache of this
machine. The sets are node ``fast`` (Ready at once) with ``heartbeat-with-lease``, and pod
``general`` — what kwokctl gives a cluster.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kosmos.api import names
from kosmos.kubenest.provider import ProviderError

STAGE_SETS = ("node/fast", "node/heartbeat-with-lease", "pod/general")
IMAGE_DIR = Path(names.KWOK_STAGES_DIR)


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
            f"kwok's stage files are not under {root}/kwok@* nor {IMAGE_DIR}: build the "
            f"toolchain (`kosmosctl local up` does), set GOMODCACHE or ${names.ENV_KWOK_STAGES}"
        )
    return found[-1]


def stage_dir(cache: Path | None = None, image_dir: Path = IMAGE_DIR) -> Path:
    """Where the stage sets are: ``$KOSMOS_KWOK_STAGES``, the image's copy, the module's."""
    configured = os.environ.get(names.ENV_KWOK_STAGES)
    if configured:
        return Path(configured)
    if image_dir.is_dir():
        return image_dir
    return kwok_module(cache) / "kustomize" / "stage"


def documents(cache: Path | None = None, image_dir: Path = IMAGE_DIR) -> bytes:
    """Every Stage of the sets above, as one multi-document YAML."""
    root = stage_dir(cache, image_dir)
    files = [
        path
        for stage_set in STAGE_SETS
        for path in sorted((root / stage_set).glob("*.yaml"))
        if path.name != "kustomization.yaml"
    ]
    if not files:
        raise ProviderError(f"{root} holds none of {', '.join(STAGE_SETS)}")
    return b"\n---\n".join(path.read_bytes().strip() for path in files) + b"\n"
