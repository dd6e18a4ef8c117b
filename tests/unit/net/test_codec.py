"""kosmos.net values and whole node states through JSON and back."""

import json

import pytest

from kosmos.net import codec
from kosmos.net.netlink import LinkInfo
from kosmos.net.objects import Chain, Drop, Fdb, IPSet, Neigh, Route, Rule, Vxlan
from kosmos.net.snapshot import Snapshot
from kosmos.net.state import NodeState

STATE = NodeState(
    devices=frozenset(
        {
            Vxlan(
                "vx-bridge",
                54,
                4876,
                "eth0",
                "192.168.1.1",
                "b6:80:a3:2b:d1:23",
                "220.168.1.1/8",
                1450,
            )
        }
    ),
    routes=frozenset(
        {Route("10.2.0.0/16", "220.168.2.1", "vx-bridge"), Route("fd02::/48", "", "vx-bridge-6")}
    ),
    fdbs=frozenset({Fdb("aa:bb:cc:dd:ee:ff", "192.168.2.1", "vx-bridge")}),
    neighbours=frozenset({Neigh("220.168.2.1", "aa:bb:cc:dd:ee:ff", "vx-bridge")}),
    rules=frozenset({Rule(4), Rule(6)}),
    chains=frozenset(
        {Chain(4, "filter", "KOSMOS-FORWARD", "FORWARD", ("-i vx-bridge -j ACCEPT",))}
    ),
    ipsets=frozenset({IPSet("kosmos-remote", entries=frozenset({"10.2.0.0/16", "10.3.0.0/16"}))}),
    sysctls=(("net.ipv4.ip_forward", "1"),),
)


def test_a_state_survives_json():
    text = json.dumps(codec.encode_state(STATE))
    assert codec.decode_state(json.loads(text)) == STATE


def test_encoding_is_stable():
    assert json.dumps(codec.encode_state(STATE)) == json.dumps(codec.encode_state(STATE))
    assert codec.encode_state(STATE)["ipsets"][0]["entries"] == ["10.2.0.0/16", "10.3.0.0/16"]


def test_a_snapshot_survives_json():
    snap = Snapshot(
        STATE,
        binds={"eth0": LinkInfo("eth0", 2, 1500, True, ("192.168.1.1",), ()), "eth9": None},
        drops=[Drop(4, "filter", "FORWARD", "-s 10.2.0.0/16 -j DROP", "10.2.0.0/16")],
        errors=["ipsets: ipset failed"],
    )
    again = Snapshot.from_json(json.loads(json.dumps(snap.to_json())))
    assert again == snap


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"version": 99}, "version 1"),
        ([], "version 1"),
        ({"version": 1, "state": {"bogus": []}}, "unknown field(s) bogus"),
        (
            {"version": 1, "state": {"routes": [{"dst": "10.0.0.0/8", "via": "x"}]}},
            "Route: unknown",
        ),
        ({"version": 1, "state": {"routes": [{"dst": "10.0.0.0/8"}]}}, "Route:"),
    ],
)
def test_bad_documents_are_named(doc, says):
    with pytest.raises(codec.DecodeError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Snapshot.from_json(doc)
