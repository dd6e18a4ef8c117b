"""The operator's side of the node-agent: the three calls, over mutual TLS with the token.

The credentials are the host's Secret ``kube-system/kosmos-node-agent`` (the agents' CA,
the operator's client pair, the token: :mod:`kosmos.api.nodeagent`). They are read when the
first call needs them and read again after a call fails, so a rotated Secret is picked up
without a restart. An agent is addressed by its node's IP (the GlobalNode's ``nodeIP``), the
name its serving certificate carries.
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import aiohttp

from kosmos.api import nodeagent
from kosmos.api.addresses import join_host_port
from kosmos.api.resources import SECRETS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.kube.tls import client_ssl_context

TIMEOUT = 120.0  # a join restarts kubelet and kube-proxy and waits for them to stay up


class AgentError(RuntimeError):
    """A node-agent could not be asked, or refused: the message says which node and why."""


class AgentClient:
    def __init__(self, host: Client, *, port: int = nodeagent.PORT) -> None:
        self.host = host
        self.port = port
        self._session: aiohttp.ClientSession | None = None
        self._token = ""
        self._context: ssl.SSLContext | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def state(self, address: str) -> nodeagent.State:
        return await self._call("GET", address, nodeagent.STATE_PATH, None)

    async def join(self, address: str, join: nodeagent.Join) -> nodeagent.State:
        return await self._call("POST", address, nodeagent.JOIN_PATH, join.to_body())

    async def leave(self, address: str) -> nodeagent.State:
        return await self._call("POST", address, nodeagent.LEAVE_PATH, {})

    async def _call(
        self, method: str, address: str, path: str, body: dict[str, Any] | None
    ) -> nodeagent.State:
        context, token = await self._credentials()
        url = f"https://{join_host_port(address, self.port)}{path}"
        try:
            async with self._http().request(
                method,
                url,
                json=body,
                ssl=context,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as exc:
            self._context = None  # maybe rotated: read the Secret again next time
            raise AgentError(f"node-agent at {address}: {exc or type(exc).__name__}") from exc
        return _answer(address, path, status, text)

    async def _credentials(self) -> tuple[ssl.SSLContext, str]:
        if self._context is not None:
            return self._context, self._token
        try:
            secret = await self.host.get(SECRETS, nodeagent.SECRET_NAME, nodeagent.SECRET_NAMESPACE)
        except NotFound:
            raise AgentError(
                f"Secret {nodeagent.SECRET_NAMESPACE}/{nodeagent.SECRET_NAME} is missing: "
                "real nodes cannot be moved without their node-agents' credentials"
            ) from None
        except KubeError as error:
            raise AgentError(f"reading the node-agent Secret: {error}") from error
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        wanted = (
            nodeagent.SECRET_CA,
            nodeagent.SECRET_CERT,
            nodeagent.SECRET_KEY,
            nodeagent.SECRET_TOKEN,
        )
        missing = [key for key in wanted if not data.get(key)]
        if missing:
            raise AgentError(f"the node-agent Secret lacks {', '.join(missing)}")
        try:
            context = client_ssl_context(
                data[nodeagent.SECRET_CA], data[nodeagent.SECRET_CERT], data[nodeagent.SECRET_KEY]
            )
        except (ssl.SSLError, ValueError) as exc:
            raise AgentError(f"the node-agent Secret's certificates: {exc}") from exc
        self._context, self._token = context, data[nodeagent.SECRET_TOKEN].decode().strip()
        return context, self._token

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session


def _answer(address: str, path: str, status: int, text: str) -> nodeagent.State:
    """The state an agent answered, or :class:`AgentError` with its error message."""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    if status != 200:
        detail = body.get("error") if isinstance(body, dict) else None
        raise AgentError(f"node-agent at {address} {path}: HTTP {status}: {detail or text[:200]}")
    try:
        return nodeagent.parse_state(body)
    except nodeagent.BadRequest as exc:
        raise AgentError(f"node-agent at {address} {path}: {exc}") from exc
