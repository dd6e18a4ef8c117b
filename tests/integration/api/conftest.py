"""Kosmos API tests share `kosmos_crds` from tests.fixtures.crds."""

from tests.fixtures.crds import install_crds

__all__ = ["install_crds"]
