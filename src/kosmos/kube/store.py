"""An indexed in-memory cache of raw objects, keyed ``namespace/name`` (or ``name``).

Indexes map a value to the keys of the objects that produce it (by namespace, by owner UID,
or any function), so controllers answer "which pods use this Secret?" without scanning.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable

from kosmos.api.objects import Obj

IndexFunc = Callable[[Obj], Iterable[str]]


def object_key(obj: Obj) -> str:
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def by_namespace(obj: Obj) -> Iterable[str]:
    namespace = obj["metadata"].get("namespace")
    return [namespace] if namespace else []


def by_owner_uid(obj: Obj) -> Iterable[str]:
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences") or []]


class Store:
    """Objects by key plus secondary indexes, updated together."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._objects: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {"namespace": by_namespace, "owner": by_owner_uid}
        self._indexers.update(indexers or {})
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: str) -> bool:
        return key in self._objects

    def get(self, key: str) -> Obj | None:
        return self._objects.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._objects.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> builtins.list[str]:
        return [*self._objects]

    def list(self) -> builtins.list[Obj]:
        return [*self._objects.values()]

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        keys = self._indexes[index].get(value, ())
        return [self._objects[k] for k in keys]

    def index_values(self, index: str) -> builtins.list[str]:
        return [*self._indexes[index]]

    def upsert(self, obj: Obj) -> Obj | None:
        """Insert or replace; returns the previous object, if any."""
        key = object_key(obj)
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self._objects[key] = obj
        self._index(key, obj)
        return old

    def delete(self, key: str) -> Obj | None:
        old = self._objects.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index(self, key: str, obj: Obj) -> None:
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
