"""config.json: netctl's keys, every bad value named, init's file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import config as settings
from kosmos.ops.netdoctor.config import Config


def test_netctls_file_loads_with_the_port_as_a_string(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "namespace": "kosmos-system",
                "version": "0.3.0",
                "mode": "pod",
                "protocol": "tcp",
                "podWaitTime": 30,
                "port": "8889",
                "maxNum": 3,
                "cmdTimeout": 10,
                "srcKubeConfig": "~/.kube/config",
                "srcImageRepository": "ghcr.io/kosmos-io",
                "dstKubeConfig": "~/.kube/dst-config",
                "dstImageRepository": "ghcr.io/kosmos-io",
            }
        )
    )
    config = settings.load(path)
    assert config.port == 8889 and config.max_num == 3 and config.two_clusters
    assert config.src_kubeconfig == "~/.kube/config"  # expanded only when used
    assert settings.expand(config.src_kubeconfig) == str(Path.home() / ".kube/config")
    assert config.image("src") == "ghcr.io/kosmos-io/kosmos:v0.3.0"


def test_defaults_and_tags():
    config = settings.parse("{}")
    assert (config.namespace, config.mode, config.protocol) == ("kosmos-system", "pod", "tcp")
    assert (config.pod_wait_time, config.port, config.cmd_timeout) == (30, 8889, 10)
    assert config.target_dns_server == "coredns" and not config.auto_clean
    assert config.version == settings.default_version()
    assert Config(version="0.1.0").tag == Config(version="v0.1.0").tag == "v0.1.0"
    assert Config(version="latest").tag == "latest"
    two = Config(version="1.0", dst_kubeconfig="x", dst_image_repository="r.io/k/")
    assert two.image("dst") == "r.io/k/kosmos:v1.0"
    assert Config(version="1.0", dst_kubeconfig="x").image("dst") == "docker.io/kosmos/kosmos:v1.0"
    assert settings.parse('{"port": 9000}').port == 9000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mode": "pod",\n "port": }', "config.json: line 2 column 10: Expecting value"),
        ("[1]", "expected a JSON object"),
        ('{"modee": "pod", "x": 1}', "unknown key(s) modee, x (known: namespace, version"),
        ('{"mode": "pods"}', "mode: 'pods' is not one of pod, node, node-to-pod, pod-to-node"),
        ('{"protocol": "http"}', "protocol: 'http' is not one of tcp, udp, dns, icmp"),
        ('{"port": "88a"}', "port: expected a port number 1-65535, got '88a'"),
        ('{"port": 70000}', "port: expected a port number 1-65535, got 70000"),
        ('{"port": true}', "port: expected a port number"),
        ('{"maxNum": 0}', "maxNum: expected a whole number >= 1, got 0"),
        ('{"podWaitTime": "30"}', "podWaitTime: expected a whole number >= 1, got '30'"),
        ('{"cmdTimeout": 1.5}', "cmdTimeout: expected a whole number >= 1, got 1.5"),
        ('{"cmdTimeout": false}', "cmdTimeout: expected a whole number"),
        ('{"autoClean": "yes"}', "autoClean: expected true or false, got 'yes'"),
        ('{"srcImageRepository": ""}', "srcImageRepository: expected a non-empty string"),
        ('{"targetHostToLookup": 5}', "targetHostToLookup: expected a non-empty string, got 5"),
        ('{"namespace": "Kosmos_System"}', "namespace: 'Kosmos_System' is not a valid"),
    ],
)
def test_every_bad_input_is_one_error_naming_it(text: str, message: str):
    with pytest.raises(OperationError) as caught:
        settings.parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_says_how_to_write_one(tmp_path: Path):
    with pytest.raises(OperationError, match="no such file .*netdoctor init"):
        settings.load(tmp_path / "config.json")


def test_null_optional_keys_mean_unset():
    config = settings.parse('{"dstKubeConfig": null, "srcKubeConfig": null}')
    assert config.dst_kubeconfig is None and not config.two_clusters


def test_init_writes_netctls_keys_and_never_overwrites_unless_forced(tmp_path: Path):
    path = tmp_path / "config.json"
    settings.write(settings.initial("~/.kube/config"), path)
    data = json.loads(path.read_text())
    assert list(data) == [
        "namespace",
        "version",
        "mode",
        "protocol",
        "podWaitTime",
        "port",
        "maxNum",
        "cmdTimeout",
        "srcKubeConfig",
        "srcImageRepository",
    ]
    assert data["port"] == "8889" and data["srcKubeConfig"] == "~/.kube/config"
    assert settings.load(path) == settings.initial("~/.kube/config")  # round trip
    with pytest.raises(OperationError, match="exists: not overwritten .*--force"):
        settings.write(Config(), path)
    settings.write(Config(mode="node", auto_clean=True), path, force=True)
    data = json.loads(path.read_text())
    assert data["mode"] == "node" and data["autoClean"] is True
