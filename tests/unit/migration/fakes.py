"""An in-memory apiserver for the migration modules' unit tests: objects by resource, the
verbs collect and the store use, resourceVersions checked on replace, discovery documents."""

from __future__ import annotations

import itertools
from typing import Any

from kosmos.api.objects import Obj
from kosmos.api.resources import Resource
from kosmos.kube.client import ObjectList
from kosmos.kube.errors import AlreadyExists, Conflict, NotFound

_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class FakeClient:
    def __init__(self, discovery: dict[str, Any] | None = None) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.discovery = discovery or {}
        self.writes: list[tuple[str, str]] = []
        self._versions = itertools.count(1)

    def add(self, resource: Resource, obj: Obj) -> Obj:
        obj = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        meta = obj["metadata"]
        meta.setdefault("resourceVersion", str(next(self._versions)))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[(str(resource), meta.get("namespace") or "", meta["name"])] = obj
        return obj

    async def request(self, method: str, path: str, **_: Any) -> Any:
        if path not in self.discovery:
            raise NotFound("fake", f"{path} not found")
        return self.discovery[path]

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        try:
            return dict(self.objects[(str(resource), namespace or "", name)])
        except KeyError:
            raise NotFound("fake", f"{resource} {name} not found") from None

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        **_: Any,
    ) -> ObjectList:
        items = []
        for (res, ns, _name), obj in sorted(self.objects.items()):
            if res != str(resource) or (namespace and ns != namespace):
                continue
            labels = obj["metadata"].get("labels") or {}
            key, _, value = (label_selector or "").partition("=")
            if key and (key not in labels or (value and labels[key] != value)):
                continue
            items.append(dict(obj))
        return ObjectList(items, "1")

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        meta = body["metadata"]
        key = (str(resource), meta.get("namespace") or "", meta["name"])
        if key in self.objects:
            raise AlreadyExists("fake", f"{meta['name']} exists")
        self.writes.append(("create", meta["name"]))
        return self.add(resource, body)

    async def replace(self, resource: Resource, body: Obj) -> Obj:
        meta = body["metadata"]
        key = (str(resource), meta.get("namespace") or "", meta["name"])
        current = self.objects.get(key)
        if current is None:
            raise NotFound("fake", f"{meta['name']} not found")
        if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict("fake", f"{meta['name']}: version conflict")
        self.writes.append(("replace", meta["name"]))
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[key] = body
        return dict(body)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> None:
        key = (str(resource), namespace or "", name)
        if key not in self.objects:
            raise NotFound("fake", f"{name} not found")
        self.writes.append(("delete", name))
        del self.objects[key]


def resource_list(group_version: str, *entries: tuple[str, str, bool]) -> dict[str, Any]:
    """An APIResourceList: ``(name, kind, namespaced)`` with every verb."""
    return {
        "groupVersion": group_version,
        "resources": [
            {"name": n, "kind": k, "namespaced": ns, "verbs": list(_VERBS)} for n, k, ns in entries
        ],
    }
