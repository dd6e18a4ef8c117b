"""Helpers shared by the test tiers."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing; fail in CI, where nothing may be missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing prerequisite in CI: {reason}")
    pytest.skip(reason)
