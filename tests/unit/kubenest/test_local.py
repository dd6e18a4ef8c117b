"""The local provider with stand-in binaries (shell loops): files, ports, adopting live
processes, restarting dead ones, destroy. The real binaries: tests/integration/kubenest."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from kosmos.kubenest import components, processes
from kosmos.kubenest.local import LocalProvider, _failed_checks
from kosmos.kubenest.pki import TenantPKI
from kosmos.kubenest.provider import ProviderError
from kosmos.kubenest.provider import for_settings as provider_for
from kosmos.kubenest.settings import Settings

LOOP = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n"


def vc(name: str) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name}}


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for binary in components.BINARIES.values():
        path = bin_dir / binary
        path.write_text(LOOP)
        path.chmod(0o755)
    return LocalProvider(
        Settings("local", tmp_path / "state", bin_dir, (21050, 21099), "127.0.0.1")
    )


@pytest.fixture(scope="module")
def tenant_pki() -> TenantPKI:
    return TenantPKI.create("ns/a", ["127.0.0.1"])


async def test_ensure_destroy(provider: LocalProvider, tenant_pki: TenantPKI) -> None:
    plane = await provider.ensure(vc("a"), tenant_pki)
    folder = provider.state_dir / "ns_a"
    try:
        assert not plane.ready and "apiserver not ready" in plane.message
        assert "started etcd, apiserver" in plane.message
        assert set(plane.ports) == set(components.PORTS)
        assert plane.endpoint == f"https://127.0.0.1:{plane.ports['apiserver']}"
        assert json.loads((folder / "ports.json").read_text()) == plane.ports
        assert stat.S_IMODE((folder / "pki" / "ca.key").stat().st_mode) == 0o600
        assert (folder / "pki" / "ca.key").read_bytes() == tenant_pki.files["ca.key"]
        config = yaml.safe_load((folder / "scheduler.kubeconfig").read_text())
        assert config["clusters"][0]["cluster"]["server"] == plane.endpoint
        assert "kind: Stage" in (folder / "kwok.yaml").read_text()
        pids = provider.pids(vc("a"))
        assert len(pids) == len(components.PROCESSES)
        argv = (Path("/proc") / str(processes.running(folder, "etcd")) / "cmdline").read_bytes()
        assert b"--client-cert-auth=true" in argv

        again = await provider.ensure(vc("a"), tenant_pki)  # adopts, starts nothing
        assert "started" not in again.message and again.ports == plane.ports
        assert provider.pids(vc("a")) == pids

        etcd = processes.running(folder, "etcd")
        assert etcd is not None
        processes.stop(folder, [etcd])
        restarted = await provider.ensure(vc("a"), tenant_pki)
        assert "started etcd;" in restarted.message  # TERM: the loop exits without a word
        processes.log_file(folder, "kwok").write_text("--- start\nF0101 bad flag --x\n")
        kwok = processes.running(folder, "kwok")
        assert kwok is not None
        processes.stop(folder, [kwok])
        crashed = await provider.ensure(vc("a"), tenant_pki)
        assert "started kwok (it had exited: F0101 bad flag --x);" in crashed.message
        assert processes.running(folder, "etcd") not in (None, etcd)
    finally:
        survivors = provider.pids(vc("a"))
        await provider.destroy(vc("a"))
    assert not folder.exists()
    assert all(not processes.owns(pid, folder) for pid in survivors)
    await provider.destroy(vc("a"))  # idempotent


async def test_two_tenants_get_disjoint_ports(
    provider: LocalProvider, tenant_pki: TenantPKI
) -> None:
    try:
        a = await provider.ensure(vc("a"), tenant_pki)
        b = await provider.ensure(vc("b"), TenantPKI.create("ns/b", []))
        assert not set(a.ports.values()) & set(b.ports.values())
    finally:
        await provider.destroy(vc("a"))
        await provider.destroy(vc("b"))


async def test_missing_binary_is_a_provider_error(
    provider: LocalProvider, tenant_pki: TenantPKI
) -> None:
    (provider.bin_dir / "kwok").unlink()
    with pytest.raises(ProviderError, match=r"lacks kwok"):
        await provider.ensure(vc("a"), tenant_pki)
    assert provider.pids(vc("a")) == []


def test_stale_pid_file_is_not_adopted(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "etcd.pid").write_text(f"{os.getpid()}\n")  # alive, but not ours
    assert processes.running(tmp_path, "etcd") is None
    (tmp_path / "pids" / "etcd.pid").write_text("garbage")
    assert processes.running(tmp_path, "etcd") is None


def test_provider_for_settings(tmp_path: Path) -> None:
    settings = Settings("local", tmp_path, tmp_path, (1, 2), "127.0.0.1")
    host: Any = None
    assert isinstance(provider_for(settings, host), LocalProvider)
    with pytest.raises(ProviderError, match=r"unknown tenant control-plane provider 'cloud'"):
        provider_for(Settings("cloud", tmp_path, tmp_path, (1, 2), "127.0.0.1"), host)


async def test_foreign_advertise_address(provider: LocalProvider, tenant_pki: TenantPKI) -> None:
    settings = Settings("local", provider.state_dir, provider.bin_dir, (1, 2), "192.0.2.77")
    with pytest.raises(ProviderError, match=r"192\.0\.2\.77 is not one of this machine"):
        await LocalProvider(settings).ensure(vc("a"), tenant_pki)


def test_failed_checks() -> None:
    body = "[+]ping ok\n[-]etcd failed: reason withheld\n[-]poststarthook/rbac failed\nfailed"
    assert _failed_checks(body) == "[-]etcd failed: reason withheld; [-]poststarthook/rbac failed"
    assert _failed_checks("nope\n") == "nope"


async def test_the_tenants_cluster_tree_is_started_once_adopted_and_destroyed(
    provider: LocalProvider, tenant_pki: TenantPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int, str, str]] = []

    def stand_in(layout: Any, python: str, port: int, address: str, owner: str) -> list[str]:
        seen.append((python, port, address, owner))
        return [str(provider.bin_dir / "etcd"), str(layout.kubeconfig("admin"))]

    monkeypatch.setattr(components, "cluster_manager", stand_in)
    plane = await provider.ensure(vc("a"), tenant_pki)
    folder = provider.state_dir / "ns_a"
    try:
        assert await provider.ensure_tree(vc("a"), "u-1") == "ClusterTree: started cluster-manager"
        assert await provider.ensure_tree(vc("a"), "u-1") == ""  # running: adopted
        ports = json.loads((folder / "ports.json").read_text())
        assert ports["cluster-manager"] not in plane.ports.values()
        assert [s[1:] for s in seen] == [(ports["cluster-manager"], "127.0.0.1", "u-1")]
        assert processes.running(folder, "cluster-manager") is not None
    finally:
        await provider.destroy(vc("a"))
    assert not folder.exists()


def test_the_cluster_managers_command_serves_the_tenant_with_the_host_as_member(
    tmp_path: Path,
) -> None:
    layout = components.Layout(tmp_path / "ns_a")
    argv = components.cluster_manager(layout, "/venv/bin/python", 21077, "10.0.0.1", "u-1")
    assert argv[:4] == ["/venv/bin/python", "-m", "kosmos.launcher", "cluster-manager"]
    flags = {f: argv[argv.index(f) + 1] for f in argv if f.startswith("--") and "=" not in f}
    assert flags["--kubeconfig"] == str(tmp_path / "ns_a" / "admin.kubeconfig")
    assert flags["--listen-port"] == "21077"
    assert flags["--node-address"] == flags["--kubelet-bind-address"] == "10.0.0.1"
    assert flags["--owner"] == "u-1"
    assert "--no-multi-cluster-service" in argv
