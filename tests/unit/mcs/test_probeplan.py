"""The prober's decisions: targets, hysteresis, the annotation patch; and a round over fakes."""

import asyncio

import pytest

from kosmos.api import names
from kosmos.kube.controller import Request, Result
from kosmos.kube.store import Store
from kosmos.mcs import probe, probeplan
from kosmos.mcs.probeplan import Hysteresis

ADDR, DISC = names.ANNOTATION_ADDRESS, names.ANNOTATION_DISCONNECTED


def imp(addresses="10.0.0.2,10.0.0.1", ports=None, disconnected=None, name="web"):
    annotations = {ADDR: addresses}
    if disconnected is not None:
        annotations[DISC] = disconnected
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"type": "ClusterSetIP", "ports": ports or [{"port": 80, "protocol": "TCP"}]},
    }


def test_addresses_are_valid_ips_sorted_and_unique():
    text = " 10.0.0.2,bad,10.0.0.1,,10.0.0.2,fd00::1"
    assert probeplan.split_addresses(text) == ("10.0.0.1", "10.0.0.2", "fd00::1")
    assert probeplan.split_addresses(None) == ()


def test_first_tcp_port_skips_udp_and_defaults_protocol():
    ports = [{"port": 53, "protocol": "UDP"}, {"port": 8080}, {"port": 9090, "protocol": "TCP"}]
    assert probeplan.first_tcp_port(imp(ports=ports)) == 8080
    assert probeplan.first_tcp_port(imp(ports=[{"port": 53, "protocol": "UDP"}])) is None


def test_target_needs_a_tcp_port_and_an_address():
    assert probeplan.target(imp()) == probeplan.Target(
        "default", "web", 80, ("10.0.0.1", "10.0.0.2")
    )
    assert probeplan.target(imp(addresses="")) is None
    assert probeplan.target(imp(ports=[{"port": 53, "protocol": "UDP"}])) is None


def test_threshold_failures_mark_and_one_success_clears():
    state = Hysteresis(2)
    state.record({"a": False, "b": True})
    assert state.disconnected() == ()
    state.record({"a": False, "b": True})
    assert state.disconnected() == ("a",)
    state.record({"a": False, "b": False})  # b: one failure only
    assert state.disconnected() == ("a",)
    state.record({"a": True, "b": True})
    assert state.disconnected() == ()


def test_addresses_that_leave_the_list_are_forgotten():
    state = Hysteresis(1)
    state.record({"a": False})
    state.record({"b": True})
    assert state.disconnected() == ()
    assert "a" not in state.failures


def test_resumed_state_keeps_earlier_marks_until_a_success():
    state = Hysteresis.resumed(3, "10.0.0.9,10.0.0.1")
    state.record({"10.0.0.9": False, "10.0.0.1": True})
    assert state.disconnected() == ("10.0.0.9",)


def test_patch_only_on_change_and_removal_when_empty():
    assert probeplan.annotation_patch(None, []) is None
    assert probeplan.annotation_patch("10.0.0.1,10.0.0.2", ["10.0.0.2", "10.0.0.1"]) is None
    assert probeplan.annotation_patch(None, ["10.0.0.2", "10.0.0.1"]) == {
        "metadata": {"annotations": {DISC: "10.0.0.1,10.0.0.2"}}
    }
    assert probeplan.annotation_patch("10.0.0.1", []) == {"metadata": {"annotations": {DISC: None}}}


class FakeClient:
    def __init__(self, store):
        self.store = store
        self.patches = []

    async def patch(self, resource, name, patch, *, namespace=None):
        self.patches.append((namespace, name, patch))
        obj = self.store.get(f"{namespace}/{name}")
        annotations = obj["metadata"]["annotations"]
        for key, value in patch["metadata"]["annotations"].items():
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
        return obj


def prober(store, threshold):
    return probe.Prober(FakeClient(store), store, interval=1.0, timeout=0.1, threshold=threshold)


REQUEST = Request("host", "default", "web")


async def test_reconcile_marks_after_threshold_and_writes_once(monkeypatch):
    up = {"10.0.0.1"}

    async def fake_reachable(address, port, timeout):
        return address in up

    monkeypatch.setattr(probe, "reachable", fake_reachable)
    store = Store()
    store.upsert(imp())
    reconcile = prober(store, 2)
    result = await reconcile(REQUEST)
    assert isinstance(result, Result) and 0.9 < result.requeue_after <= 1.0
    assert reconcile.client.patches == []
    await reconcile(REQUEST)
    await reconcile(REQUEST)
    patches = [p[2] for p in reconcile.client.patches]
    assert patches == [{"metadata": {"annotations": {DISC: "10.0.0.2"}}}]
    up.add("10.0.0.2")
    await reconcile(REQUEST)
    assert reconcile.client.patches[-1][2] == {"metadata": {"annotations": {DISC: None}}}
    assert len(reconcile.client.patches) == 2
    store.delete("default/web")
    assert await reconcile(REQUEST) is None  # gone: forgotten, not requeued


async def test_an_import_without_tcp_port_is_never_marked(monkeypatch):
    async def never(address, port, timeout):
        raise AssertionError("probed")

    monkeypatch.setattr(probe, "reachable", never)
    store = Store()
    store.upsert(imp(ports=[{"port": 53, "protocol": "UDP"}], disconnected="10.0.0.1"))
    reconcile = prober(store, 1)
    await reconcile(REQUEST)
    assert reconcile.client.patches[-1][2] == {"metadata": {"annotations": {DISC: None}}}


def test_only_ports_and_addresses_are_probe_inputs():
    a, b = imp(), imp(disconnected="10.0.0.1")
    assert probeplan.inputs(a) == probeplan.inputs(b)
    assert probeplan.inputs(a) != probeplan.inputs(imp(addresses="10.0.0.3"))
    assert probeplan.inputs(a) != probeplan.inputs(imp(ports=[{"port": 81}]))


async def test_reach_classifies_connected_and_refused():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await probe.reach("127.0.0.1", port, 1.0) == "connected"
    finally:
        server.close()
        await server.wait_closed()
    assert await probe.reach("127.0.0.1", port, 1.0) == "refused"


@pytest.mark.parametrize("outcome", ["connected", "refused"])
def test_reachable_outcomes(outcome):
    assert outcome in probe.REACHABLE
