from collections.abc import Iterator

import pytest

from tests.fixtures.clusters import LocalEnv
from tests.fixtures.link import LinkEnv, linked


@pytest.fixture(scope="package")
def link(local_env: LocalEnv) -> Iterator[LinkEnv]:
    """The network-manager with both members linked, for this package only."""
    yield from linked(local_env)
