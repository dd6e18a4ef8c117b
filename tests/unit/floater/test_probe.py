"""The UDP probe's exits and messages, and that it loads nothing beyond the standard library."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kosmos.floater import probe

SRC = str(Path(probe.__file__).parents[2])


@pytest.fixture
def silent():
    """A bound UDP socket that never answers."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
        yield sock


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_reply_is_exit_1_with_one_line(silent, capsys):
    port = silent.getsockname()[1]
    assert probe.main(["udp", "127.0.0.1", str(port), "--timeout", "0.2"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"udp 127.0.0.1:{port}: no reply within 0.2 s\n")


def test_ipv6_literal_with_or_without_brackets(silent, capsys):
    port = silent.getsockname()[1]
    for host in ("::1", "[::1]"):
        assert probe.main(["udp", host, str(port), "--timeout", "0.1"]) == 1
        assert capsys.readouterr().err == f"udp [::1]:{port}: no reply within 0.1 s\n"
        payload, peer = silent.recvfrom(100)
        assert payload == probe.PAYLOAD
        assert peer[0] == "::1"


def test_refused_names_the_os_error(capsys):
    port = _closed_port()
    assert probe.main(["udp", "127.0.0.1", str(port), "--timeout", "2"]) == 1
    assert capsys.readouterr().err == f"udp 127.0.0.1:{port}: Connection refused\n"


def test_reply_is_printed(capsys):
    # the probe blocks, so the echo answers from a child process
    child = subprocess.Popen(
        [sys.executable, "-c", _ECHO_ONCE],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    echo_port = int(child.stdout.readline())
    assert probe.main(["udp", "127.0.0.1", str(echo_port), "--timeout", "5"]) == 0
    assert capsys.readouterr().out == "echo kosmos-netdoctor\n"
    assert child.wait(timeout=5) == 0


_ECHO_ONCE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
data, peer = s.recvfrom(100)
s.sendto(b"echo " + data, peer)
"""


def test_imports_only_the_standard_library(silent):
    port = silent.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "kosmos.floater.probe",
            "udp",
            "127.0.0.1",
            str(port),
            "--timeout",
            "0.05",
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    imported = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    ours = {name for name in imported if name.split(".")[0] == "kosmos"}
    assert ours == {"kosmos", "kosmos.floater"}
    assert not imported & {"aiohttp", "click", "orjson", "asyncio"}
