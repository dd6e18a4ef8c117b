"""deploy/releases.toml: the releases the upgrade e2e starts from, in order, all older than
the version this checkout builds."""

from __future__ import annotations

import re
import tomllib

from kosmos.local import kosmos_image
from tests.fixtures import releases


def test_every_release_is_older_than_this_checkout_and_names_a_full_commit() -> None:
    body = tomllib.loads(releases.RELEASES.read_text())
    versions = [_version(r["version"]) for r in body["release"]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert versions[-1] < _version(kosmos_image.source_version(releases.ROOT))
    for release in body["release"]:
        assert re.fullmatch(r"[0-9a-f]{40}", release["commit"]), release


def test_the_previous_release_is_the_newest_entry() -> None:
    version, _ = releases.previous()
    body = tomllib.loads(releases.RELEASES.read_text())
    assert version == body["release"][-1]["version"]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
