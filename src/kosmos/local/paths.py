"""Where the local environment keeps its cache and its state (both outside the repository).

``KOSMOS_CACHE_DIR`` (default ``~/.cache/kosmos``) holds built binaries, keyed by version, so
every checkout and every CI run on the machine reuses them. ``KOSMOS_LOCAL_DIR`` (default
``~/.kosmos/local``) holds one running environment: kubeconfigs, kwokctl work dirs, logs.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("KOSMOS_CACHE_DIR", Path.home() / ".cache" / "kosmos"))


def toolchain_dir() -> Path:
    return cache_dir() / "toolchain"


def bin_dir() -> Path:
    """Symlinks to the current binaries: put this on PATH to use the pinned kubectl."""
    return cache_dir() / "bin"


def local_dir() -> Path:
    return Path(os.environ.get("KOSMOS_LOCAL_DIR", Path.home() / ".kosmos" / "local"))
