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
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kosmos.local import paths, procs
from kosmos.local.toolchain import Toolchain
from kosmos.local.topology import KWOK_NODE_SELECTOR, ClusterPlan

HEARTBEAT_FACTOR = 5.0


class KwokctlError(RuntimeError):
    """kwokctl failed; the message carries the cluster, the command and its output."""


def workdir() -> Path:
    return paths.local_dir() / "kwok"


def cluster_dir(name: str) -> Path:
    return workdir() / "clusters" / name


def cluster_exists(name: str) -> bool:
    """kwokctl has created this cluster (running or not)."""
    return (cluster_dir(name) / "kwok.yaml").exists()


def config_documents(cluster: ClusterPlan, toolchain: Toolchain) -> list[dict[str, Any]]:
    """The kwokctl configuration for one cluster (pure; unit-tested)."""
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
        },
        "kube-controller-manager": {
            "service-cluster-ip-range": cluster.service_cidr,
            "cluster-cidr": cluster.pod_cidr,
            "profiling": "false",
        },
        "kube-scheduler": {"profiling": "false"},
        # kwokctl passes --manage-all-nodes=true; the later flag wins. kwok then adopts only
        # nodes we label, never the leaf nodes Kosmos adds to the host.
        "kwok-controller": {
            "manage-all-nodes": "false",
            "manage-nodes-with-label-selector": KWOK_NODE_SELECTOR,
        },
    }
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
        }
    ]


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
