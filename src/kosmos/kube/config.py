"""How to reach one cluster: server URL, TLS context and credentials.

kubeconfig parsing and authentication (client certificates, tokens, exec plugins, OIDC) are
delegated to kubernetes_asyncio's loaders, which track the upstream semantics; we only convert
their result into an ``ssl.SSLContext`` and an auth-header callback for our own aiohttp
transport. Three sources: a kubeconfig file (+ context), the in-cluster service account, and a
kubeconfig held in a Secret (how Kosmos reaches member clusters).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import ConfigException
from kubernetes_asyncio.config.incluster_config import load_incluster_config
from kubernetes_asyncio.config.kube_config import KubeConfigLoader

from kosmos.kube.errors import KubeconfigError

AuthHeaders = Callable[[], Awaitable[dict[str, str]]]
# kubernetes_asyncio writes inline certificates and keys of kubeconfigs here; the directory
# (private to us: mkdtemp makes it 0700) goes when the process exits.
_TEMP_DIR = tempfile.mkdtemp(prefix="kosmos-kubeconfig-")
atexit.register(shutil.rmtree, _TEMP_DIR, ignore_errors=True)


async def _no_auth() -> dict[str, str]:
    return {}


@dataclass
class ClusterConfig:
    """Everything the client needs for one cluster; ``name`` appears in every error."""

    name: str
    server: str
    ssl_context: ssl.SSLContext | None = None
    auth_headers: AuthHeaders = _no_auth
    qps: float = 50.0
    burst: int = 100
    extra: dict[str, Any] = field(default_factory=dict)


def _kubeconfig_path(path: str | Path | None) -> Path:
    return Path(path or os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()


async def from_kubeconfig(
    name: str, path: str | Path | None = None, context: str | None = None
) -> ClusterConfig:
    """Load a kubeconfig file (default ``$KUBECONFIG`` or ``~/.kube/config``)."""
    path = _kubeconfig_path(path)
    try:
        text = await asyncio.to_thread(path.read_text)
    except OSError as exc:
        raise KubeconfigError(name, f"kubeconfig {path}: {exc.strerror or exc}") from exc
    return await from_kubeconfig_text(name, text, context=context, origin=str(path))


async def from_kubeconfig_text(
    name: str, text: str | bytes, *, context: str | None = None, origin: str = "kubeconfig"
) -> ClusterConfig:
    """Load a kubeconfig given as text, e.g. the ``kubeconfig`` key of a member's Secret."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(name, f"{origin} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data.get("clusters"):
        raise KubeconfigError(name, f"{origin} has no clusters: not a kubeconfig")
    loader = KubeConfigLoader(
        config_dict=data, config_base_path=None, active_context=context, temp_file_path=_TEMP_DIR
    )
    configuration = Configuration()
    try:
        await loader.load_and_set(configuration)
    except (ConfigException, KeyError, ValueError, TypeError) as exc:
        raise KubeconfigError(name, f"{origin}: {exc}") from exc
    return _from_configuration(name, configuration)


async def for_component(name: str, kubeconfig: str | None, context: str | None) -> ClusterConfig:
    """A component's host: ``--kubeconfig`` if given, in-cluster in a pod, else the default file."""
    if kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return await from_kubeconfig(name, kubeconfig, context)
    return in_cluster(name)


def in_cluster(name: str) -> ClusterConfig:
    """The pod's own service account (token refreshed from the projected file)."""
    configuration = Configuration()
    try:
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise KubeconfigError(name, f"in-cluster config: {exc}") from exc
    return _from_configuration(name, configuration)


def _from_configuration(name: str, configuration: Configuration) -> ClusterConfig:
    server = str(configuration.host).rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(name, f"server {server!r} is not an http(s) URL")
    context = None
    if server.startswith("https://"):
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)

    async def auth_headers() -> dict[str, str]:
        token = await configuration.get_api_key_with_prefix("BearerToken")
        if token:
            return {"Authorization": token}
        if configuration.username and configuration.password:
            return {"Authorization": configuration.get_basic_auth_token()}
        return {}

    return ClusterConfig(name=name, server=server, ssl_context=context, auth_headers=auth_headers)
