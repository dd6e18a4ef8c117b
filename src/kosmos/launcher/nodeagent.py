"""``kosmos node-agent``: the node-agent server over a node backend, until SIGTERM.

The server (:mod:`kosmos.nodeagent.server`) knows no node; the backend does what the
operations mean on one. This top layer composes them, since the only backend so far (the
local environment's real nodes, ``--backend local``) lives in ``kosmos.local``, which a
component never imports. The backend's module is imported only when chosen.

Everything the agent needs is checked before it listens: credentials that cannot be read, an
empty token or a busy port end the command with a message naming the cause.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import ssl
from pathlib import Path

import click

from kosmos.api import nodeagent as api
from kosmos.kube import logs
from kosmos.nodeagent import server

BACKENDS = ("local",)
_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets: ``[::1]:10270``) -> ``(host, port)``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # "[not-an-address]": the error names it
    elif ":" in host:
        raise ValueError(f"--listen: put an IPv6 address in brackets ([{host}]:{port})")
    return host, int(port)


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace dropped); empty is an error, since
    an empty token would let every client with a certificate in."""
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def backend_for(name: str, node_dir: Path | None) -> api.NodeBackend:
    """The backend ``name`` names, over its node directory."""
    if name != "local":
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    if node_dir is None:
        raise ValueError("--backend local needs --node-dir (the node's directory)")
    if not node_dir.is_dir():
        raise ValueError(f"--node-dir {node_dir} is not a directory")
    # by name: imported only when chosen (and kosmos.local.nodes.agent is another branch's
    # until merged; then a plain import inside this function does the same)
    module = importlib.import_module("kosmos.local.nodes.agent")
    backend: api.NodeBackend = module.LocalBackend(node_dir)
    return backend


def _tls(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """The agent's TLS context; OpenSSL's own errors ("PEM lib") name no file, this does."""
    try:
        return server.ssl_context(cert, key, client_ca)
    except ssl.SSLError as exc:
        files = f"--tls-cert {cert}, --tls-key {key}, --client-ca {client_ca}"
        raise ValueError(f"cannot load the TLS files ({files}): {exc}") from exc


@click.command(name="node-agent", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--listen",
    default=f"0.0.0.0:{api.PORT}",
    show_default=True,
    help="HOST:PORT to serve on (an IPv6 host in brackets).",
)
@click.option("--tls-cert", type=_FILE, required=True, help="The agent's serving certificate.")
@click.option("--tls-key", type=_FILE, required=True, help="Its private key.")
@click.option(
    "--client-ca",
    type=_FILE,
    required=True,
    help="The agents' CA: clients must present a certificate it signed.",
)
@click.option(
    "--token-file",
    type=_FILE,
    required=True,
    help="The bearer token every request must carry (read at start).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="local",
    show_default=True,
    help="What drives the node: local = a real node of the local environment.",
)
@click.option(
    "--node-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The local backend's node directory.",
)
@click.option("-v", "--verbose", count=True, help="-v: log state reads too.")
@logs.option()
def command(  # noqa: PLR0917 - click passes every option by name
    listen: str,
    tls_cert: Path,
    tls_key: Path,
    client_ca: Path,
    token_file: Path,
    backend: str,
    node_dir: Path | None,
    verbose: int,
    log_format: str,
) -> None:
    """Re-point this node's kubelet for kubenest: GET /v1/state, POST /v1/join, POST
    /v1/leave over mutual TLS with a bearer token."""
    # The components' output (kosmos.kube.logs), without the apiserver client: the agent
    # never talks to one.
    logs.configure(logging.DEBUG if verbose else logging.INFO, log_format)
    try:
        host, port = parse_listen(listen)
        token = read_token(token_file)
        context = _tls(tls_cert, tls_key, client_ca)
        agent = server.Agent(backend_for(backend, node_dir), token)  # the backend last
    except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError
        raise click.ClickException(str(exc)) from exc
    try:
        asyncio.run(server.serve(agent, host, port, context))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc}") from exc
