"""The node-agent's wire format: what parse_join accepts, what it refuses (naming the field),
and the state's round trip."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api import nodeagent as api

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def body(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "tenant": "team-a/vc1",
        "server": "https://10.0.0.5:6443",
        "caData": PEM,
        "kubelet": {"certData": PEM, "keyData": KEY},
        "proxy": {"certData": PEM, "keyData": KEY},
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "tenant.local",
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def test_a_join_round_trips_through_its_body():
    join = api.parse_join(body())
    assert join == api.Join(
        tenant="team-a/vc1",
        server="https://10.0.0.5:6443",
        caData=PEM.strip(),
        kubelet=api.Credentials(PEM.strip(), KEY.strip()),
        proxy=api.Credentials(PEM.strip(), KEY.strip()),
        clusterDNS=["10.96.0.10"],
        clusterDomain="tenant.local",
    )
    assert api.parse_join(join.to_body()) == join


def test_dns_and_domain_have_defaults():
    join = api.parse_join(body(clusterDNS=None, clusterDomain=None))
    assert join.clusterDNS == []
    assert join.clusterDomain == "cluster.local"


def test_surrounding_whitespace_is_dropped():
    join = api.parse_join(body(tenant="  team-a/vc1\n", server=" https://h:6443 "))
    assert (join.tenant, join.server) == ("team-a/vc1", "https://h:6443")


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_a_body_that_is_no_object_is_refused(value: object):
    with pytest.raises(api.BadRequest, match="JSON object"):
        api.parse_join(value)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"tenant": None}, "tenant must be a non-empty string"),
        ({"tenant": "vc1"}, "tenant must be <namespace>/<name>"),
        ({"tenant": "a/b/c"}, "tenant must be <namespace>/<name>"),
        ({"tenant": "/vc1"}, "tenant must be <namespace>/<name>"),
        ({"tenant": 7}, "tenant must be a non-empty string"),
        ({"server": "http://10.0.0.5:6443"}, "server must be an https:// URL"),
        ({"server": " "}, "server must be a non-empty string"),
        ({"caData": "MIIB"}, "caData must be PEM"),
        ({"caData": None}, "caData must be a non-empty string"),
        ({"kubelet": None}, "kubelet must be an object with certData and keyData"),
        ({"kubelet": [PEM, KEY]}, "kubelet must be an object"),
        ({"kubelet": {"certData": PEM}}, "kubelet.keyData must be a non-empty string"),
        ({"proxy": {"certData": "x", "keyData": KEY}}, "proxy.certData must be PEM"),
        ({"clusterDNS": "10.96.0.10"}, "clusterDNS must be a list"),
        ({"clusterDNS": ["10.96.0.10", ""]}, "clusterDNS must be a list"),
        ({"clusterDNS": [10]}, "clusterDNS must be a list"),
        ({"clusterDomain": ""}, "clusterDomain must be a non-empty string"),
        ({"clusterDomain": ["a"]}, "clusterDomain must be a non-empty string"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, Any], message: str):
    with pytest.raises(api.BadRequest) as caught:
        api.parse_join(body(**change))
    assert str(caught.value).startswith(message)


def test_a_state_round_trips_and_ignores_unknown_fields():
    state = api.State("node-1", api.TENANT, "team-a/vc1", "https://h:6443", "stopped")
    assert api.parse_state(state.to_body()) == state
    assert api.parse_state({"node": "node-1", "extra": 1}) == api.State(node="node-1")


@pytest.mark.parametrize("value", [None, [], {}, {"node": ""}, {"cluster": "own"}])
def test_a_state_without_a_node_is_refused(value: object):
    with pytest.raises(api.BadRequest):
        api.parse_state(value)
