"""Who may call the leaf nodes' kubelet endpoint: the kubelet's webhook authn and authz.

Like a kubelet with ``authentication.webhook`` and ``authorization.mode: Webhook``
(``pkg/kubelet/server/auth.go``, v1.36):

* a client certificate signed by the client CA names the caller (CN user, O groups): the
  kube-apiserver's kubelet client certificate; otherwise
* a bearer token is checked with a TokenReview against the host apiserver (metrics-server
  and other readers present their ServiceAccount token); otherwise 401;
* every request is then authorized with a SubjectAccessReview on ``nodes/<subresource>``
  of the leaf node: ``stats`` for ``/stats/*``, ``metrics`` for ``/metrics/*``, ``pods`` then
  ``proxy`` for ``/pods``, ``proxy`` for everything else (logs, exec, port-forward), with the
  verb of the HTTP method (GET: get, POST: create); 403 naming what was missing otherwise.

Answers are cached as the kubelet does (tokens 2 min, allowed 5 min, denied 30 s).
``/healthz`` is open: it says nothing about pods.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kosmos.api.resources import SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError

OPEN_PATHS = frozenset({"/healthz"})
_TOKEN_TTL, _ALLOWED_TTL, _DENIED_TTL = 120.0, 300.0, 30.0
_VERBS = {"POST": "create", "GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _subpath(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def subresources(path: str) -> list[str]:
    """The ``nodes`` subresources a kubelet path is authorized as, in the order tried."""
    first = (
        ["pods"] if _subpath(path, "/pods") else ["healthz"] if _subpath(path, "/healthz") else []
    )
    for prefix, name in (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log")):
        if _subpath(path, prefix):
            return [*first, name]
    return [*first, "proxy"]


def verb(method: str) -> str:
    return _VERBS.get(method.upper(), "")


def user_of_certificate(peer: Mapping[str, Any]) -> User | None:
    """The caller a verified client certificate names (``ssl.getpeercert()``'s dict)."""
    name, groups = "", []
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    return User(name, tuple(groups)) if name else None


def user_of_review(review: Mapping[str, Any]) -> User | None:
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return None
    info = status.get("user") or {}
    extra = tuple(sorted((k, tuple(v)) for k, v in (info.get("extra") or {}).items()))
    return User(
        info.get("username", ""), tuple(info.get("groups") or ()), info.get("uid", ""), extra
    )


def access_review(user: User, verb_: str, subresource: str, node: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "user": user.name,
        "groups": list(user.groups),
        "resourceAttributes": {
            "verb": verb_,
            "resource": "nodes",
            "subresource": subresource,
            "name": node,
            "version": "v1",
        },
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


class _Cache:
    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if len(self._entries) > 4096:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)


class KubeletAuth:
    """The middleware: ``host`` answers the reviews, ``node_of`` names the leaf of a port."""

    def __init__(self, host: Client, node_of: Callable[[int], str | None]) -> None:
        self._host = host
        self._node_of = node_of
        self._tokens = _Cache()
        self._decisions = _Cache()

    async def _token_user(self, token: str) -> User | None:
        cached = self._tokens.get(token)
        if cached is not None:
            return cached or None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
        review = await self._host.create(TOKEN_REVIEWS, {**body, "spec": {"token": token}})
        user = user_of_review(review)
        self._tokens.put(token, user or False, _TOKEN_TTL)
        return user

    async def _allowed(self, user: User, verb_: str, subresource: str, node: str) -> bool:
        key = (user, verb_, subresource, node)
        cached = self._decisions.get(key)
        if cached is not None:
            return bool(cached)
        review = access_review(user, verb_, subresource, node)
        answer = await self._host.create(SUBJECT_ACCESS_REVIEWS, review)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._decisions.put(key, allowed, _ALLOWED_TTL if allowed else _DENIED_TTL)
        return allowed

    async def authenticate(self, request: web.Request) -> User | None:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport else None
        if peer and (user := user_of_certificate(peer)):
            return user
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return await self._token_user(token.strip())
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        try:
            user = await self.authenticate(request)
            if user is None:
                return web.Response(status=401, text="Unauthorized")
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            node = (self._node_of(int(sockname[1])) if sockname else None) or ""
            wanted = subresources(request.path)
            for subresource in wanted:
                if await self._allowed(user, verb(request.method), subresource, node):
                    return await handler(request)
        except KubeError as exc:
            return web.Response(status=500, text=f"cannot check the caller with the host: {exc}")
        words = " or ".join(f"nodes/{s}" for s in wanted)
        message = f"Forbidden (user={user.name}, verb={verb(request.method)}, resource={words})"
        return web.Response(status=403, text=message)
