from pathlib import Path

import pytest

from kosmos.local import toolchain
from kosmos.local.toolchain import GROUPS, ToolchainError, cache_key, ldflags, required_version


def test_every_group_pins_a_version_in_its_tools_module():
    versions = {g.name: g.version() for g in GROUPS}
    assert versions["k8s"].startswith("v1.36.")
    assert versions["etcd"].startswith("v3.6.")
    assert versions["kwok"].startswith("v0.")


def test_k8s_tools_module_replaces_every_staging_module_at_one_version():
    text = (toolchain.GOTOOLS_DIR / "k8s" / "go.mod").read_text()
    replaces = [line.split() for line in text.splitlines() if "=>" in line]
    assert len(replaces) >= 33
    lib = "v0." + GROUPS[2].version().lstrip("v").split(".", 1)[1]
    assert {r[3] for r in replaces} == {lib}


def test_required_version_reads_single_and_block_forms(tmp_path: Path):
    mod = tmp_path / "go.mod"
    mod.write_text("module x\n\nrequire (\n\tfoo.io/bar v1.2.3\n)\nrequire baz.io/q v0.1.0\n")
    assert required_version(mod, "foo.io/bar") == "v1.2.3"
    assert required_version(mod, "baz.io/q") == "v0.1.0"
    with pytest.raises(ToolchainError, match="does not require"):
        required_version(mod, "nope.io/x")


def test_kubernetes_binaries_are_version_stamped():
    k8s = next(g for g in GROUPS if g.name == "k8s")
    flags = ldflags(k8s, "v1.36.3")
    assert "k8s.io/component-base/version.gitVersion=v1.36.3" in flags
    assert "k8s.io/client-go/pkg/version.gitMinor=36" in flags
    etcd = next(g for g in GROUPS if g.name == "etcd")
    assert ldflags(etcd, "v3.6.16") == "-s -w"


def test_cache_key_names_the_version_and_changes_with_go():
    group = GROUPS[0]
    a = cache_key(group, "go1.26.8")
    assert a.startswith(f"{group.name}-{group.version()}-")
    assert a != cache_key(group, "go1.26.9")
    assert a == cache_key(group, "go1.26.8")
