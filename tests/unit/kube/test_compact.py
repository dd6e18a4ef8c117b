import copy
import gc

import orjson

from kosmos.kube.compact import Sharer


def decoded(obj: dict) -> dict:
    """A fresh decode, as an informer hands it to its transform."""
    return orjson.loads(orjson.dumps(obj))


def pod(name: str, uid: str, **extra: object) -> dict:
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "resourceVersion": "7",
            "labels": {"app": "web"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "uid": "rs-1"}],
            "managedFields": [{"manager": "x"}],
        },
        "spec": {"containers": [{"name": "app", "image": "img:1", "ports": [{"p": 80}]}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t1"}],
        },
        **extra,
    }


def test_equal_parts_are_one_object_and_values_are_unchanged() -> None:
    sharer = Sharer()
    a, b = pod("a", "u1"), pod("b", "u2")
    want_a = copy.deepcopy(a)
    del want_a["metadata"]["managedFields"]  # strip_bulk still applies
    got_a, got_b = sharer(decoded(a)), sharer(decoded(b))
    assert got_a == want_a
    assert got_a["spec"] is got_b["spec"]
    assert got_a["metadata"]["labels"] is got_b["metadata"]["labels"]
    assert got_a["metadata"]["ownerReferences"] is got_b["metadata"]["ownerReferences"]
    assert got_a["status"]["phase"] is got_b["status"]["phase"]
    assert got_a["status"] is not got_b["status"]  # per object: never looked up
    assert got_a["metadata"] is not got_b["metadata"]


def test_json_types_are_kept_apart() -> None:
    """true, 1 and 1.0 are equal in Python but not in JSON: never one shared value."""
    sharer = Sharer()
    objs = [
        sharer(decoded({"metadata": {"name": str(v)}, "spec": {"x": {"v": v}}}))
        for v in (True, 1, 1.0)
    ]
    assert [type(o["spec"]["x"]["v"]) for o in objs] == [bool, int, float]


def test_sweep_forgets_what_no_object_uses() -> None:
    sharer = Sharer()
    kept = sharer(decoded(pod("a", "u1")))
    gone = sharer(decoded(pod("b", "u2", extra={"only": ["in-b"]})))
    size = len(sharer)
    del gone
    gc.collect()
    assert sharer.sweep() > 0
    assert 0 < len(sharer) < size
    again = sharer(decoded(pod("c", "u3")))
    assert again["spec"] is kept["spec"]  # what a live object holds stays shared
    del kept, again
    gc.collect()
    sharer.sweep()
    assert len(sharer) == 0


def test_sweep_runs_when_the_table_doubled() -> None:
    sharer = Sharer(min_sweep=8)
    for i in range(50):  # each object's own image: nothing stays shared
        sharer(decoded({"metadata": {"name": f"p{i}"}, "spec": {"image": f"img:{i}"}}))
    assert len(sharer) <= 16
