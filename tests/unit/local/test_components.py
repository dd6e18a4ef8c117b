"""Component processes: their ports, pid files and status, without a cluster."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kosmos.local import components
from kosmos.local.topology import Options, plan


@pytest.fixture(autouse=True)
def local_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path / "local"))
    return tmp_path / "local"


def test_ports_are_the_hosts_planned_component_ports():
    host = plan(Options(port_base=17500))[0]
    ports = components.Ports.for_base(host.apiserver_port)
    assert ports == components.Ports(kubelet=17506, health=17507, network_health=17516)
    assert ports.kubelet == host.ports["cluster-manager-kubelet"]
    assert ports.health == host.ports["cluster-manager-health"]
    member = plan(Options(port_base=17500))[1]
    assert ports.network_health not in member.ports.values()  # a spare port of the member's block
    assert member.apiserver_port < ports.network_health < member.apiserver_port + 10


def test_cluster_manager_command_names_the_kubeconfig_and_ports(tmp_path):
    command = components.cluster_manager_command(
        tmp_path / "kc", components.Ports.for_base(17500), "--heartbeat", "2"
    )
    assert command[1:4] == ["-m", "kosmos.launcher", "cluster-manager"]
    assert components.flag_value(command, "--kubeconfig") == str(tmp_path / "kc")
    assert components.flag_value(command, "--health-port") == "17507"
    assert components.flag_value(command, "--listen-port") == "17506"
    assert command[-2:] == ["--heartbeat", "2"]


def test_network_manager_command_uses_its_own_health_port(tmp_path):
    command = components.network_manager_command(
        tmp_path / "kc", components.Ports.for_base(17500), "-v"
    )
    assert command[1:4] == ["-m", "kosmos.launcher", "network-manager"]
    assert components.flag_value(command, "--kubeconfig") == str(tmp_path / "kc")
    assert components.flag_value(command, "--health-port") == "17516"
    assert "--leader-elect" in command
    assert command[-1] == "-v"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["x", "--health-port", "8080"], "8080"),
        (["x", "--health-port=9090"], "9090"),
        (["x", "--health-port"], None),
        (["x", "--health-portal", "1"], None),
    ],
)
def test_flag_value(argv, expected):
    assert components.flag_value(argv, "--health-port") == expected


def test_a_pid_file_of_a_dead_process_shows_unhealthy_and_stop_all_clears_it(local_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    components.directory().mkdir(parents=True)
    components.pid_file("cluster-manager").write_text(str(dead.pid))
    (status,) = components.status()
    assert (status.name, status.pid, status.healthy) == ("cluster-manager", None, False)
    assert components.stop_all() == ["cluster-manager"]
    assert components.names() == [] and components.status() == []


def test_a_recycled_pid_of_another_program_is_not_the_component_and_is_never_signalled(
    local_dir,
):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        components.directory().mkdir(parents=True)
        components.pid_file("cluster-manager").write_text(str(other.pid))
        assert components.running("cluster-manager") is None
        components.stop("cluster-manager", grace=1)
        assert other.poll() is None, "stop must not touch a process that is not ours"
        assert components.names() == []
    finally:
        other.kill()
        other.wait()


def test_status_reads_the_health_port_from_the_running_command_line(local_dir):
    # A stand-in whose command line looks like a launched component.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(30)",
            "kosmos.launcher",
            "--health-port",
            "1",
        ]
    )
    try:
        # /proc/<pid>/cmdline reads empty for a moment after exec (seen in 2 of 3 tries)
        deadline = time.monotonic() + 5
        while not components.cmdline(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        components.directory().mkdir(parents=True)
        components.pid_file("cluster-manager").write_text(str(child.pid))
        (status,) = components.status()
        assert status.pid == child.pid and status.health_port == 1
        assert not status.healthy  # nothing serves /healthz on port 1
        assert status.rss_mib > 0
        components.stop("cluster-manager", grace=5)
        assert child.wait(timeout=5) is not None
    finally:
        child.kill()
        child.wait()


def test_scheduler_ports_are_the_hosts_last_spare_ports():
    host = plan(Options(port_base=17500))[0]
    ports = components.SchedulerPorts.for_base(host.apiserver_port)
    assert ports == components.SchedulerPorts(extender=17508, scheduler=17509)
    assert ports.extender == host.ports["scheduler-extender"]
    assert max(host.ports.values()) == 17509  # still inside the host's block of ten


def test_extender_command_serves_https_on_loopback_with_its_certificate(local_dir):
    command = components.extender_command(
        local_dir / "kc", components.SchedulerPorts.for_base(17500)
    )
    assert command[1:4] == ["-m", "kosmos.launcher", "scheduler-extender"]
    assert components.flag_value(command, "--secure-port") == "17508"
    assert components.flag_value(command, "--bind-address") == "127.0.0.1"
    assert components.flag_value(command, "--cert-dir") == str(components.extender_cert_dir())
    assert components.health_port(command) == 17508


def test_a_toolchain_binary_naming_a_file_of_this_environment_is_ours(local_dir):
    from kosmos.local import paths

    binary = str(paths.bin_dir() / "kube-scheduler")
    config = f"--config={components.scheduler_config_file()}"
    assert components.ours([binary, config, "--secure-port=17509"])
    assert not components.ours([binary, "--config=/elsewhere/config.yaml"])
    assert not components.ours(["/usr/bin/kube-scheduler", config])
    assert components.health_port([binary, config, "--secure-port=17509"]) == 17509
