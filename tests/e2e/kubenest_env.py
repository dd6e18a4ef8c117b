"""The kubenest e2e tests' own environment and the seed's VirtualCluster, in one place.

Each kubenest e2e module brings up an environment of its own, as a platform engineer would
for kubenest alone: ``kosmosctl local up --members 0 --nodes 1 --real-nodes 2
--without-kosmos`` (a host with a kwok node and two real workers, each with its node-agent),
``kosmosctl install`` with every component off (the CRDs and the namespace; a module may
switch kubenest on), and, when the module says how, ``kosmos virtual-cluster-operator`` as a
process of this machine. The shared e2e environment is left alone. ``KOSMOS_KEEP_ENV=1``
keeps the environment for the next run.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosmos.kubenest import processes
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes.plan import REAL_NODE_KEY
from tests.e2e.conftest import ContextKubectl, exports, kosmosctl
from tests.support import get, require, wait_for

NS = "test-521-8"  # the seed's example: namespace and name
KOSMOS = str(Path(sys.executable).parent / "kosmos")
BIN = Path(os.environ.get("KOSMOS_KUBENEST_BIN", "~/.cache/kosmos/bin")).expanduser()
LABEL = "kosmos.io/virtual-cluster"
SYSTEM = "kosmos-system"
OPERATOR = "kosmos-virtual-cluster-operator"  # installed: Deployment, ServiceAccount, RBAC
INSTALL = ("install", "--disable-tree", "--disable-link", "--disable-scheduler", "--no-mcs-dns")


@dataclass
class KubenestEnv:
    variables: dict[str, str]
    base: Path
    kubeconfig: Path
    kubectl_binary: Path
    #: the real workers' names, sorted
    workers: list[str]
    operator_log: Path | None = None

    def host(self) -> Kubectl:
        return ContextKubectl(self.kubectl_binary, self.kubeconfig, "host")

    def tenant(self, kubeconfig: Path) -> Kubectl:
        return Kubectl(self.kubectl_binary, kubeconfig, "tenant")

    @property
    def state(self) -> Path:
        """The local provider's ``--state-dir`` (its tenants' processes are stopped at the end)."""
        return self.base / "tenants"

    def network_host(self, node: str) -> str:
        """This machine's address on the real nodes' network: the first address of the
        node's /24 (``kosmos.local.nodes.plan``: the host end is ``.1``)."""
        ip = internal_ip(self.host(), node)
        return str(ipaddress.ip_network(f"{ip}/24", strict=False)[1])


#: builds the operator's command line once the environment is up (None: no operator process)
OperatorArgv = Callable[[KubenestEnv], list[str]]


@contextlib.contextmanager
def environment(
    base: Path,
    port_base: int,
    *,
    real_nodes: int = 2,
    install: Sequence[str] = (),
    operator: OperatorArgv | None = None,
) -> Iterator[KubenestEnv]:
    variables = dict(os.environ)
    variables.setdefault("KOSMOS_LOCAL_DIR", str(base / "local"))
    up = kosmosctl(
        variables,
        *("local", "up", "--members", "0", "--nodes", "1", "--real-nodes", str(real_nodes)),
        *("--without-kosmos", "--port-base", str(port_base)),
        check=False,
    )
    process: subprocess.Popen[bytes] | None = None
    try:
        assert up.returncode == 0, f"local up failed:\n{up.stdout}\n{up.stderr}"
        found = exports(up.stdout)
        kubeconfig = Path(found["KUBECONFIG"])
        variables["KUBECONFIG"] = str(kubeconfig)
        kosmosctl(variables, *INSTALL, *install)
        kubectl_binary = Path(found["PATH"].split(":")[0]) / "kubectl"
        host = ContextKubectl(kubectl_binary, kubeconfig, "host")
        workers = sorted(
            n["metadata"]["name"] for n in get(host, "nodes", "-l", REAL_NODE_KEY)["items"]
        )
        assert len(workers) == real_nodes, workers
        env = KubenestEnv(variables, base, kubeconfig, kubectl_binary, workers)
        if operator is not None:
            env.operator_log = base / "operator.log"
            with env.operator_log.open("wb") as out:
                process = subprocess.Popen(
                    operator(env),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=variables,
                    start_new_session=True,
                )
        yield env
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        state = base / "tenants"
        for tenant in state.glob("*/") if state.is_dir() else ():  # a failed test's tenants
            processes.stop(tenant, processes.tenant_pids(tenant))
        if os.environ.get("KOSMOS_KEEP_ENV") != "1":
            kosmosctl(variables, "local", "down", check=False)


def operator_argv(env: KubenestEnv, *flags: str) -> list[str]:
    """``kosmos virtual-cluster-operator`` against the host, with ``flags``."""
    argv = [KOSMOS, "virtual-cluster-operator", "--kubeconfig", str(env.kubeconfig)]
    return [*argv, "--context", "host", "--health-port", "0", *flags]


def local_operator_argv(env: KubenestEnv, tenant_ports: str, *flags: str) -> list[str]:
    """The local provider: tenants' processes from the toolchain's binaries, in
    ``env.state``, on ``tenant_ports`` (LOW-HIGH)."""
    require(all((BIN / b).is_file() for b in ("etcd", "kube-apiserver", "kwok")), str(BIN))
    return operator_argv(
        env,
        *("--provider", "local", "--state-dir", str(env.state), "--binaries-dir", str(BIN)),
        *("--port-range", tenant_ports, *flags),
    )


def internal_ip(kubectl: Kubectl, node: str) -> str:
    body = get(kubectl, "node", node)
    return str(next(a["address"] for a in body["status"]["addresses"] if a["type"] == "InternalIP"))


def kwok_node(name: str) -> dict[str, Any]:
    """A kwok worker of the host (the environment's kwok keeps it Ready)."""
    allocatable = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kwok.x-k8s.io/node": "fake"},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "status": {"capacity": allocatable, "allocatable": allocatable},
    }


def seed_virtual_cluster(node: str, ns: str = NS, **spec: Any) -> dict[str, Any]:
    """The seed's example (namespace and name ``ns``), taking ``node`` by its hostname."""
    selector = {"matchLabels": {"kubernetes.io/hostname": node}}
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"namespace": ns, "name": ns},
        "spec": {
            "externalIP": "192.168.0.1",
            "promotePolicies": [{"labelSelector": selector, "nodeCount": 1}],
            **spec,
        },
    }


def phase(host: Kubectl, ns: str = NS) -> str:
    body = get(host, "virtualcluster", ns, "-n", ns)
    return str((body.get("status") or {}).get("phase") or "")


def diagnose(env: KubenestEnv) -> str:
    """The VirtualCluster, the pods and the operator's last lines."""
    host = env.host()
    vc = host.run("get", "virtualcluster", NS, "-n", NS, "-o", "yaml", timeout=20)
    pods = host.run("get", "pods", "-A", "-o", "wide", timeout=20)
    if env.operator_log is not None:
        tail = "\n".join(env.operator_log.read_text(errors="replace").splitlines()[-40:])
    else:  # installed: the Deployment's
        try:
            tail = host.run("logs", "-n", SYSTEM, f"deployment/{OPERATOR}", "--tail=40")
        except KubectlError as error:
            tail = str(error)
    logs = sorted(env.state.glob("*/logs/cluster-manager.log"))  # the clustertree plugin
    tree = "\n".join(logs[0].read_text(errors="replace").splitlines()[-30:]) if logs else ""
    return (
        f"{vc}\n--- pods ---\n{pods}\n--- operator log ---\n{tail}"
        f"\n--- tenant cluster-manager ---\n{tree}"
    )


def gone(kubectl: Kubectl, *args: str) -> bool:
    try:
        kubectl.run("get", *args, timeout=20)
    except KubectlError as error:
        return "NotFound" in str(error) or "not found" in str(error)
    return False


def ready(kubectl: Kubectl, node: str) -> bool:
    try:
        body = get(kubectl, "node", node)
    except KubectlError:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in body["status"]["conditions"])


def create_until_completed(
    env: KubenestEnv, node: str, vc: dict[str, Any], timeout: float, kubeconfig: Path
) -> float:
    """Once ``node``'s GlobalNode is free: the namespace, then ``vc``; waits for Completed
    and writes the decoded ``spec.kubeconfig`` to ``kubeconfig``. Seconds to Completed."""
    host = env.host()
    wait_for(
        lambda: get(host, "globalnode", node)["spec"]["state"] == "free",
        60,
        f"GlobalNode {node} free",
        ignoring=(KubectlError,),
    )
    ns = vc["metadata"]["namespace"]
    host.run("create", "namespace", ns)
    host.run("apply", "-f", "-", stdin=json.dumps(vc))
    started = time.monotonic()
    try:
        wait_for(lambda: phase(host, ns) == "Completed", timeout, f"{ns} Completed")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnose(env)}") from None
    took = time.monotonic() - started
    encoded = get(host, "virtualcluster", ns, "-n", ns)["spec"]["kubeconfig"]
    kubeconfig.write_bytes(base64.b64decode(encoded))
    return took
