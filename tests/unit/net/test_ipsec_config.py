"""The pure half of the encryption backends: TunnelSpec, vici messages, strongswan.conf, the
TunnelState summary, and WireGuard's key derivation and UAPI text (no daemon, no root)."""

from __future__ import annotations

import base64
import functools
from pathlib import Path

import pytest

from kosmos.net.ipsec import (
    IpsecSettings,
    StrongSwan,
    check_plugins,
    choose_backend,
    conn_message,
    fingerprint,
    plugins_for,
    shared_message,
    strongswan_conf,
    tunnel_state,
    vici_messages,
)
from kosmos.net.tunnels import InvalidTunnel, TunnelError, TunnelSpec
from kosmos.net.wireguard import (
    Peer,
    WireGuard,
    parse_peers,
    peer_for,
    peer_lines,
    preshared_key,
    private_key_from_seed,
    public_key_of,
)

PSK = bytes(range(32))
LIBIPSEC = IpsecSettings(backend="libipsec")


def spec(**changes):
    fields = {
        "name": "to-b",
        "local_address": "192.168.10.11",
        "remote_address": "203.0.113.21",
        "local_subnets": ("10.11.1.0/24",),
        "remote_subnets": ("10.12.1.0/24",),
        "psk": PSK,
        "local_id": "203.0.113.11",
        "remote_id": "203.0.113.21",
    }
    fields.update(changes)
    return TunnelSpec(**fields)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": "To_B"}, "DNS label"),
        ({"name": "-b"}, "DNS label"),
        ({"local_address": "node-a"}, "local_address"),
        ({"remote_address": "203.0.113.300"}, "remote_address"),
        ({"local_subnets": ()}, "non-empty"),
        ({"local_subnets": ["10.11.1.0/24"]}, "tuple"),
        ({"remote_subnets": ("10.12.1.1/24",)}, "not a CIDR"),  # host bits set
        ({"remote_subnets": ("10.12.1.0/33",)}, "not a CIDR"),
        ({"psk": b"short"}, "at least 16 bytes"),
        ({"psk": "a string, not bytes"}, "at least 16 bytes"),
    ],
)
def test_bad_specs_are_refused_without_quoting_the_key(changes, says):
    with pytest.raises(InvalidTunnel, match=says) as refused:
        spec(**changes)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, TunnelError)
    assert PSK.hex() not in str(refused.value) and repr(PSK) not in str(refused.value)


def test_repr_leaves_the_key_out():
    text = repr(spec()) + str(spec())
    assert "psk" not in text and repr(PSK) not in text and PSK.hex() not in text


def test_ids_default_to_the_addresses():
    plain = spec(local_id=None, remote_id=None)
    assert (plain.me, plain.peer) == ("192.168.10.11", "203.0.113.21")
    assert (spec().me, spec().peer) == ("203.0.113.11", "203.0.113.21")


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        ("203.0.113.11", "203.0.113.21"),
        ("203.0.113.9", "203.0.113.10"),  # numeric, not text order ("9" > "1")
        ("198.51.100.1", "2001:db8::1"),  # v4 before v6
        ("2001:db8::2", "node-b.example"),  # addresses before names
        ("node-a.example", "node-b.example"),
    ],
)
def test_exactly_one_end_of_a_pair_initiates(mine, theirs):
    here = spec(local_id=mine, remote_id=theirs)
    there = spec(local_id=theirs, remote_id=mine)
    assert here.initiator and not there.initiator


@pytest.mark.parametrize(
    ("local_id", "start", "dpd", "close"),
    [
        ("203.0.113.11", "trap|start", "restart", "start"),  # smaller id: initiator
        ("203.0.113.99", "trap", "trap", None),  # responder: traps only, the peer opens
    ],
)
def test_conn_message_per_role(local_id, start, dpd, close):
    message = conn_message(spec(local_id=local_id), LIBIPSEC)
    conn = message["to-b"]
    child = conn["children"]["to-b"]
    assert (child["start_action"], child["dpd_action"], child.get("close_action")) == (
        start,
        dpd,
        close,
    )
    assert conn["local"] == {"auth": "psk", "id": local_id}
    assert conn["remote"] == {"auth": "psk", "id": "203.0.113.21"}


def test_conn_message_carries_addresses_selectors_and_ike_settings():
    settings = IpsecSettings("kernel", "aes128gcm16-prfsha256-x25519", "aes128gcm16", 5, 600, 60)
    many = spec(local_subnets=("10.11.1.0/24", "fd11::/64"), remote_subnets=("10.12.0.0/16",))
    conn = conn_message(many, settings)["to-b"]
    child = conn["children"]["to-b"]
    assert conn["version"] == "2" and conn["mobike"] == "no" and conn["keyingtries"] == "0"
    assert (conn["local_addrs"], conn["remote_addrs"]) == (["192.168.10.11"], ["203.0.113.21"])
    assert conn["proposals"] == ["aes128gcm16-prfsha256-x25519"]
    assert (conn["dpd_delay"], conn["rekey_time"]) == ("5s", "600s")
    assert child["local_ts"] == ["10.11.1.0/24", "fd11::/64"]
    assert child["remote_ts"] == ["10.12.0.0/16"]
    assert (child["mode"], child["esp_proposals"], child["rekey_time"]) == (
        "tunnel",
        ["aes128gcm16"],
        "60s",
    )
    assert PSK not in repr(conn).encode()


def test_shared_message_gives_the_key_to_both_identities():
    assert shared_message(spec()) == {
        "id": "to-b",
        "type": "IKE",
        "data": PSK,
        "owners": ["203.0.113.11", "203.0.113.21"],
    }


def test_vici_messages_by_name_and_no_duplicates():
    conns, shared = vici_messages([spec(), spec(name="to-c")], LIBIPSEC)
    assert sorted(conns) == sorted(shared) == ["to-b", "to-c"]
    with pytest.raises(InvalidTunnel, match="twice"):
        vici_messages([spec(), spec()], LIBIPSEC)


@pytest.mark.parametrize(
    ("backend", "load"),
    [
        ("libipsec", "random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici"),
        ("kernel", "random nonce openssl kdf kernel-netlink socket-default vici"),
    ],
)
def test_strongswan_conf_per_backend(backend, load):
    text = strongswan_conf(IpsecSettings(backend), Path("/run/kosmos/ipsec"))
    assert f"    load = {load}\n" in text
    assert "load_modular = no" in text  # exactly these plugins, no /etc/strongswan.d
    assert "routing_table = 220\n" in text and "routing_table_prio = 220\n" in text
    assert "socket = unix:///run/kosmos/ipsec/charon.vici" in text
    assert "path = /run/kosmos/ipsec/charon.log" in text
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize(
    ("changes", "same"),
    [
        ({}, True),
        ({"psk": bytes(range(1, 33))}, False),
        ({"remote_subnets": ("10.12.0.0/16",)}, False),
        ({"local_id": "203.0.113.12"}, False),
        ({"remote_address": "203.0.113.22"}, False),
    ],
)
def test_fingerprint_changes_with_what_charon_was_told(changes, same):
    assert (fingerprint(spec(**changes), LIBIPSEC) == fingerprint(spec(), LIBIPSEC)) is same
    assert PSK.hex() not in fingerprint(spec(), LIBIPSEC)


def test_fingerprint_changes_with_settings():
    kernel = IpsecSettings("kernel")
    assert fingerprint(spec(), kernel) == fingerprint(spec(), IpsecSettings("kernel"))
    assert fingerprint(spec(), kernel) != fingerprint(spec(), IpsecSettings("kernel", dpd_delay=5))


def sa(state=b"ESTABLISHED", child=b"INSTALLED", uniqueid=b"3"):
    """One list-sa event as the vici package yields it (values are bytes)."""
    children = {}
    if child:
        children["to-b-1"] = {
            "state": child,
            "local-ts": [b"10.11.1.0/24"],
            "remote-ts": [b"10.12.1.0/24"],
        }
    return {
        "to-b": {
            "uniqueid": uniqueid,
            "state": state,
            "local-host": b"192.168.10.11",
            "remote-host": b"203.0.113.21",
            "nat-any": b"yes",
            "child-sas": children,
        }
    }


@pytest.mark.parametrize(
    ("events", "up", "detail"),
    [
        ([], False, "no IKE SA (the peer initiates)"),
        (
            [sa()],
            True,
            "IKE ESTABLISHED ike#3 192.168.10.11->203.0.113.21 NAT-T; "
            "CHILD INSTALLED 10.11.1.0/24 === 10.12.1.0/24",
        ),
        ([sa(child=None)], False, "no CHILD SA (the peer initiates)"),
        ([sa(state=b"CONNECTING", child=None)], False, "IKE CONNECTING"),
        ([sa(uniqueid=b"1", child=b"REKEYING"), sa(uniqueid=b"2")], True, "ike#2"),
        ([{"other": sa()["to-b"]}], False, "no IKE SA"),
    ],
)
def test_tunnel_state_summarises_list_sas(events, up, detail):
    state = tunnel_state("to-b", events, "the peer initiates")
    assert state.name == "to-b" and state.established is up
    assert detail in state.detail


# WireGuard: keys and the UAPI text.

RFC7748_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_public_key_matches_rfc7748():
    assert public_key_of(RFC7748_PRIVATE) == base64.b64encode(RFC7748_PUBLIC).decode()


def test_private_key_from_seed_is_deterministic_and_clamped():
    key = private_key_from_seed(b"seed of node a")
    assert key == private_key_from_seed(b"seed of node a") != private_key_from_seed(b"node b")
    assert len(key) == 32 and key[0] & 7 == 0 and key[31] & 0x80 == 0 and key[31] & 0x40


def test_preshared_key_is_derived_not_reused():
    derived = preshared_key(PSK)
    assert len(derived) == 32 and derived != PSK and derived == preshared_key(PSK)


PEER_KEY = base64.b64encode(RFC7748_PUBLIC).decode()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"remote_public_key": None}, "not known"),
        ({"remote_public_key": "not base64!"}, "not base64"),
        ({"remote_public_key": base64.b64encode(b"short").decode()}, "not 32 bytes"),
    ],
)
def test_peer_for_needs_a_valid_public_key(changes, says):
    with pytest.raises(InvalidTunnel, match=says):
        peer_for(spec(**changes), 51820, 25)


def test_peer_for_and_its_uapi_lines():
    peer = peer_for(spec(remote_public_key=PEER_KEY), 51820, 25)
    assert peer.public_key == RFC7748_PUBLIC.hex()
    assert peer.endpoint == "203.0.113.21:51820"
    assert peer.preshared_key == preshared_key(PSK).hex()
    assert peer_lines(peer, endpoint=True) == [
        f"public_key={RFC7748_PUBLIC.hex()}",
        f"preshared_key={preshared_key(PSK).hex()}",
        "endpoint=203.0.113.21:51820",
        "persistent_keepalive_interval=25",
        "replace_allowed_ips=true",
        "allowed_ip=10.12.1.0/24",
    ]
    assert "endpoint=203.0.113.21:51820" not in peer_lines(peer, endpoint=False)
    v6 = peer_for(spec(remote_public_key=PEER_KEY, remote_address="2001:db8::21"), 51820, 0)
    assert v6.endpoint == "[2001:db8::21]:51820"


def test_parse_peers_reads_a_uapi_get_answer():
    answer = (
        "private_key=" + "11" * 32 + "\nlisten_port=51820\n"
        f"public_key={'aa' * 32}\npreshared_key={'0' * 64}\nprotocol_version=1\n"
        "endpoint=203.0.113.21:51820\nlast_handshake_time_sec=1700000000\n"
        "last_handshake_time_nsec=5\ntx_bytes=10\nrx_bytes=20\n"
        "persistent_keepalive_interval=25\nallowed_ip=10.12.1.0/24\nallowed_ip=10.12.2.0/24\n"
        f"public_key={'bb' * 32}\npreshared_key={'cc' * 32}\nallowed_ip=10.13.0.0/16\nerrno=0\n"
    )
    device, peers = parse_peers(answer)
    assert device == {"private_key": "11" * 32, "listen_port": "51820"}
    assert peers["aa" * 32] == Peer(
        public_key="aa" * 32,
        endpoint="203.0.113.21:51820",
        allowed_ips=frozenset({"10.12.1.0/24", "10.12.2.0/24"}),
        preshared_key="",
        keepalive=25,
        last_handshake=1700000000,
        rx_bytes=20,
        tx_bytes=10,
    )
    assert peers["bb" * 32].preshared_key == "cc" * 32
    assert peers["bb" * 32].allowed_ips == frozenset({"10.13.0.0/16"})


def test_a_missing_plugin_is_named_with_its_package_before_charon_starts(tmp_path):
    for plugin in plugins_for("kernel"):
        (tmp_path / f"libstrongswan-{plugin}.so").touch()
    check_plugins("kernel", tmp_path)
    with pytest.raises(TunnelError) as caught:
        check_plugins("libipsec", tmp_path)
    assert "kernel-libipsec missing" in str(caught.value)
    assert "apt-get install libcharon-extra-plugins" in str(caught.value)
    (tmp_path / "libstrongswan-openssl.so").unlink()
    with pytest.raises(TunnelError, match="libstrongswan-standard-plugins"):
        check_plugins("kernel", tmp_path)
    check_plugins("libipsec", tmp_path / "linked-in")  # no plugin directory: not checked


@pytest.mark.parametrize(
    "daemon", [functools.partial(StrongSwan, backend="libipsec"), WireGuard], ids=["ipsec", "wg"]
)
def test_a_run_dir_under_run_is_refused_before_a_daemon_hides_it(daemon, tmp_path):
    """The daemon's private /run would hide its own configuration and sockets there."""
    with pytest.raises(TunnelError, match="under /run"):
        daemon(netns=None, run_dir=Path("/run/kosmos-agent/x"))
    if Path("/var/run").resolve() == Path("/run"):  # the symlink Debian has
        with pytest.raises(TunnelError, match="under /run"):
            daemon(netns=None, run_dir=Path("/var/run/kosmos-agent/x"))
    assert daemon(netns=None, run_dir=tmp_path / "x").run_dir == tmp_path / "x"


async def test_a_named_backend_is_taken_without_asking_the_kernel():
    assert await choose_backend("kernel", "no-such-netns") == "kernel"
    assert await choose_backend("libipsec", "no-such-netns") == "libipsec"
