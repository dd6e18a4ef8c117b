from kosmos.scheduler.ledger import Ledger


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def pod(uid, rv="1", node="", scheduled=None, deleting=False):
    meta = {"uid": uid, "resourceVersion": rv}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = {}
    if scheduled is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": scheduled}]
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def test_reserve_and_count_per_owner():
    ledger = Ledger()
    ledger.reserve("a", "rs", "c1", "1")
    ledger.reserve("b", "rs", "c2", "1")
    ledger.reserve("a", "rs", "c2", "2")  # a new attempt replaces the old one
    assert sorted(r.cluster for r in ledger.of_owner("rs")) == ["c2", "c2"]
    assert len(ledger) == 2


def test_binding_deletion_and_refusal_end_a_reservation():
    ledger = Ledger()
    handler = ledger.handler()
    for uid in "abcd":
        ledger.reserve(uid, "rs", "c1", "5")
    handler.on_update(pod("a"), pod("a", "6", node="kosmos-c1"))
    handler.on_update(pod("b"), pod("b", "6", deleting=True))
    handler.on_update(pod("c"), pod("c", "6", scheduled="False"))  # the attempt failed
    handler.on_update(pod("d"), pod("d", "5", scheduled="False"))  # the same version: keep
    assert [r.uid for r in ledger.of_owner("rs")] == ["d"]
    handler.on_delete(pod("d"))
    assert len(ledger) == 0


def test_reservations_expire():
    clock = Clock()
    ledger = Ledger(ttl=60, clock=clock)
    ledger.reserve("a", "rs", "c1", "1")
    clock.now = 61
    assert ledger.of_owner("rs") == []
    ledger.reserve("b", "rs", "c1", "1")
    clock.now = 200
    assert ledger.expire() == 1
