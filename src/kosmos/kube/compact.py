"""Structural sharing for cached objects: equal subtrees of different objects are one object.

Pods of one workload repeat most of their bytes: the same containers' env, ports and
resources, the same tolerations, volume sources and owner references, the same label values,
image names and condition types. Decoded JSON gives every pod its own copy of each;
``Sharer`` keeps one canonical instance of each equal subtree (hash-consing: a subtree's
entry is the hash of its JSON, confirmed by comparing on a hit) and hands every cached
object that instance instead.

Safe because cached objects are read-only by convention (every controller copies before it
changes anything: ``podforge`` and ``member_status`` deep-copy). A subtree holding a value
unique to one object (its uid, resourceVersion, a timestamp, its IPs) is never entered in the
table: it could not be shared and would only cost an entry; equal unique strings inside one
object (a pod's conditions share a transition time) are still made one. The table forgets
entries no cached object uses any more in a sweep that runs when it has doubled since the
last one, so its size follows what is cached, not what ever was.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

import orjson

from kosmos.api.objects import Obj
from kosmos.kube.informer import strip_bulk

#: an object's own metadata fields that no other object has: never in the table
UNIQUE_METADATA = frozenset(
    {"name", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"}
)
#: values under these keys, anywhere, belong to one object or one instant: never in the table
UNIQUE_KEYS = frozenset(
    {
        "lastTransitionTime",
        "lastHeartbeatTime",
        "lastProbeTime",
        "startTime",
        "startedAt",
        "finishedAt",
        "containerID",
        "podIP",
        "podIPs",
        "renewTime",
        "acquireTime",
    }
)
#: subtrees under these keys mix per-object values with shared ones: their parts are shared,
#: they themselves are not looked up (a lookup that cannot hit would cost a serialization)
PER_OBJECT = frozenset(
    {"status", "conditions", "containerStatuses", "initContainerStatuses", "metadata"}
)
#: a sweep never runs on a table smaller than this (not worth its pass)
MIN_SWEEP = 4096


class Sharer:
    """A transform (``Informer(transform=...)``): ``strip_bulk``, then share equal subtrees
    with every object this instance saw before. One instance serves every informer whose
    objects look alike (a process's host and member pods)."""

    def __init__(self, min_sweep: int = MIN_SWEEP) -> None:
        self._table: dict[Hashable, Any] = {}
        self._min_sweep = min_sweep
        self._next_sweep = min_sweep
        self._local: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._table)

    def __call__(self, obj: Obj) -> Obj:
        obj = strip_bulk(obj)
        self._local = {}
        for key, value in obj.items():  # the object itself is unique: only its parts
            if key == "metadata" and type(value) is dict:
                for k, v in value.items():
                    value[k] = self._own(v) if k in UNIQUE_METADATA else self._share(v, k)[0]
            else:
                obj[key] = self._share(value, key)[0]
        self._local = {}
        if len(self._table) > self._next_sweep:
            self.sweep()
        return obj

    def _own(self, value: Any) -> Any:
        """A value of this object only: one instance per object for equal strings."""
        return self._local.setdefault(value, value) if type(value) is str else value

    def _share(self, value: Any, key: str) -> tuple[Any, bool]:
        """The canonical instance of ``value`` and whether it may be shared at all.

        Top-down: a subtree equal to one already in the table is replaced whole (its
        entry is the hash of its JSON, confirmed by comparing); only a miss descends, so
        the common case (an update that kept its spec, a sibling pod) costs one
        serialization, not a walk."""
        kind = type(value)
        if kind is str:
            if key in UNIQUE_KEYS:
                return self._own(value), False
            return self._table.setdefault(value, value), True
        if kind is not dict and kind is not list:
            return value, key not in UNIQUE_KEYS
        if key in UNIQUE_KEYS:
            return value, False
        entry = None
        if key not in PER_OBJECT:
            entry = hash(orjson.dumps(value))
            found = self._table.get(entry)
            if found is not None and found == value:
                return found, True
        shareable = True
        pairs = value.items() if kind is dict else enumerate(value)
        for k, v in pairs:
            canonical, ok = self._share(v, k if type(k) is str else key)
            if canonical is not v:
                value[k] = canonical  # a fresh decode: ours to rewrite
            shareable = shareable and ok
        if shareable and entry is not None:
            self._table.setdefault(entry, value)
        return value, shareable

    def sweep(self) -> int:
        """Forget canonical values only the table still holds; returns how many went.

        A parent holds its children, so passes repeat until one removes nothing."""
        removed = 0
        while True:
            gone = _unused(self._table)
            for k in gone:
                del self._table[k]
            removed += len(gone)
            if not gone:
                break
        self._next_sweep = max(self._min_sweep, 2 * len(self._table))
        return removed


def _counts(table: dict[Hashable, Any]) -> list[tuple[Hashable, bool, int]]:
    """Each entry's key, whether the key is the value, and the value's reference count."""
    return [(k, k is v, sys.getrefcount(v)) for k, v in table.items()]


def _calibrate() -> tuple[int, int]:
    """The reference counts ``_counts`` sees for a value only a table holds, for a value
    under a hash key and for a string keyed by itself (they differ by interpreter version,
    so they are measured, not assumed)."""
    text = "".join(["kosmos-", "probe"])
    table: dict[Hashable, Any] = {hash(text): {}, text: text}
    del text
    by_kind = {same: count for _, same, count in _counts(table)}
    return by_kind[False], by_kind[True]


_FLOOR_KEYED, _FLOOR_SELF = _calibrate()


def _unused(table: dict[Hashable, Any]) -> list[Hashable]:
    """Keys whose value nothing but ``table`` refers to."""
    return [
        k for k, same, count in _counts(table) if count <= (_FLOOR_SELF if same else _FLOOR_KEYED)
    ]
