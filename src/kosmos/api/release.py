"""The release this code belongs to, as Kosmos names it: ``v`` + the package's version.

Images are tagged with it and kosmosctl installs and reports it, so the local image builder
and the install manifests must derive it the same way: from here.
"""

from __future__ import annotations

import importlib.metadata


def installed_tag() -> str | None:
    """``v`` + the installed package's version; None when running from a bare source tree."""
    try:
        return "v" + importlib.metadata.version("kosmos")
    except importlib.metadata.PackageNotFoundError:
        return None
