import re
import shutil
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


group = toolchain.group


def test_real_node_binaries_are_built_by_the_toolchain():
    k8s = group("k8s")
    assert {"kubelet", "kube-proxy"} <= {b.name for b in k8s.binaries}
    text = (k8s.module_dir / "go.mod").read_text()
    assert "\tk8s.io/kubernetes/cmd/kubelet\n" in text
    assert "\tk8s.io/kubernetes/cmd/kube-proxy\n" in text
    lib = "v0." + k8s.version().lstrip("v").split(".", 1)[1]
    assert f"k8s.io/cri-streaming => k8s.io/cri-streaming {lib}" in text
    assert "k8s.io/cri-streaming " + lib in (k8s.module_dir / "go.sum").read_text()


def test_flannel_group_builds_our_own_main_with_two_backends():
    flannel = group("flannel")
    assert flannel.version().startswith("v0.28.")
    (flanneld,) = flannel.binaries
    assert flanneld.package == "kosmos.local/tools/flannel/cmd/flanneld"
    main = (flannel.module_dir / "cmd" / "flanneld" / "main.go").read_text()
    backends = set(re.findall(r'"github.com/flannel-io/flannel/pkg/backend/(\w+)"', main))
    assert backends == {"vxlan", "hostgw"}
    assert "kosmos.local/tools/flannel" in (flannel.module_dir / "go.mod").read_text()
    assert ldflags(flannel, "v0.28.10").endswith(
        "-X 'github.com/flannel-io/flannel/pkg/version.Version=v0.28.10'"
    )


def test_pause_is_a_c_program_from_the_kubernetes_module():
    pause = group("pause")
    assert pause.version() == toolchain.PAUSE_VERSION == "3.10.2"
    assert pause.module_dir == group("k8s").module_dir
    assert pause.binaries[0].package == "build/pause/linux/pause.c"
    assert pause.binaries[0].version_args == ("-v",)
    assert "-static" in toolchain.CFLAGS


def test_bin_dir_links_every_binary_a_real_node_runs():
    names = {b.name for g in GROUPS for b in g.binaries}
    assert {"kubelet", "kube-proxy", "flanneld", "pause", "kube-apiserver", "etcd"} <= names
    assert len(names) == sum(len(g.binaries) for g in GROUPS)  # no name built twice


def test_cache_key_covers_every_file_of_the_tools_module(tmp_path: Path, monkeypatch):
    shutil.copytree(toolchain.GOTOOLS_DIR / "flannel", tmp_path / "flannel")
    monkeypatch.setattr(toolchain, "GOTOOLS_DIR", tmp_path)
    flannel = group("flannel")
    before = cache_key(flannel, "go1.26.8")
    main = tmp_path / "flannel" / "cmd" / "flanneld" / "main.go"
    main.write_text(main.read_text() + "\n// changed\n")
    assert cache_key(flannel, "go1.26.8") != before


def test_pause_cache_key_follows_the_c_compiler():
    pause = group("pause")
    assert cache_key(pause, "gcc12.2.0") != cache_key(pause, "gcc12.3.0")
    assert cache_key(pause, "gcc12.2.0").startswith("pause-3.10.2-")


def test_unknown_groups_are_refused():
    with pytest.raises(ToolchainError, match="unknown toolchain groups: nope"):
        toolchain.ensure(lambda _: None, only=["nope"])
    with pytest.raises(ToolchainError, match="unknown toolchain group nope: choose from kwok"):
        toolchain.group("nope")


def test_metrics_server_is_upstreams_main_stamped_like_upstreams_makefile():
    metrics = group("metrics-server")
    assert metrics.version() == "v0.8.0"
    (binary,) = metrics.binaries
    assert binary.package == "sigs.k8s.io/metrics-server/cmd/metrics-server"
    text = (metrics.module_dir / "go.mod").read_text()
    assert "tool sigs.k8s.io/metrics-server/cmd/metrics-server\n" in text
    assert ldflags(metrics, "v0.8.0").endswith(
        "-X 'k8s.io/client-go/pkg/version.gitVersion=v0.8.0'"
    )
