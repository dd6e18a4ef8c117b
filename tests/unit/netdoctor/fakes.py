"""An in-memory cluster for netdoctor's unit tests: the verbs floater.py uses."""

from __future__ import annotations

import copy
from typing import Any

from kosmos.api.objects import Obj
from kosmos.api.resources import Resource
from kosmos.kube.client import ObjectList
from kosmos.kube.errors import AlreadyExists, NotFound


class FakeCluster:
    def __init__(self, name: str = "src") -> None:
        self.cluster = name
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.log: list[str] = []
        #: called on every get/list: lets a test move the cluster on (a controller's work)
        self.tick: Any = None

    def put(self, resource: Resource, obj: Obj) -> Obj:
        meta = obj["metadata"]
        meta.setdefault("generation", 1)
        self.objects[(str(resource), meta.get("namespace") or "", meta["name"])] = obj
        return obj

    def find(self, resource: Resource, name: str, namespace: str | None = None) -> Obj | None:
        return self.objects.get((str(resource), namespace or "", name))

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        if self.tick:
            self.tick(self)
        found = self.find(resource, name, namespace)
        if found is None:
            raise NotFound(self.cluster, f"{resource} {name} not found")
        return copy.deepcopy(found)

    async def list(
        self, resource: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> ObjectList:
        if self.tick:
            self.tick(self)
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if p)
        items = [
            copy.deepcopy(obj)
            for (res, ns, _), obj in sorted(self.objects.items())
            if res == str(resource)
            and (not namespace or ns == namespace)
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return ObjectList(items, "1")

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        meta = body["metadata"]
        if self.find(resource, meta["name"], meta.get("namespace")):
            raise AlreadyExists(self.cluster, f"{meta['name']} exists")
        self.log.append(f"create {resource.kind} {meta['name']}")
        return self.put(resource, copy.deepcopy(body))

    async def apply(self, resource: Resource, body: Obj, **_: Any) -> Obj:
        self.log.append(f"apply {resource.kind} {body['metadata']['name']}")
        return self.put(resource, copy.deepcopy(body))

    async def delete(
        self, resource: Resource, name: str, namespace: str | None = None, **_: Any
    ) -> None:
        key = (str(resource), namespace or "", name)
        if key not in self.objects:
            raise NotFound(self.cluster, f"{name} not found")
        self.log.append(f"delete {resource.kind} {name}")
        del self.objects[key]
        if resource.kind == "Namespace":  # the namespace controller empties it
            for other in [k for k in self.objects if k[1] == name]:
                del self.objects[other]
