"""The MCS controllers run inside the tree fixture's ``kosmos cluster-manager``; this module's
fixture restarts it once with ``--auto-mcs-prefix`` (namespaces of prefix tests match it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.tree import TreeEnv

#: the namespace fixture names namespaces ``t-<test name>-<hex>``: tests named
#: ``test_prefix_*`` get namespaces this prefix matches
PREFIX = "t-test-prefix"


@pytest.fixture(scope="session")
def mcs(tree: TreeEnv) -> Iterator[TreeEnv]:
    tree.stop()
    tree.start("--auto-mcs-prefix", PREFIX)
    yield tree
    tree.stop()
    tree.start()
