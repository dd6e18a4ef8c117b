"""The configuration files of a real node's processes (pure: text in, text out; unit-tested).

Paths inside these files are the node's own view (``/run/containerd``, ``/var/lib/kubelet``):
its mount namespace puts the node's directories there. Paths of files we write (kubeconfigs,
the CA) are host paths, which the node sees as they are.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import yaml

from kosmos.local.nodes.plan import RealNodePlan

#: Kubernetes' pause image that containerd uses for every pod sandbox (and never removes).
PAUSE_IMAGE_KEY = "pause"
CNI_CONF_DIR = "/var/lib/cni/net.d"
CNI_CONF_FILE = "10-kosmos.conflist"
CNI_NETWORK = "kosmos"
#: flannel's vxlan device costs 50 bytes of the node's 1500
DEFAULT_MTU = 1450
KUBELET_PORT = 10250
FLANNEL_BACKEND = "vxlan"


def containerd_toml(sandbox_image: str, cni_bin_dir: Path, runc: Path) -> str:
    """containerd 1.6 (CRI v1), runc through the v2 shim, cgroupfs, CNI from our directory.

    ``restrict_oom_score_adj``: root in this environment may not lower OOM scores, and runc
    fails with "can't get final child's PID from pipe: EOF" when containerd asks it to.
    AppArmor and SELinux are off: the host's profiles know nothing of these containers.
    """
    plugins = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join(
        [
            "version = 2",
            'root = "/var/lib/containerd"',
            'state = "/run/containerd"',
            "oom_score = 0",
            "disabled_plugins = ["
            + ", ".join(
                f'"io.containerd.{p}"'
                for p in (
                    "snapshotter.v1.aufs",
                    "snapshotter.v1.btrfs",
                    "snapshotter.v1.zfs",
                    "snapshotter.v1.devmapper",
                    "tracing.processor.v1.otlp",
                    "internal.v1.tracing",
                )
            )
            + "]",
            "[grpc]",
            '  address = "/run/containerd/containerd.sock"',
            f"[{plugins}]",
            f"  sandbox_image = {json.dumps(sandbox_image)}",
            "  restrict_oom_score_adj = true",
            "  disable_apparmor = true",
            "  enable_selinux = false",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            f"[{plugins}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{plugins}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{plugins}.containerd.runtimes.runc.options]",
            "  SystemdCgroup = false",
            f"  BinaryName = {json.dumps(str(runc))}",
            f"[{plugins}.cni]",
            f"  bin_dir = {json.dumps(str(cni_bin_dir))}",
            f"  conf_dir = {json.dumps(CNI_CONF_DIR)}",
            "  max_conf_num = 1",
            "",
        ]
    )


def kubelet_config(node: RealNodePlan, client_ca: Path) -> dict[str, Any]:
    """The KubeletConfiguration of one node.

    * ``failCgroupV1: false``: kubelet >= 1.35 refuses a cgroup v1 host unless told;
    * ``cgroupsPerQOS`` with a per-node ``cgroupRoot``: containers land in the node's subtree
      (without it kubelet gives containerd no parent and every node's containers share
      ``/k8s.io``); ``enforceNodeAllocatable: []``: that subtree has no reserved limits;
    * eviction thresholds at the minimum: the nodes share one disk and one memory, which a
      single busy node would otherwise "fill" for all of them;
    * webhook authentication and authorization: ``kubectl logs/exec`` come from the
      apiserver with its kubelet client certificate, checked against the cluster's CA.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "address": node.address,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "cgroupRoot": f"/{node.cgroup}/pods",
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "clusterDomain": "cluster.local",
        "clusterDNS": [node.cluster_dns],
        "resolvConf": "",
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "nodeStatusReportFrequency": "1m",
        "registerWithTaints": [dict(t) for t in node.taints],
    }


def node_object(node: RealNodePlan, pod_cidr: str) -> dict[str, Any]:
    """The Node as kubelet would register it (its labels and taints), with its pod /24."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": dict(node.labels)},
        "spec": {
            "podCIDR": pod_cidr,
            "podCIDRs": [pod_cidr],
            **({"taints": [dict(t) for t in node.taints]} if node.taints else {}),
        },
    }


def kubelet_flags(node: RealNodePlan, config: Path, kubeconfig: Path) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(node.labels.items()))
    return [
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--node-ip={node.address}",
        f"--hostname-override={node.name}",
        f"--node-labels={labels}",
        "--v=2",
    ]


def kube_proxy_config(node: RealNodePlan, kubeconfig: Path) -> dict[str, Any]:
    """iptables mode; conntrack sysctls left alone (``nf_conntrack_max`` is read-only outside
    the host's network namespace, and kube-proxy would fail trying)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "hostnameOverride": node.name,
        "bindAddress": node.address,
        "clusterCIDR": node.pod_cidr,
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def flannel_net_conf(pod_cidr: str) -> dict[str, Any]:
    """flannel's ``net-conf.json``: what every flanneld reads and what the
    ``kube-flannel-cfg`` ConfigMap holds for ClusterLink's CIDR discovery."""
    return {"Network": pod_cidr, "EnableNFTables": False, "Backend": {"Type": FLANNEL_BACKEND}}


def flannel_flags(kubeconfig: Path, net_conf: Path) -> list[str]:
    """``--ip-masq``: flanneld masquerades only what leaves the cluster's pod range, so pods
    on other nodes see the client's own pod address."""
    return [
        "--kube-subnet-mgr",
        f"--kubeconfig-file={kubeconfig}",
        "--iface=eth0",
        "--ip-masq",
        f"--net-config-path={net_conf}",
        "--subnet-file=/run/flannel/subnet.env",
    ]


def subnet_env(text: str) -> dict[str, str]:
    """flanneld's ``subnet.env`` (``KEY=value`` lines)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def cni_conflist(node_pod_cidr: str, mtu: int) -> dict[str, Any]:
    """bridge + host-local on the node's /24, then portmap and loopback.

    ``ipMasq: false``: the bridge plugin would also masquerade pod traffic to other nodes
    (it exempts only the node's own /24); flanneld's rules masquerade what should be.
    """
    subnet = ipaddress.ip_network(node_pod_cidr)
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": str(subnet), "gateway": str(subnet[1])}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/var/lib/cni/networks",
    }
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "mtu": mtu,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ],
    }


def dump_yaml(body: dict[str, Any]) -> str:
    return yaml.safe_dump(body, sort_keys=False)


def dump_json(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2) + "\n"
