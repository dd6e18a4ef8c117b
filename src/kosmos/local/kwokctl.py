"""Drive ``kwokctl --runtime binary``: one kwokctl cluster per planned cluster.

kwokctl does the tedious, well-tested part (PKI, component flags, pid files, start order);
we give it a declarative ``KwokctlConfiguration`` per cluster with our binaries, fixed ports,
loopback binding and the tuning below, and keep the kubeconfigs it writes private to its
work dir (``--kubeconfig`` points there, never at ``~/.kube/config``).

Tuning for a 2-core machine (the constraint is CPU, not memory):

* ``heartbeatFactor: 5`` — node leases renew every 50 s instead of 10 s, node-monitor periods
  scale with it; lease writes are the main idle cost of simulated nodes.
* etcd ``--unsafe-no-fsync`` — throwaway data; fsync stalls dominate write latency on VMs.
* ``--profiling=false`` on the control-plane components, kube-apiserver ``--event-ttl=30m``.

``kubectl logs`` / ``kubectl exec`` on simulated pods (the Kosmos leaf-node proxy forwards them
to the member, so the member must answer with real output):

* kwok-controller serves the kubelet API (``/containerLogs``, ``/exec``) on its port and
  advertises that port as the node's ``daemonEndpoints.kubeletEndpoint``; our nodes carry
  ``InternalIP 127.0.0.1`` (:func:`kosmos.local.topology.node_manifest`). kube-apiserver's
  default ``--kubelet-preferred-address-types`` tries ``Hostname`` first, and a kwok node's
  hostname is its name, which does not resolve; we set ``InternalIP,ExternalIP,Hostname``.
* The apiserver dials kwok over TLS, having no ``--kubelet-certificate-authority``, without
  verifying kwok's certificate; it presents kwokctl's admin certificate (real kubelets and the
  leaf nodes' endpoint check it), which kwok's server (v0.8) never asks for. The price:
  anyone on this machine who can reach kwok's loopback port can run commands as the user
  running the environment, which is what a local development environment is.
* What kwok answers comes from ``ClusterLogs``, ``ClusterExec`` and ``ClusterPortForward``
  documents. kwok v0.8 takes
  them either as CRs (``--enable-crds``) or from its ``--config`` file; with the binary
  runtime, kwokctl copies the kwok documents of *its* ``--config`` into the cluster's
  ``kwok.yaml``, which it passes to kwok-controller. We use that: no CRDs to install, and the
  documents exist before the first pod does. Neither has a selector, so they apply to every
  pod in every namespace.
* Logs: every container of a cluster reads ``<cluster dir>/pod.log``, a few lines naming the
  cluster written at create time. kwok reads it with the kubelet's CRI log reader, so the
  lines are in CRI format (``<RFC 3339 time> stdout F <text>``); that gives ``--tail``,
  ``--timestamps``, ``--since`` and ``-f`` (follow streams lines appended to the file) for
  free.
* Exec: the command runs locally, in the cluster's work dir, with ``KOSMOS_CLUSTER`` set to the
  cluster's name, so a caller can tell which cluster ran it
  (``kubectl exec p -- sh -c 'echo $KOSMOS_CLUSTER'``). kwok v0.8 limits: a failing command
  ends ``kubectl exec`` with exit code 1 and an "Internal error" naming the real status, not
  with its own exit code; and stdin is never closed, so ``exec -i`` of a command that reads
  stdin to its end (``cat``) hangs until the client goes away (the command then lingers).
  ``kubectl logs --previous`` fails: there is no previous container.
* Port-forward: every port of every pod answers one HTTP request with ``200`` and the body
  ``hello from <cluster>`` (a local ``sh`` whose stdin/stdout are the forwarded stream), so
  ``kubectl port-forward`` + an HTTP GET shows which cluster served it. Clusters created
  before this document existed answer ``no forward found`` until re-created.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kosmos.local import paths, procs
from kosmos.local.nodes.plan import apiserver_sans, network
from kosmos.local.toolchain import Toolchain
from kosmos.local.topology import KWOK_NODE_SELECTOR, ClusterPlan

HEARTBEAT_FACTOR = 5.0
#: kube-apiserver dials a node's kubelet (here: kwok) at the first address of these types.
KUBELET_ADDRESS_TYPES = "InternalIP,ExternalIP,Hostname"
#: The log every simulated container of a cluster shows, in its kwokctl work dir.
POD_LOG_NAME = "pod.log"
KWOK_API_VERSION = "kwok.x-k8s.io/v1alpha1"
#: kcm's per-node pod range with real nodes; kwok nodes use the same size (topology).
NODE_CIDR_PREFIX = 24
#: CN of kwokctl's admin certificate (its ``pki.DefaultUser``), the apiserver's proxy client.
PROXY_CLIENT_CN = "kwok-admin"


class KwokctlError(RuntimeError):
    """kwokctl failed; the message carries the cluster, the command and its output."""


def workdir() -> Path:
    return paths.local_dir() / "kwok"


def cluster_dir(name: str) -> Path:
    return workdir() / "clusters" / name


def cluster_exists(name: str) -> bool:
    """kwokctl has created this cluster (running or not)."""
    return (cluster_dir(name) / "kwok.yaml").exists()


def serves_logs_and_exec(name: str) -> bool:
    """The existing cluster was created with the documents and flags that make ``logs``,
    ``exec``, ``port-forward`` (through leaf nodes too) and ``top`` work.

    kwokctl keeps a cluster's configuration from its creation; a cluster made by an older
    kosmosctl needs re-creating, and ``up`` says so instead of leaving ``logs`` to fail.
    """
    try:
        documents = list(yaml.safe_load_all((cluster_dir(name) / "kwok.yaml").read_text()))
    except (OSError, yaml.YAMLError):
        return False
    kinds = {d.get("kind") for d in documents if isinstance(d, dict)}
    apiserver_flags = [
        arg
        for d in documents
        if isinstance(d, dict) and d.get("kind") == "KwokctlConfiguration"
        for component in d.get("components") or []
        if component.get("name") == "kube-apiserver"
        for arg in component.get("args") or []
    ]
    wanted_flags = (
        "--kubelet-preferred-address-types=",
        "--kubelet-client-certificate=",
        "--enable-aggregator-routing=",
    )
    return {"ClusterLogs", "ClusterExec", "ClusterPortForward"} <= kinds and all(
        any(str(arg).startswith(flag) for arg in apiserver_flags) for flag in wanted_flags
    )


def pod_log_path(name: str) -> Path:
    return cluster_dir(name) / POD_LOG_NAME


def pod_log_messages(name: str) -> list[str]:
    """What ``kubectl logs`` shows for any pod of cluster ``name``: it says which cluster."""
    return [
        f"hello from {name}",
        f"{name}: this is a kwok-simulated container; every pod of {name} shows this log",
        f"{name}: exec runs commands locally with KOSMOS_CLUSTER={name}",
    ]


def pod_log_text(name: str, now: datetime) -> str:
    """The pod log in CRI format, which is the only input kwok's log reader accepts."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{stamp} stdout F {message}\n" for message in pod_log_messages(name))


def ensure_pod_log(name: str) -> Path:
    """Write the cluster's pod log unless it exists (lines appended later stay, for ``-f``)."""
    path = pod_log_path(name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pod_log_text(name, datetime.now(UTC)))
    return path


def port_forward_command(name: str) -> list[str]:
    """One HTTP answer naming the cluster, written to the forwarded stream."""
    body = f"{pod_log_messages(name)[0]}\n"
    head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    response = f"{head}Content-Length: {len(body)}\r\n\r\n{body}"
    return ["sh", "-c", 'printf "%s" "$0"', response]


def debugging_documents(name: str) -> list[dict[str, Any]]:
    """kwok's answers to ``kubectl logs``, ``exec`` and ``port-forward``, for every pod.

    No selector means every pod in every namespace; a target without ``containers`` is the
    default for every container.
    """
    return [
        {
            "apiVersion": KWOK_API_VERSION,
            "kind": "ClusterLogs",
            "metadata": {"name": "kosmos-pod-log"},
            "spec": {"logs": [{"logsFile": str(pod_log_path(name))}]},
        },
        {
            "apiVersion": KWOK_API_VERSION,
            "kind": "ClusterExec",
            "metadata": {"name": "kosmos-local-exec"},
            "spec": {
                "execs": [
                    {
                        "local": {
                            "workDir": str(cluster_dir(name)),
                            "envs": [{"name": "KOSMOS_CLUSTER", "value": name}],
                        }
                    }
                ]
            },
        },
        {
            "apiVersion": KWOK_API_VERSION,
            "kind": "ClusterPortForward",
            "metadata": {"name": "kosmos-local-http"},
            "spec": {"forwards": [{"command": port_forward_command(name)}]},
        },
    ]


def aggregation_flags(name: str) -> dict[str, str]:
    """What kube-apiserver needs to serve an aggregated API (metrics-server's metrics.k8s.io).

    kwokctl already passes its admin certificate as ``--proxy-client-cert-file``: the client
    certificate the apiserver presents to an extension apiserver. The extension trusts it
    through ``--requestheader-client-ca-file`` (the kwok CA, which signed it), published in
    ``kube-system/extension-apiserver-authentication``, and only for that certificate's CN
    (``--requestheader-allowed-names``): any other certificate of that CA (a kubelet's)
    cannot assert a user in the headers. Routing: the apiserver runs in the machine's network
    namespace where no kube-proxy turns a ClusterIP into a pod, so it dials the Service's
    endpoint address itself (``--enable-aggregator-routing``). Harmless without real nodes:
    no APIService is registered there.
    """
    pki = cluster_dir(name) / "pki"
    return {
        "enable-aggregator-routing": "true",
        "requestheader-client-ca-file": str(pki / "ca.crt"),
        "requestheader-allowed-names": PROXY_CLIENT_CN,
        "requestheader-username-headers": "X-Remote-User",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
    }


CLIENT_BUDGET = {"kube-api-qps": "100", "kube-api-burst": "200"}


def config_documents(cluster: ClusterPlan, toolchain: Toolchain) -> list[dict[str, Any]]:
    """The kwokctl configuration for one cluster, then kwok's (pure; unit-tested)."""
    ports = cluster.ports
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeApiserverPort": ports["kube-apiserver"],
        "etcdPort": ports["etcd"],
        "etcdPeerPort": ports["etcd-peer"],
        "kubeControllerManagerPort": ports["kube-controller-manager"],
        "kubeSchedulerPort": ports["kube-scheduler"],
        "kwokControllerPort": ports["kwok-controller"],
        "heartbeatFactor": HEARTBEAT_FACTOR,
        "kubeVersion": toolchain.k8s_version,
        "etcdVersion": toolchain.groups["etcd"].version,
        "kwokVersion": toolchain.groups["kwok"].version,
        "kubeApiserverBinary": str(toolchain.path("kube-apiserver")),
        "kubeControllerManagerBinary": str(toolchain.path("kube-controller-manager")),
        "kubeSchedulerBinary": str(toolchain.path("kube-scheduler")),
        "kubectlBinary": str(toolchain.path("kubectl")),
        "etcdBinary": str(toolchain.path("etcd")),
        "kwokControllerBinary": str(toolchain.path("kwok")),
        "cacheDir": str(paths.cache_dir() / "kwok-cache"),
    }
    patches = {
        "etcd": {"unsafe-no-fsync": "true"},
        "kube-apiserver": {
            "service-cluster-ip-range": cluster.service_cidr,
            "profiling": "false",
            "event-ttl": "30m",
            "kubelet-preferred-address-types": KUBELET_ADDRESS_TYPES,
            # kubelets of real nodes and the leaf nodes' kubelet endpoint authenticate the
            # caller (kwok does not): present kwokctl's admin certificate (system:masters)
            "kubelet-client-certificate": str(cluster_dir(cluster.name) / "pki" / "admin.crt"),
            "kubelet-client-key": str(cluster_dir(cluster.name) / "pki" / "admin.key"),
            **aggregation_flags(cluster.name),
        },
        # One instance each, so no leader election: with it, kcm and the scheduler exit when
        # their apiserver is unreachable past the renew deadline (a kubelet would restart
        # them; nothing does here), and an outage test would leave the cluster headless.
        # Client budgets: kcm's default 20 QPS (per controller) caps the ReplicaSet
        # controller at ~10 pods/s (a create and an event per pod) and the scheduler's 50 at
        # ~25 (a binding and an event). The host's kcm and scheduler serve every Deployment
        # submitted through Kosmos, so bench/density.py measured its kosmos arm at 10.2
        # pods/s when 20 were asked: the testbed, not Kosmos, set the rate.
        "kube-controller-manager": {
            "service-cluster-ip-range": cluster.service_cidr,
            "cluster-cidr": cluster.pod_cidr,
            "profiling": "false",
            "leader-elect": "false",
            **CLIENT_BUDGET,
        },
        "kube-scheduler": {"profiling": "false", "leader-elect": "false", **CLIENT_BUDGET},
        # kwokctl passes --manage-all-nodes=true; the later flag wins. kwok then adopts only
        # nodes we label, never the leaf nodes Kosmos adds to the host.
        "kwok-controller": {
            "manage-all-nodes": "false",
            "manage-nodes-with-label-selector": KWOK_NODE_SELECTOR,
        },
    }
    if cluster.real_nodes:
        _serve_real_nodes(cluster, options, patches)
    return [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
            "componentsPatches": [
                {
                    "name": component,
                    "extraArgs": [{"key": k, "value": v} for k, v in sorted(args.items())],
                }
                for component, args in patches.items()
            ],
        },
        *debugging_documents(cluster.name),
    ]


def _serve_real_nodes(
    cluster: ClusterPlan, options: dict[str, Any], patches: dict[str, dict[str, str]]
) -> None:
    """What a cluster with real nodes needs beyond kwok's (:mod:`kosmos.local.nodes`).

    * The apiserver still binds loopback; node namespaces reach it through a relay on the
      cluster network's host address, so its certificate names that address, and the
      ``kubernetes`` Service's ClusterIP for pods. It advertises the host address: that is
      the endpoint of the ``kubernetes`` Service, which pods reach through kube-proxy.
    * kcm gives every node a /24 of the cluster's pod range (kwok nodes bring their own
      ``podCIDR``, which kcm takes as used): flannel and the CNI configuration start from it.
    """
    options["kubeApiserverCertSANs"] = apiserver_sans(cluster)
    patches["kube-apiserver"]["advertise-address"] = network(cluster).host_address
    patches["kube-controller-manager"] |= {
        "allocate-node-cidrs": "true",
        "node-cidr-mask-size": str(NODE_CIDR_PREFIX),
    }


@dataclass
class Kwokctl:
    """Runs kwokctl with our work dir; every call names the cluster it acts on."""

    binary: Path

    def _run(self, cluster: str, *args: str, timeout: float = 300) -> str:
        env = dict(os.environ, KWOK_WORKDIR=str(workdir()))
        argv = [str(self.binary), *args, "--name", cluster]
        try:
            out = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise KwokctlError(f"cluster {cluster}: `{' '.join(args)}` timed out") from exc
        if out.returncode != 0:
            raise KwokctlError(
                f"cluster {cluster}: `kwokctl {' '.join(args)}` failed (exit {out.returncode}):\n"
                f"{(out.stderr or out.stdout).strip()[-2000:]}"
            )
        return out.stdout

    def create(self, cluster: ClusterPlan, toolchain: Toolchain) -> None:
        directory = paths.local_dir() / "config"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / f"{cluster.name}.kwokctl.yaml"
        config.write_text(yaml.safe_dump_all(config_documents(cluster, toolchain)))
        scratch = directory / f"{cluster.name}.kwokctl-kubeconfig"
        ensure_pod_log(cluster.name)
        self._run(
            cluster.name,
            "create",
            "cluster",
            "--config",
            str(config),
            "--kubeconfig",
            str(scratch),
            "--wait",
            "3m",
        )

    def start(self, cluster: str) -> None:
        self._run(cluster, "start", "cluster", "--wait", "3m")

    def stop(self, cluster: str) -> None:
        """Stop a cluster and wait until its processes are gone and its ports free.

        kwokctl only signals the components; a loaded apiserver can take seconds to exit,
        and a ``start`` racing it fails on "address already in use".
        """
        running = procs.processes_under(cluster_dir(cluster))
        ports = sorted(procs.listening_ports([p.pid for p in running]))
        self._run(cluster, "stop", "cluster", timeout=120)
        stubborn = procs.wait_exit([p.pid for p in running], timeout=60.0)
        if stubborn:
            procs.terminate(stubborn)
        if procs.wait_ports_free(ports, timeout=10.0):
            raise KwokctlError(f"cluster {cluster}: ports still bound after stop: {ports}")

    def delete(self, cluster: str) -> None:
        self._run(cluster, "delete", "cluster", timeout=120)

    def kubeconfig(self, cluster: str) -> Path:
        return cluster_dir(cluster) / "kubeconfig.yaml"
