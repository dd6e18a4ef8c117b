"""An in-memory apiserver for the kubenest reconcilers' unit tests: get, list, create,
merge patch (resourceVersion checked, status only through the subresource), delete; plus
an informer stand-in and an event recorder that keeps what it is told."""

from __future__ import annotations

import base64
import copy
import itertools
from collections.abc import Callable
from typing import Any

from kosmos.api.objects import Obj
from kosmos.api.resources import Resource
from kosmos.kube.client import ObjectList
from kosmos.kube.errors import AlreadyExists, Conflict, KubeError, NotFound


def merge(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 JSON merge patch."""
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeClient:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.log: list[tuple[str, str, str]] = []
        self._versions = itertools.count(1)
        #: (verb, resource plural) -> error raised instead of doing it
        self.fail: dict[tuple[str, str], KubeError] = {}

    def _key(self, resource: Resource, name: str, namespace: str | None) -> tuple[str, str, str]:
        return (resource.plural, namespace or "" if resource.namespaced else "", name)

    def _check(self, verb: str, resource: Resource) -> None:
        error = self.fail.get((verb, resource.plural))
        if error is not None:
            raise error

    def add(self, resource: Resource, obj: Obj) -> Obj:
        obj = copy.deepcopy({"apiVersion": resource.api_version, "kind": resource.kind, **obj})
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[self._key(resource, meta["name"], meta.get("namespace"))] = obj
        return copy.deepcopy(obj)

    def find(self, resource: Resource, name: str, namespace: str | None = None) -> Obj | None:
        return self.objects.get(self._key(resource, name, namespace))

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        self._check("get", resource)
        found = self.find(resource, name, namespace)
        if found is None:
            raise NotFound(self.name, f"{resource.plural} {name} not found")
        return copy.deepcopy(found)

    async def list(self, resource: Resource, namespace: str | None = None, **_: Any) -> ObjectList:
        items = [
            copy.deepcopy(o)
            for (plural, ns, _n), o in sorted(self.objects.items())
            if plural == resource.plural and (not namespace or ns == namespace)
        ]
        return ObjectList(items, "1")

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        self._check("create", resource)
        meta = body["metadata"]
        if self.find(resource, meta["name"], namespace or meta.get("namespace")):
            raise AlreadyExists(self.name, f"{meta['name']} exists")
        self.log.append(("create", resource.plural, meta["name"]))
        body = {k: v for k, v in body.items() if k != "status"}  # a create drops status
        if "stringData" in body:
            data = {k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()}
            body = {**{k: v for k, v in body.items() if k != "stringData"}, "data": data}
        return self.add(resource, body)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Obj,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        **_: Any,
    ) -> Obj:
        self._check("patch", resource)
        current = self.find(resource, name, namespace)
        if current is None:
            raise NotFound(self.name, f"{resource.plural} {name} not found")
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(self.name, f"{name}: version conflict")
        patch = copy.deepcopy(patch)
        (patch.get("metadata") or {}).pop("resourceVersion", None)
        if subresource == "status":
            patch = {"status": patch.get("status")}
        else:
            patch.pop("status", None)
        if "stringData" in patch:
            encoded = {
                k: base64.b64encode(v.encode()).decode() for k, v in patch.pop("stringData").items()
            }
            patch["data"] = encoded
        self.log.append(
            ("patch" + (f"/{subresource}" if subresource else ""), resource.plural, name)
        )
        merged = merge(current, patch)
        if merged["metadata"].get("deletionTimestamp") and not merged["metadata"].get("finalizers"):
            del self.objects[self._key(resource, name, namespace)]
            return merged
        return self.add(resource, merged)

    async def apply(self, resource: Resource, body: Obj, **_: Any) -> Obj:
        self._check("apply", resource)
        self.log.append(("apply", resource.plural, body["metadata"]["name"]))
        return self.add(resource, body)

    async def request(self, method: str, path: str, *, what: str, body: Any = None) -> Any:
        """Only what kubenest posts: a pod's eviction, which deletes the pod here."""
        namespace, _, rest = path.partition("/namespaces/")[2].partition("/pods/")
        name, _, sub = rest.partition("/")
        assert (method, sub) == ("POST", "eviction"), path
        self.log.append(("evict", "pods", name))
        del self.objects[("pods", namespace, name)]

    async def delete(
        self, resource: Resource, name: str, namespace: str | None = None, **_: Any
    ) -> None:
        self._check("delete", resource)
        key = self._key(resource, name, namespace)
        if key not in self.objects:
            raise NotFound(self.name, f"{name} not found")
        self.log.append(("delete", resource.plural, name))
        del self.objects[key]


class FakeStore:
    def __init__(self, items: Callable[[], list[Obj]]) -> None:
        self._items = items

    def list(self) -> list[Obj]:
        return self._items()


class FakeInformer:
    """An informer whose cache is always up to date with ``client``'s ``resource``."""

    def __init__(self, client: FakeClient, resource: Resource) -> None:
        self.store = FakeStore(
            lambda: [
                copy.deepcopy(o)
                for (p, _ns, _n), o in client.objects.items()
                if p == resource.plural
            ]
        )


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    async def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [r for _t, r, _m in self.events]
