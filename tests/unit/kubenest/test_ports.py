"""Port allocation: lowest free ports, never two tenants on one port, kept across calls."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kosmos.kubenest import ports
from kosmos.kubenest.ports import PortsExhausted


def test_choose_skips_taken_and_busy() -> None:
    chosen = ports.choose(["a", "b", "c"], (100, 110), {100, 102}, lambda p: p != 103)
    assert chosen == {"a": 101, "b": 104, "c": 105}


def test_choose_exhausted_names_the_range() -> None:
    with pytest.raises(PortsExhausted, match=r"100-102 has no free port left for c"):
        ports.choose(["a", "b", "c"], (100, 102), {101}, lambda p: True)


def test_allocate_records_and_keeps(tmp_path: Path) -> None:
    tenant = tmp_path / "ns_a"
    first = ports.allocate(tmp_path, tenant, ["x", "y"], (21090, 21099))
    assert len(set(first.values())) == 2
    assert json.loads((tenant / "ports.json").read_text()) == first
    assert ports.allocate(tmp_path, tenant, ["x", "y"], (21090, 21099)) == first
    grown = ports.allocate(tmp_path, tenant, ["x", "y", "z"], (21090, 21099))
    assert {k: grown[k] for k in first} == first and grown["z"] not in first.values()


def test_two_tenants_never_share(tmp_path: Path) -> None:
    a = ports.allocate(tmp_path, tmp_path / "ns_a", ["x", "y"], (21090, 21099))
    b = ports.allocate(tmp_path, tmp_path / "ns_b", ["x", "y"], (21090, 21099))
    assert not set(a.values()) & set(b.values())
    assert ports.taken_ports(tmp_path) == set(a.values()) | set(b.values())
    assert ports.taken_ports(tmp_path, but=tmp_path / "ns_a") == set(b.values())


def test_bound_port_is_skipped(tmp_path: Path) -> None:
    # a busy port whose successor is free (other processes may hold the next ephemeral one)
    for _ in range(50):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            if not ports.bindable(port + 1):
                continue
            assert not ports.bindable(port)
            chosen = ports.allocate(tmp_path, tmp_path / "t", ["x"], (port, port + 1))
            assert chosen == {"x": port + 1}
            return
    raise AssertionError("no busy port with a free successor in 50 tries")


def test_unreadable_ports_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "ports.json").write_text("[1, 2]")
    assert ports.read_ports(tmp_path) == {}
    (tmp_path / "ports.json").write_text('{"a": 1, "b": "2", "c": true}')
    assert ports.read_ports(tmp_path) == {"a": 1}
