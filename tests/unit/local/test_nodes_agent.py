"""The local node-agent backend and the agents' credentials: pure parts, then LocalBackend
driving real (stand-in) processes from recorded command lines."""

import base64
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from kosmos.api.nodeagent import OWN_CLUSTER, TENANT, Credentials, Failed, Join, Refused
from kosmos.kube.tls import server_ssl_context
from kosmos.local.nodes import agent, agentsetup, launch, pki
from kosmos.local.nodes.layout import NodeDirs
from kosmos.local.nodes.plan import real_node
from kosmos.local.topology import Options, plan

PEM = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN EC PRIVATE KEY-----\nk\n-----END EC PRIVATE KEY-----\n"


def _join(tenant="ns/t1", server="https://10.9.0.1:6443", dns=("10.96.0.10",)):
    return Join(
        tenant=tenant,
        server=server,
        caData=PEM,
        kubelet=Credentials(PEM, KEY),
        proxy=Credentials(PEM, KEY),
        clusterDNS=list(dns),
        clusterDomain="tenant.local",
    )


def test_swap_paths_swaps_only_the_nodes_own_config_and_kubeconfig_flags():
    etc, tenant = Path("/n/etc"), Path("/n/etc/tenant")
    argv = (
        "sh", "-c", 'for f in /cg/cgroup.procs; do echo $$ > "$f"; done; exec "$@"', "sh",
        "nsenter", "--mount=/n/mnt/x", "--", "/bin/kubelet",
        "--config=/n/etc/kubelet.yaml", "--kubeconfig=/n/etc/kubelet.kubeconfig",
        "--node-ip=10.0.0.1", "--kubeconfig-file=/n/etc/admin.kubeconfig",
        "--config=/elsewhere/kubelet.yaml",
    )  # fmt: skip
    swapped = agent.swap_paths(argv, etc, tenant)
    assert swapped[:8] == argv[:8]
    assert swapped[8:] == (
        "--config=/n/etc/tenant/kubelet.yaml",
        "--kubeconfig=/n/etc/tenant/kubelet.kubeconfig",
        "--node-ip=10.0.0.1",
        "--kubeconfig-file=/n/etc/admin.kubeconfig",
        "--config=/elsewhere/kubelet.yaml",
    )


def test_tenant_configs_name_the_tenants_ca_dns_and_kubeconfig():
    own = yaml.safe_dump(
        {
            "kind": "KubeletConfiguration",
            "authentication": {"x509": {"clientCAFile": "/own/ca.crt"}, "webhook": {}},
            "clusterDNS": ["10.0.0.10"],
            "clusterDomain": "cluster.local",
            "cgroupRoot": "/env/n/pods",
        }
    )
    body = yaml.safe_load(agent.tenant_kubelet_config(own, Path("/t/ca.crt"), _join()))
    assert body["authentication"]["x509"]["clientCAFile"] == "/t/ca.crt"
    assert body["clusterDNS"] == ["10.96.0.10"] and body["clusterDomain"] == "tenant.local"
    assert body["cgroupRoot"] == "/env/n/pods", "the rest is the node's own"
    kept = yaml.safe_load(agent.tenant_kubelet_config(own, Path("/t/ca"), _join(dns=())))
    assert kept["clusterDNS"] == ["10.0.0.10"], "no tenant DNS: the node's own stays"
    proxy = yaml.safe_dump({"clientConnection": {"kubeconfig": "/own"}, "mode": "iptables"})
    body = yaml.safe_load(agent.tenant_proxy_config(proxy, Path("/t/kube-proxy.kubeconfig")))
    assert body == {
        "clientConnection": {"kubeconfig": "/t/kube-proxy.kubeconfig"},
        "mode": "iptables",
    }


def test_state_file_round_trips_and_a_broken_one_is_a_failure(tmp_path):
    path = tmp_path / "agent-state.json"
    assert agent.read_state(path) is None
    assert agent.write_state(path, agent.Served("ns/t", "https://a:1"))
    assert not agent.write_state(path, agent.Served("ns/t", "https://a:1"))
    assert agent.read_state(path) == agent.Served("ns/t", "https://a:1")
    path.write_text("{")
    with pytest.raises(Failed, match="agent-state.json"):
        agent.read_state(path)


# -- the agents' credentials ----------------------------------------------------------------


def _node(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    node = real_node(plan(Options(real_nodes=1))[1], 1, "kosmos-16400")
    dirs = NodeDirs(node.name)
    dirs.create()
    return node, dirs


def test_authority_is_made_once_and_the_node_pair_serves_its_address(tmp_path, monkeypatch):
    node, dirs = _node(tmp_path, monkeypatch)
    cluster_pki = tmp_path / "pki"
    assert agentsetup.ensure_node(cluster_pki, dirs, node)
    authority = agentsetup.authority_dir(cluster_pki)
    before = {p.name: p.read_bytes() for p in authority.iterdir()}
    assert set(before) == {"ca.crt", "ca.key", "token", "operator.crt", "operator.key"}
    assert oct((authority / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert not agentsetup.ensure_node(cluster_pki, dirs, node), "kept across runs"
    assert {p.name: p.read_bytes() for p in authority.iterdir()} == before
    files = agentsetup.AgentFiles.of(dirs)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == [node.address, node.name]
    assert files.token.read_text() == (authority / "token").read_text()
    secret = agentsetup.secret(cluster_pki)
    assert secret["metadata"] == {"name": "kosmos-node-agent", "namespace": "kube-system"}
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["ca.crt"] == before["ca.crt"] and data["token"] == before["token"]
    assert b"PRIVATE KEY" in data["tls.key"] and data["tls.key"] != before["ca.key"]
    command = agentsetup.command(dirs, node)
    assert command.argv[:4] == (sys.executable, "-m", "kosmos.launcher", "node-agent")
    assert f"{node.address}:10270" in command.argv and str(dirs.base) in command.argv


def test_operator_and_agent_authenticate_each_other_under_strict_verification(
    tmp_path, monkeypatch
):
    node, dirs = _node(tmp_path, monkeypatch)
    cluster_pki = tmp_path / "pki"
    agentsetup.ensure_node(cluster_pki, dirs, node)
    files, authority = agentsetup.AgentFiles.of(dirs), agentsetup.authority_dir(cluster_pki)
    server = server_ssl_context(files.cert, files.key, files.client_ca)
    client = ssl.create_default_context(cafile=str(authority / "ca.crt"))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    client.load_cert_chain(authority / "operator.crt", authority / "operator.key")
    seen: list[object] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            with server.wrap_socket(conn, server_side=True) as tls:
                seen.append(tls.getpeercert())

        thread = threading.Thread(target=serve)
        thread.start()
        with (
            socket.create_connection(listener.getsockname()) as raw,
            client.wrap_socket(raw, server_hostname=node.address),
        ):
            pass
        thread.join(5)
    subject = dict(x[0] for x in seen[0]["subject"])  # type: ignore[index]
    assert subject["commonName"] == "kosmos-kubenest-operator"


def test_issue_keeps_working_with_an_rsa_cluster_ca(tmp_path):
    from tests.unit.local.test_nodes_parts import _ca

    _ca(tmp_path)
    cert, _ = pki.issue(tmp_path, "system:node:n", "system:nodes")
    assert pki.still_valid(cert, (tmp_path / "ca.crt").read_bytes())


# -- LocalBackend on stand-in processes ------------------------------------------------------

SLEEP = "import time; time.sleep(60)"


def _record(dirs: NodeDirs, name: str, *flags: str, code: str = SLEEP) -> None:
    """A process as `up` would have recorded it: a python sleeper with the node's flags."""
    command = launch.Command(name, (sys.executable, "-c", code, *flags))
    launch.start(dirs, command, [], [])


def _pid(dirs: NodeDirs, name: str) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = launch.recorded(dirs, name)
        pid = launch.pid_of(dirs, record.command) if record else None
        if pid:
            return pid
        time.sleep(0.02)
    return 0


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture
def backend(tmp_path, monkeypatch):
    monkeypatch.setattr(agent, "SETTLE", 0.2)
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    dirs = NodeDirs("c1-real1")
    dirs.create()
    (dirs.etc / "kubelet.yaml").write_text(yaml.safe_dump({"clusterDNS": ["10.0.0.10"]}))
    (dirs.etc / "kube-proxy.yaml").write_text(yaml.safe_dump({"mode": "iptables"}))
    etc = dirs.etc
    _record(
        dirs, "kubelet", f"--config={etc}/kubelet.yaml", f"--kubeconfig={etc}/kubelet.kubeconfig"
    )
    _record(dirs, "kube-proxy", f"--config={etc}/kube-proxy.yaml")
    _record(dirs, "flanneld", f"--kubeconfig-file={etc}/admin.kubeconfig")
    yield agent.LocalBackend(tmp_path / "nodes" / "c1-real1")
    for pid_file in dirs.pids.glob("*.pid"):
        launch.kill({int(pid_file.read_text())})


def test_join_restarts_kubelet_and_proxy_on_the_tenants_files_and_leave_undoes_it(backend):
    dirs = backend.dirs
    assert backend.state().cluster == OWN_CLUSTER and backend.state().kubelet == "running"
    own = {name: _pid(dirs, name) for name in ("kubelet", "kube-proxy", "flanneld")}
    state = backend.join(_join())
    assert (state.cluster, state.tenant, state.server) == (TENANT, "ns/t1", "https://10.9.0.1:6443")
    assert state.node == "c1-real1" and state.kubelet == "running"
    for name in ("kubelet", "kube-proxy"):
        assert _pid(dirs, name) not in (0, own[name])
        assert f"{dirs.tenant}/" in _cmdline(_pid(dirs, name))
    assert launch.exited(own["flanneld"]), "flanneld leaves the cluster's pod network"
    config = yaml.safe_load((dirs.tenant / "kubelet.kubeconfig").read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://10.9.0.1:6443"
    joined = {name: _pid(dirs, name) for name in ("kubelet", "kube-proxy")}
    backend.join(_join())
    assert {name: _pid(dirs, name) for name in joined} == joined, "same tenant: nothing restarts"
    launch.stop(joined["kube-proxy"])
    backend.join(_join(dns=("10.96.0.11",)))
    assert _pid(dirs, "kubelet") != joined["kubelet"], "its configuration changed"
    assert _pid(dirs, "kube-proxy") not in (0, joined["kube-proxy"]), "it had died"
    with pytest.raises(Refused, match="ns/t1"):
        backend.join(_join(tenant="ns/t2"))
    state = backend.leave()
    assert (state.cluster, state.tenant, state.kubelet) == (OWN_CLUSTER, "", "running")
    for name in ("kubelet", "kube-proxy", "flanneld"):
        assert _pid(dirs, name) and f"{dirs.tenant}/" not in _cmdline(_pid(dirs, name))
    assert not dirs.agent_state.exists() and not dirs.tenant.exists()
    assert backend.leave() == state, "leaving twice changes nothing"


def test_a_process_that_dies_at_once_fails_the_join_with_its_log(backend):
    dirs = backend.dirs
    launch.stop(_pid(dirs, "kube-proxy"))
    _record(
        dirs,
        "kube-proxy",
        f"--config={dirs.etc}/kube-proxy.yaml",
        code="print('bad flag'); raise SystemExit(1)",
    )
    with pytest.raises(Failed, match="(?s)kube-proxy exited right after it started.*bad flag"):
        backend.join(_join())
    assert backend.state().cluster == TENANT, "the node is left to the operator: leave undoes it"


def test_join_without_records_fails_naming_the_file(tmp_path):
    (tmp_path / "n1" / "etc").mkdir(parents=True)
    with pytest.raises(Failed, match="commands/kubelet.json"):
        agent.LocalBackend(tmp_path / "n1").join(_join())


def test_status_shows_a_lent_node_as_lent_not_as_a_broken_real_node(tmp_path, monkeypatch):
    from kosmos.local.nodes import layout, lifecycle

    node, dirs = _node(tmp_path, monkeypatch)
    layout.save(node)
    live = {"metadata": {"name": node.name, "labels": {"local.kosmos.io/real-node": "true"}}}
    assert lifecycle.node_rows(node.cluster, [live])[0].kind == "real"
    agent.write_state(dirs.agent_state, agent.Served("ns/t", "https://a:1"))
    assert lifecycle.lent_to(node.name) == "ns/t"
    assert lifecycle.node_rows(node.cluster, [live])[0].kind == "lent"
    (row,) = lifecycle.status([], lambda name: None)
    assert (row.name, row.kind, row.ready) == (node.name, "lent", False)
