import base64

import pytest
import yaml

from kosmos.ops.membership import (
    JoinOptions,
    MembershipError,
    check_name,
    cluster_object,
    flatten_kubeconfig,
    leaf_models_one_to_one,
    parse_elastic_ips,
    parse_leaf_model,
    same_credentials,
    secret_object,
)


def test_cluster_object_references_the_secret_and_carries_flags():
    options = JoinOptions(
        name="cluster1",
        network_type="gateway",
        direct_routing=True,
        ip_family="ipv4",
        node_elastic_ips="n1=203.0.113.5",
        cluster_pod_cidrs="10.1.0.0/16, 10.2.0.0/16",
    )
    obj = cluster_object(options, None)
    spec = obj["spec"]
    assert obj["metadata"] == {"name": "cluster1"}
    assert spec["kubeconfigSecretRef"]["name"] == "kosmos-kubeconfig-cluster1"
    assert "kubeconfig" not in spec
    link = spec["clusterLinkOptions"]
    assert (link["networkType"], link["ipFamily"]) == ("gateway", "ipv4")
    assert link["directRouting"] is True
    assert link["nodeElasticIPMap"] == {"n1": "203.0.113.5"}
    assert link["clusterPodCIDRs"] == ["10.1.0.0/16", "10.2.0.0/16"]
    assert "leafModels" not in spec["clusterTreeOptions"]


def test_leaf_models():
    assert parse_leaf_model("whole") is None
    assert parse_leaf_model("one-to-one") == []
    (model,) = parse_leaf_model("selector=pool=gpu,zone=a")
    assert model.node_selector.label_selector == {"matchLabels": {"pool": "gpu", "zone": "a"}}
    one = leaf_models_one_to_one(["n1"])[0]
    assert one.leaf_node_name == "n1" and one.node_selector.node_name == "n1"
    assert one.taints == [{"key": "kosmos.io/node", "value": "true", "effect": "NoSchedule"}]
    with pytest.raises(MembershipError, match="--leaf-model"):
        parse_leaf_model("all")


@pytest.mark.parametrize(
    ("func", "value", "message"),
    [
        (parse_elastic_ips, "n1=1.2.3", "not an IP"),
        (parse_elastic_ips, "n1", "not key=value"),
        (check_name, "Cluster_1", "DNS label"),
    ],
)
def test_bad_flags_are_named(func, value, message):
    with pytest.raises(MembershipError, match=message):
        func(value)


def kubeconfig(tmp_path, server="https://127.0.0.1:6443"):
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "client.key").write_bytes(b"KEY")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "a",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "certificate-authority": "ca.crt"}},
            {"name": "other", "cluster": {"server": "https://elsewhere"}},
        ],
        "users": [{"name": "u", "user": {"client-key": "client.key", "token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    return path


def test_flatten_keeps_one_context_and_inlines_files(tmp_path):
    flat = yaml.safe_load(flatten_kubeconfig(kubeconfig(tmp_path), None))
    assert [c["name"] for c in flat["clusters"]] == ["c"]
    cluster = flat["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert base64.b64decode(flat["users"][0]["user"]["client-key-data"]) == b"KEY"
    with pytest.raises(MembershipError, match="no context 'b' \\(has: a\\)"):
        flatten_kubeconfig(kubeconfig(tmp_path), "b")


def test_same_credentials_compares_server_and_user(tmp_path):
    a = flatten_kubeconfig(kubeconfig(tmp_path), None)
    other = tmp_path / "o"
    other.mkdir()
    b = flatten_kubeconfig(kubeconfig(other, "https://127.0.0.1:7443"), None)
    assert same_credentials(a, a) and not same_credentials(a, b)


def test_secret_holds_the_kubeconfig_base64():
    secret = secret_object("cluster1", "apiVersion: v1\n")
    assert secret["metadata"]["namespace"] == "kosmos-system"
    assert base64.b64decode(secret["data"]["kubeconfig"]) == b"apiVersion: v1\n"


def test_linking_a_member_also_needs_to_manage_the_agents_daemonset():
    from kosmos.ops.membership import REQUIRED_RIGHTS, required_rights

    assert required_rights(False) == REQUIRED_RIGHTS
    extra = set(required_rights(True)) - set(REQUIRED_RIGHTS)
    assert {("apps", "daemonsets", "create"), ("apps", "daemonsets", "patch")} <= extra
