import ipaddress
import json
import tomllib
from pathlib import Path

import yaml

from kosmos.clusterlink.discovery import flannel_cidrs
from kosmos.local.nodes import configs, network
from kosmos.local.nodes.plan import real_node
from kosmos.local.topology import Options, plan

NODE = real_node(plan(Options(real_nodes=1))[1], 1, "kosmos-16400")


def test_containerd_uses_our_pause_image_runc_cni_and_restricts_oom_score_adj():
    text = configs.containerd_toml(
        "docker.io/kosmos/pause:3.10.2", Path("/usr/lib/cni"), Path("/usr/sbin/runc")
    )
    body = tomllib.loads(text)
    cri = body["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "docker.io/kosmos/pause:3.10.2"
    assert cri["restrict_oom_score_adj"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["BinaryName"] == "/usr/sbin/runc"
    assert cri["cni"] == {
        "bin_dir": "/usr/lib/cni",
        "conf_dir": configs.CNI_CONF_DIR,
        "max_conf_num": 1,
    }
    assert body["grpc"]["address"] == "/run/containerd/containerd.sock"


def test_kubelet_runs_in_the_nodes_cgroup_subtree_and_trusts_the_cluster_ca():
    body = configs.kubelet_config(NODE, Path("/pki/ca.crt"))
    assert body["cgroupRoot"] == "/kosmos-16400/cluster1-real1/pods"
    assert body["cgroupsPerQOS"] is True and body["failCgroupV1"] is False
    assert body["authentication"]["x509"]["clientCAFile"] == "/pki/ca.crt"
    assert body["authentication"]["anonymous"]["enabled"] is False
    assert body["address"] == NODE.address
    assert body["registerWithTaints"] == [dict(t) for t in NODE.taints]
    flags = configs.kubelet_flags(NODE, Path("/c"), Path("/k"))
    assert f"--node-ip={NODE.address}" in flags and "--hostname-override=cluster1-real1" in flags
    assert any(
        f.startswith("--node-labels=") and "local.kosmos.io/real-node=true" in f for f in flags
    )


def test_kube_proxy_is_iptables_with_conntrack_sysctls_left_alone():
    body = configs.kube_proxy_config(NODE, Path("/k"))
    assert body["mode"] == "iptables" and body["clusterCIDR"] == NODE.pod_cidr
    assert body["conntrack"]["maxPerCore"] == 0 and body["conntrack"]["min"] == 0
    assert yaml.safe_load(configs.dump_yaml(body)) == body


def test_cni_conflist_is_the_nodes_range_with_flannels_mtu_and_no_bridge_masquerade():
    body = configs.cni_conflist("10.11.3.0/24", 1450)
    bridge = body["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False and bridge["mtu"] == 1450
    (rng,) = bridge["ipam"]["ranges"][0]
    assert rng == {"subnet": "10.11.3.0/24", "gateway": "10.11.3.1"}
    assert [p["type"] for p in body["plugins"]] == ["bridge", "portmap", "loopback"]


def test_subnet_env_is_parsed():
    text = "FLANNEL_NETWORK=10.11.0.0/16\nFLANNEL_SUBNET=10.11.3.1/24\nFLANNEL_MTU=1450\n"
    assert configs.subnet_env(text)["FLANNEL_MTU"] == "1450"


def test_flannel_configmap_is_what_clusterlink_discovery_reads():
    cm = network.flannel_configmap(NODE.pod_cidr)
    assert cm["metadata"]["name"] == "kube-flannel-cfg"
    assert flannel_cidrs([cm]) == [NODE.pod_cidr]
    assert json.loads(cm["data"]["net-conf.json"])["Backend"] == {"Type": "vxlan"}
    assert ipaddress.ip_network(NODE.pod_cidr).prefixlen == 16
