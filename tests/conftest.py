"""Test tiers, CI strictness and the shared fixtures for real clusters.

Tiers are folders: tests/unit, tests/integration, tests/dataplane, tests/e2e; each item gets
the marker of its folder, so ``-m "not e2e"`` works. With ``CI=true`` a missing prerequisite
fails the test instead of skipping it, any skip fails the run, and ``--require-tiers`` (the
README's test command passes it) fails a run in which a tier collected no test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import IN_CI

TIERS = ("unit", "integration", "dataplane", "e2e")

pytest_plugins = [
    "tests.fixtures.clusters",
    "tests.fixtures.crds",
    "tests.fixtures.tree",
    "tests.fixtures.scheduler",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-tiers",
        action="store_true",
        help="fail when any of unit/integration/dataplane/e2e collects no test",
    )


def tier_of(item: pytest.Item) -> str | None:
    parts = Path(str(item.path)).parts
    if "tests" in parts:
        rest = parts[parts.index("tests") + 1 :]
        if rest and rest[0] in TIERS:
            return rest[0]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    counts = dict.fromkeys(TIERS, 0)
    for item in items:
        tier = tier_of(item)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
            counts[tier] += 1
    config.stash[_COUNTS] = counts
    if config.getoption("--require-tiers"):
        empty = [t for t, n in counts.items() if n == 0]
        if empty:
            raise pytest.UsageError(f"tiers with no collected test: {', '.join(empty)}")


_COUNTS = pytest.StashKey[dict[str, int]]()


def pytest_report_collectionfinish(config: pytest.Config) -> str:
    counts = config.stash.get(_COUNTS, {})
    return "tiers: " + ", ".join(f"{t}={n}" for t, n in counts.items())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a skipped test is a failed promise: turn a green run with skips red."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips are failures in CI")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
