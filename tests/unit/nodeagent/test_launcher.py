"""``kosmos node-agent``: its flags, the checks before it listens, and a run until SIGTERM
(over the fake backend: the local one is the local environment's)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from kosmos.api import nodeagent as api
from kosmos.launcher import cli
from kosmos.launcher import nodeagent as launcher
from tests.unit.nodeagent.fakes import TOKEN, Pki

ROOT = Path(__file__).parents[3]
SRC = str(Path(launcher.__file__).parents[2])


@pytest.mark.parametrize(
    "value,expected",
    [
        ("0.0.0.0:10270", ("0.0.0.0", 10270)),
        ("172.18.0.3:1", ("172.18.0.3", 1)),
        ("[::1]:10270", ("::1", 10270)),
        ("node-1:65535", ("node-1", 65535)),
    ],
)
def test_listen_is_host_and_port(value: str, expected: tuple[str, int]):
    assert launcher.parse_listen(value) == expected


@pytest.mark.parametrize(
    "value", ["10270", ":10270", "host:", "host:0", "host:65536", "host:x", "::1:10270", "[zz]:1"]
)
def test_a_bad_listen_is_refused(value: str):
    with pytest.raises(ValueError):
        launcher.parse_listen(value)


def test_the_token_is_read_without_surrounding_whitespace(tmp_path: Path):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert launcher.read_token(path) == TOKEN
    path.write_text(" \n")
    with pytest.raises(ValueError, match="is empty"):
        launcher.read_token(path)


def test_the_backend_is_checked_before_it_is_built(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown backend"):
        launcher.backend_for("remote", tmp_path)
    with pytest.raises(ValueError, match="needs --node-dir"):
        launcher.backend_for("local", None)
    with pytest.raises(ValueError, match="is not a directory"):
        launcher.backend_for("local", tmp_path / "missing")


def _args(pki: Pki, token: Path, *extra: str) -> list[str]:
    files = pki.files
    return [
        "node-agent",
        "--tls-cert", str(files["agent.crt"]),
        "--tls-key", str(files["agent.key"]),
        "--client-ca", str(files["ca.crt"]),
        "--token-file", str(token),
        *extra,
    ]  # fmt: skip


def test_the_launcher_knows_the_node_agent():
    result = CliRunner().invoke(cli, ["node-agent", "--help"])
    assert result.exit_code == 0, result.output
    assert "--token-file" in result.output
    assert f"0.0.0.0:{api.PORT}" in result.output


@pytest.mark.parametrize(
    "token,extra,message",
    [
        ("", ["--node-dir", "."], "is empty"),
        (TOKEN, ["--backend", "remote"], "Invalid value for '--backend'"),
        (TOKEN, [], "needs --node-dir"),
        (TOKEN, ["--node-dir", ".", "--listen", "10270"], "--listen must be HOST:PORT"),
    ],
)
def test_bad_settings_end_the_command_before_it_listens(
    pki: Pki, tmp_path: Path, token: str, extra: list[str], message: str
):
    path = tmp_path / "token"
    path.write_text(token)
    result = CliRunner().invoke(cli, _args(pki, path, *extra))
    assert result.exit_code != 0
    assert message in result.output


def test_a_key_that_is_not_one_is_a_clear_error(pki: Pki, tmp_path: Path):
    token, bad = tmp_path / "token", tmp_path / "bad.key"
    token.write_text(TOKEN)
    bad.write_text("not a key")
    args = _args(pki, token, "--node-dir", str(tmp_path))
    args[args.index("--tls-key") + 1] = str(bad)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert f"cannot load the TLS files (--tls-cert {pki.files['agent.crt']}" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: the command with the fake backend in place of the local one
_RUN_FAKE = (
    "import sys\n"
    "from kosmos.launcher import nodeagent\n"
    "from tests.unit.nodeagent.fakes import FakeBackend\n"
    "nodeagent.backend_for = lambda name, node_dir: FakeBackend()\n"
    "nodeagent.command(sys.argv[1:], prog_name='node-agent')\n"
)


def _state(pki: Pki, port: int) -> bytes:
    context = pki.context()
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{api.STATE_PATH}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        return bytes(response.read())


def test_command_serves_until_sigterm_and_exits_0(pki: Pki, tmp_path: Path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    port = _free_port()
    args = _args(pki, token, "--listen", f"127.0.0.1:{port}", "--node-dir", str(tmp_path))[1:]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_FAKE, *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"node-agent on 127.0.0.1:{port}" in line, line
        assert b'"node": "node-1"' in _state(pki, port)
        with pytest.raises((ssl.SSLError, OSError)):
            context = pki.context(client=None)
            urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=5)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5.0
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_port_is_a_clear_error(pki: Pki, tmp_path: Path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = _args(pki, token, "--listen", f"127.0.0.1:{port}", "--node-dir", str(tmp_path))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(ROOT)])}
        done = subprocess.run(
            [sys.executable, "-c", _RUN_FAKE, *args[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
