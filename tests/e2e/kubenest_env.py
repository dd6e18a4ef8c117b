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

from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes.plan import REAL_NODE_KEY
from tests.e2e.conftest import ContextKubectl, exports, kosmosctl
from tests.support import get, wait_for

NS = "test-521-8"  # the seed's example: namespace and name
KOSMOS = str(Path(sys.executable).parent / "kosmos")
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
    install: Sequence[str] = (),
    operator: OperatorArgv | None = None,
) -> Iterator[KubenestEnv]:
    variables = dict(os.environ)
    variables.setdefault("KOSMOS_LOCAL_DIR", str(base / "local"))
    up = kosmosctl(
        variables,
        *("local", "up", "--members", "0", "--nodes", "1", "--real-nodes", "2"),
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
        assert len(workers) == 2, workers
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
        if os.environ.get("KOSMOS_KEEP_ENV") != "1":
            kosmosctl(variables, "local", "down", check=False)


def operator_argv(env: KubenestEnv, *flags: str) -> list[str]:
    """``kosmos virtual-cluster-operator`` against the host, with ``flags``."""
    argv = [KOSMOS, "virtual-cluster-operator", "--kubeconfig", str(env.kubeconfig)]
    return [*argv, "--context", "host", "--health-port", "0", *flags]


def internal_ip(kubectl: Kubectl, node: str) -> str:
    body = get(kubectl, "node", node)
    return str(next(a["address"] for a in body["status"]["addresses"] if a["type"] == "InternalIP"))


def seed_virtual_cluster(node: str, **spec: Any) -> dict[str, Any]:
    """The seed's example, taking ``node`` by its hostname label."""
    selector = {"matchLabels": {"kubernetes.io/hostname": node}}
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"namespace": NS, "name": NS},
        "spec": {
            "externalIP": "192.168.0.1",
            "promotePolicies": [{"labelSelector": selector, "nodeCount": 1}],
            **spec,
        },
    }


def phase(host: Kubectl) -> str:
    body = get(host, "virtualcluster", NS, "-n", NS)
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
    return f"{vc}\n--- pods ---\n{pods}\n--- operator log ---\n{tail}"


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
    host.run("create", "namespace", NS)
    host.run("apply", "-f", "-", stdin=json.dumps(vc))
    started = time.monotonic()
    try:
        wait_for(lambda: phase(host) == "Completed", timeout, "phase Completed")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnose(env)}") from None
    took = time.monotonic() - started
    encoded = get(host, "virtualcluster", NS, "-n", NS)["spec"]["kubeconfig"]
    kubeconfig.write_bytes(base64.b64decode(encoded))
    return took
