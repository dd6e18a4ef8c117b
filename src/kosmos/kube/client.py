"""Async client for one cluster: raw JSON dicts over aiohttp, errors mapped at the boundary.

Why our own and not generated API classes: controllers watching many clusters spend their
CPU decoding objects, so we decode with orjson straight into dicts (no model objects), stream
watch events without line-length limits, and keep one connection pool, one client-side
rate limiter (QPS/burst, like client-go) and one error vocabulary per cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import orjson

from kosmos.api.objects import Obj
from kosmos.api.resources import Resource
from kosmos.kube import metrics
from kosmos.kube.clock import Clock, RealClock
from kosmos.kube.config import ClusterConfig
from kosmos.kube.errors import ApiError, ConnectError, KubeError, NotFound, from_status
from kosmos.kube.ratelimit import TokenBucket

PatchType = Literal["merge", "json", "strategic"]
_PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
_TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# Streams (followed logs, exec sessions) may stay quiet for hours: only connecting is bounded.
_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
_HANDSHAKE_TIMEOUT = 30.0  # like the kubelet's stream creation timeout


@dataclass
class ObjectList:
    items: list[Obj]
    resource_version: str


def _params(values: Mapping[str, object | None]) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if value is None or value is False:
            continue
        out[key] = "true" if value is True else str(value)
    return out


def _what(verb: str, resource: Resource, namespace: str | None, name: str | None) -> str:
    target = "/".join(p for p in (namespace, name) if p)
    return f"{verb} {resource}" + (f" {target}" if target else "")


class Client:
    """One cluster's apiserver. Create once per cluster; ``close()`` on shutdown."""

    def __init__(self, config: ClusterConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.cluster = config.name
        self._bucket = TokenBucket(config.qps, config.burst, clock or RealClock())
        self._session: aiohttp.ClientSession | None = None
        self._discovered: dict[tuple[str, str], Resource] = {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self.config.ssl_context if self.config.ssl_context else False, limit=0
            )
            self._session = aiohttp.ClientSession(base_url=self.config.server, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", **await self.config.auth_headers()}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, object | None] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = 60.0,
        accept: str | None = None,
    ) -> Any:
        """One rate-limited request; returns the decoded JSON body (None if empty)."""
        raw = await self._send(
            method,
            path,
            what=what,
            params=params,
            body=body,
            content_type=content_type,
            timeout=timeout,
            accept=accept,
        )
        return orjson.loads(raw) if raw else None

    async def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, object | None] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = 60.0,
        accept: str | None = None,
    ) -> bytes:
        """Rate limit, send, time, and map failures; the one path every request takes."""
        await self._bucket.acquire()
        data = orjson.dumps(body) if body is not None else None
        headers = await self._headers(content_type or ("application/json" if data else None))
        if accept:
            headers["Accept"] = accept
        started = time.monotonic()
        code = "error"
        try:
            async with self._http().request(
                method,
                path,
                params=_params(params or {}),
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                raw = await response.read()
                code = str(response.status)
        except _TRANSPORT_ERRORS as exc:
            raise ConnectError(
                self.cluster, f"{what}: cannot reach {self.config.server}: {_describe(exc)}"
            ) from exc
        finally:
            elapsed = time.monotonic() - started
            metrics.client_request_seconds.labels(self.cluster, method, code).observe(elapsed)
        if response.status >= 400:
            raise from_status(self.cluster, response.status, _status_body(raw), what)
        return raw

    # -- reads ---------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        path = resource.path(namespace, name)
        result: Obj = await self.request("GET", path, what=_what("get", resource, namespace, name))
        return result

    async def get_raw(self, path: str, *, timeout: float = 60.0) -> Any:
        """GET a non-resource path: ``/version`` decoded, ``/readyz`` and friends as text."""
        what = f"get {path}"
        if path.endswith(("/readyz", "/healthz", "/livez")):
            raw = await self._send("GET", path, what=what, accept="text/plain", timeout=timeout)
            return raw.decode()
        return await self.request("GET", path, what=what, timeout=timeout)

    async def get_text(self, path: str, *, timeout: float = 60.0) -> str:
        """GET a non-resource path as text (a node proxy's ``/metrics/resource``)."""
        raw = await self._send(
            "GET", path, what=f"get {path}", accept="text/plain", timeout=timeout
        )
        return raw.decode()

    async def table(
        self,
        resource: Resource,
        namespace: str | None = None,
        name: str | None = None,
        *,
        limit: int = 500,
    ) -> Obj:
        """The apiserver's own ``meta.k8s.io/v1`` Table of ``resource`` (as kubectl prints it).

        The server renders the columns (a CRD's printer columns, a built-in's printer), so a
        CLI shows exactly what ``kubectl get`` shows without re-implementing column logic.
        Pages of a list are merged into one Table; ``name`` asks for one object's row.
        """
        what = _what("get" if name else "list", resource, namespace, name)
        path = resource.path(namespace, name)
        merged: Obj | None = None
        cont: str | None = None
        while True:
            params = None if name else {"limit": limit, "continue": cont}
            page: Obj = await self.request("GET", path, what=what, params=params, accept=_TABLE)
            rows = page.get("rows") or []
            if merged is None:
                merged = {**page, "rows": rows}
            else:
                merged["rows"].extend(rows)
            cont = (page.get("metadata") or {}).get("continue")
            if name or not cont:
                return merged

    async def list_pages(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> AsyncIterator[ObjectList]:
        """Yield pages of a consistent paginated LIST; the last page's version is the list's."""
        cont: str | None = None
        what = _what("list", resource, namespace, None)
        while True:
            params = {
                "limit": limit,
                "continue": cont,
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
            }
            page = await self.request("GET", resource.path(namespace), what=what, params=params)
            items: list[Obj] = page.get("items") or []
            for item in items:
                item["apiVersion"] = resource.api_version
                item["kind"] = resource.kind
            meta = page.get("metadata", {})
            yield ObjectList(items, meta.get("resourceVersion", ""))
            cont = meta.get("continue")
            if not cont:
                return

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> ObjectList:
        items: list[Obj] = []
        version = ""
        async for page in self.list_pages(
            resource,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
        ):
            items.extend(page.items)
            version = page.resource_version
        return ObjectList(items, version)

    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        stall_timeout: float | None = None,
    ) -> AsyncIterator[Obj]:
        """Stream watch events (``{"type", "object"}``), bookmarks included.

        An ``ERROR`` event raises the mapped error (410 -> ``Gone``). No data for
        ``stall_timeout`` seconds (default: the server timeout plus 30 s) raises
        ``ConnectError``: a silently dead connection must not freeze a cache.
        """
        params = _params(
            {
                "watch": True,
                "allowWatchBookmarks": True,
                "resourceVersion": resource_version,
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "timeoutSeconds": timeout_seconds,
            }
        )
        what = _what("watch", resource, namespace, None)
        read_timeout = stall_timeout if stall_timeout is not None else timeout_seconds + 30
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        await self._bucket.acquire()
        try:
            async with self._http().get(
                resource.path(namespace),
                params=params,
                headers=await self._headers(None),
                timeout=timeout,
            ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise from_status(self.cluster, response.status, _status_body(raw), what)
                async for event in self._events(response, what):
                    yield event
        except _TRANSPORT_ERRORS as exc:
            raise ConnectError(self.cluster, f"{what}: stream broken: {_describe(exc)}") from exc

    async def _events(self, response: aiohttp.ClientResponse, what: str) -> AsyncIterator[Obj]:
        buffer = bytearray()
        async for chunk in response.content.iter_any():
            buffer.extend(chunk)
            start = 0
            while (end := buffer.find(b"\n", start)) >= 0:
                line = bytes(buffer[start:end])
                start = end + 1
                if not line.strip():
                    continue
                event: Obj = orjson.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise from_status(self.cluster, int(status.get("code", 500)), status, what)
                yield event
            del buffer[:start]

    # -- streams -------------------------------------------------------------------------

    async def stream(
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        subresource: str,
        params: Mapping[str, object | None] | None = None,
        *,
        timeout: aiohttp.ClientTimeout = _STREAM_TIMEOUT,
    ) -> aiohttp.ClientResponse:
        """GET a streaming subresource (``pods/log``); the open response, body unread.

        For proxies that must pass bytes through as they come with backpressure: the caller
        iterates ``response.content`` and must ``release()`` the response (``close()`` to
        drop the connection when it stops early). A failure status is read and raised as
        the usual typed ``ApiError``. No total timeout by default: a followed log is endless.
        """
        what = _what(subresource, resource, namespace, name)
        path = resource.path(namespace, name, subresource)
        await self._bucket.acquire()
        started = time.monotonic()
        code = "error"
        try:
            response = await self._http().get(
                path,
                params=_params(params or {}),
                headers=await self._headers(None),
                timeout=timeout,
            )
            code = str(response.status)
            if response.status >= 400:
                async with response:
                    raw = await response.read()
                raise from_status(self.cluster, response.status, _status_body(raw), what)
        except _TRANSPORT_ERRORS as exc:
            raise ConnectError(
                self.cluster, f"{what}: cannot reach {self.config.server}: {_describe(exc)}"
            ) from exc
        finally:
            elapsed = time.monotonic() - started
            metrics.client_request_seconds.labels(self.cluster, "GET", code).observe(elapsed)
        return response

    async def websocket(  # noqa: PLR0917 (the subresource coordinates, as in stream())
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        subresource: str,
        params: Sequence[tuple[str, str]],
        protocols: Sequence[str] = (),
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket on a subresource (``pods/exec``, ``attach``, ``portforward``).

        ``params`` is a list of pairs because ``command`` repeats, one pair per argv word.
        ``protocols`` are offered in order; ``response.protocol`` is the server's choice.
        Messages are unbounded in size (a proxy must not reject what the peer accepts); the
        handshake must finish within 30 s, the session then has no idle limit (the caller
        closes it). A refused handshake raises the typed ``ApiError`` with the server's message.

        No ``Accept`` header: a member apiserver passes the upgrade on to a kubelet that
        handles WebSockets itself (``ExtendWebSocketsToKubelet``), and the kubelet's
        ``portForward`` route answers ``Accept: application/json`` with 406 Not Acceptable
        (go-restful matches it against the route's produced types).
        """
        what = _what(subresource, resource, namespace, name)
        path = resource.path(namespace, name, subresource)
        await self._bucket.acquire()
        started = time.monotonic()
        code = "error"
        try:
            async with asyncio.timeout(_HANDSHAKE_TIMEOUT):
                ws = await self._http().ws_connect(
                    path,
                    params=list(params),
                    headers=await self.config.auth_headers(),
                    protocols=tuple(protocols),
                    max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
                )
            code = "101"
        except aiohttp.WSServerHandshakeError as exc:
            code = str(exc.status)
            if exc.status < 400:
                raise ConnectError(self.cluster, f"{what}: {exc.message}") from exc
            raise await self._handshake_error(path, params, exc.status, what) from exc
        except _TRANSPORT_ERRORS as exc:
            raise ConnectError(
                self.cluster, f"{what}: cannot reach {self.config.server}: {_describe(exc)}"
            ) from exc
        finally:
            elapsed = time.monotonic() - started
            metrics.client_request_seconds.labels(self.cluster, "GET", code).observe(elapsed)
        return ws

    async def _handshake_error(
        self, path: str, params: Sequence[tuple[str, str]], status: int, what: str
    ) -> ApiError:
        """The ``Status`` behind a refused WebSocket handshake.

        aiohttp drops the body of a non-101 handshake answer. The apiserver checks the pod,
        the container and permissions before it looks at the upgrade, and it never runs
        anything for a request that is not an upgrade, so the same URL as a plain GET
        answers with the same ``Status``. If it answers differently, the handshake's own
        status code is reported with a generic message.
        """
        fallback = from_status(self.cluster, status, None, what)
        await self._bucket.acquire()
        try:
            async with self._http().get(
                path,
                params=list(params),
                headers=await self._headers(None),
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                raw = await response.read()
        except _TRANSPORT_ERRORS:
            return fallback
        if response.status != status:
            return fallback
        return from_status(self.cluster, status, _status_body(raw), what)

    # -- writes --------------------------------------------------------------------------

    async def create(
        self, resource: Resource, body: Obj, namespace: str | None = None, *, dry_run: bool = False
    ) -> Obj:
        namespace = namespace or body.get("metadata", {}).get("namespace")
        what = _what("create", resource, namespace, body.get("metadata", {}).get("name"))
        params = {"dryRun": "All" if dry_run else None}
        result: Obj = await self.request(
            "POST", resource.path(namespace), what=what, params=params, body=body
        )
        return result

    async def replace(
        self, resource: Resource, body: Obj, *, subresource: str | None = None
    ) -> Obj:
        """PUT the whole object; ``metadata.resourceVersion`` makes it a compare-and-swap."""
        meta = body["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        verb = f"update {subresource}" if subresource else "update"
        path = resource.path(namespace, name, subresource)
        what = _what(verb, resource, namespace, name)
        result: Obj = await self.request("PUT", path, what=what, body=body)
        return result

    async def update_status(self, resource: Resource, body: Obj) -> Obj:
        return await self.replace(resource, body, subresource="status")

    async def apply(
        self,
        resource: Resource,
        body: Obj,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Server-side apply: declare the fields this manager owns (idempotent ensure)."""
        meta = body["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        params = {
            "fieldManager": field_manager,
            "force": force,
            "dryRun": "All" if dry_run else None,
        }
        result: Obj = await self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            what=_what("apply", resource, namespace, name),
            params=params,
            body=body,
            content_type="application/apply-patch+yaml",
        )
        return result

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> Obj:
        result: Obj = await self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            what=_what(f"patch ({patch_type})", resource, namespace, name),
            params={"fieldManager": field_manager},
            body=patch,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
        )
        return result

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: Literal["Foreground", "Background", "Orphan"] | None = None,
        grace_period_seconds: int | None = None,
    ) -> Obj | None:
        """Delete; ``uid``/``resource_version`` are preconditions (Conflict if they differ)."""
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        if any(preconditions.values()):
            options["preconditions"] = {k: v for k, v in preconditions.items() if v}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        result: Obj | None = await self.request(
            "DELETE",
            resource.path(namespace, name),
            what=_what("delete", resource, namespace, name),
            body=options,
        )
        return result

    # -- discovery -----------------------------------------------------------------------

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        """Find the REST resource of ``kind`` (built-in or CRD) through discovery."""
        key = (api_version, kind)
        if key not in self._discovered:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{api_version}" if group else f"/api/{api_version}"
            try:
                found = await self.request("GET", path, what=f"discover {api_version}")
            except NotFound as exc:
                raise KubeError(self.cluster, f"API {api_version} is not served") from exc
            for entry in found.get("resources", []):
                if "/" not in entry["name"]:
                    resource = Resource(
                        group, version, entry["name"], entry["kind"], entry["namespaced"]
                    )
                    self._discovered[(api_version, entry["kind"])] = resource
            if key not in self._discovered:
                raise KubeError(self.cluster, f"kind {kind} is not served by {api_version}")
        return self._discovered[key]


def _describe(exc: BaseException) -> str:
    """A short, human cause for a transport failure (no reprs of connection keys)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not trusted ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        return str(cause.strerror or cause)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "timed out"
    return str(exc) or type(exc).__name__


def _status_body(raw: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"message": raw.decode(errors="replace")[:500]}
    return body if isinstance(body, dict) else None
