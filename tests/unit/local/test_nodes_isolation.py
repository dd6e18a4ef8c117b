from pathlib import Path

import pytest

from kosmos.local.nodes import isolation
from kosmos.local.nodes.layout import NodeDirs

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 0:40 / /run/netns/x rw - nsfs nsfs rw
"""
UNIFIED = "30 23 0:27 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_mountinfo_is_parsed_with_or_without_optional_fields():
    found = isolation.mounts(HYBRID)
    assert found[3] == isolation.Mount("/sys/fs/cgroup/systemd", "cgroup", "rw,name=systemd")
    assert found[-1].fstype == "nsfs"


def test_cgroup_hierarchies_of_a_hybrid_and_a_unified_host():
    hybrid = isolation.cgroup_mounts(isolation.mounts(HYBRID))
    assert [m.target.rsplit("/", 1)[1] for m in hybrid] == ["cpu", "cpuset", "systemd", "unified"]
    assert [m.fstype for m in isolation.process_hierarchies(hybrid)] == ["cgroup"] * 3
    unified = isolation.cgroup_mounts(isolation.mounts(UNIFIED))
    assert isolation.unified_only(unified)
    assert isolation.process_hierarchies(unified) == unified


def test_setup_script_replays_the_hosts_cgroups_and_binds_the_nodes_directories(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    dirs = NodeDirs("cluster1-real1")
    script = isolation.setup_script(dirs, isolation.cgroup_mounts(isolation.mounts(HYBRID)))
    lines = script.splitlines()
    assert lines[0] == "set -e"
    assert "nsfs" in lines[1] and "umount -l" in lines[1]  # other namespaces' pins dropped first
    assert "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup" in lines
    assert "mount -t cgroup -o cpuset cgroup /sys/fs/cgroup/cpuset" in lines
    assert "mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd" in lines
    assert "mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified" in lines
    for target, source in (("/run", "run"), ("/var/lib", "lib"), ("/var/log", "log")):
        assert f"mount --bind {dirs.base / source} {target}" in lines
    assert any(line.endswith("/proc/sys/vm/overcommit_memory") for line in lines)
    unified = isolation.setup_script(dirs, isolation.cgroup_mounts(isolation.mounts(UNIFIED)))
    assert "mount -t cgroup2 cgroup2 /sys/fs/cgroup" in unified.splitlines()


@pytest.fixture
def fake_hierarchies(tmp_path):
    """Two plain directories standing in for cgroup hierarchies (mkdir/rmdir work alike)."""
    cpu, unified = tmp_path / "cpu", tmp_path / "unified"
    cpu.mkdir()
    unified.mkdir()
    return [
        isolation.Mount(str(cpu), "cgroup", "rw,cpu"),
        isolation.Mount(str(unified), "cgroup2", "rw"),
    ]


def test_cgroups_are_made_where_processes_go_and_removed_everywhere(fake_hierarchies):
    cpu, unified = (Path(m.target) for m in fake_hierarchies)
    isolation.ensure_cgroups("env/n1", fake_hierarchies)
    assert (cpu / "env/n1/system").is_dir() and (cpu / "env/n1/pods").is_dir()
    assert not (unified / "env").exists(), "a hybrid host's cgroup2 mount gets no processes"
    (unified / "env/n1/pods/runc-made").mkdir(parents=True)  # what runc leaves there
    assert isolation.procs_files("env/n1", fake_hierarchies) == [cpu / "env/n1/system/cgroup.procs"]
    assert isolation.remove_cgroups("env/n1", fake_hierarchies) == []
    assert not (cpu / "env/n1").exists() and not (unified / "env/n1").exists()
    isolation.remove_if_empty("env", fake_hierarchies)
    assert not (cpu / "env").exists()
