"""Property-based: random specs against the real apiserver's validation.

Two-sided: what the apiserver rejects names the field; what it accepts, our own parsing
(what a controller will do with it) handles. Dry-run creates keep etcd clean.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kosmos.api.crds import kind_by_name
from kosmos.api.schema import kind_info
from kosmos.kube.errors import Invalid
from tests.fixtures.clusters import LocalEnv

CLUSTERS = kind_info(kind_by_name("Cluster"))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def resource():
    return CLUSTERS.resource


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def host(local_env: LocalEnv, kosmos_crds, loop):
    client = loop.run_until_complete(local_env.client(local_env.host))
    yield client
    loop.run_until_complete(client.close())


def create(loop, host, spec) -> Invalid | None:
    body = {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "prop"},
        "spec": spec,
    }
    try:
        loop.run_until_complete(host.create(resource(), body, dry_run=True))
    except Invalid as exc:
        return exc
    return None


octet = st.integers(min_value=0, max_value=300)
cidr_like = st.one_of(
    st.builds(
        lambda a, b, c, d, p: f"{a}.{b}.{c}.{d}/{p}",
        octet,
        octet,
        octet,
        octet,
        st.integers(min_value=0, max_value=40),
    ),
    st.builds(lambda h, p: f"fd{h:02x}::/{p}", st.integers(0, 255), st.integers(0, 140)),
    st.text(max_size=20),
)


def python_parses_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


@SETTINGS
@given(values=st.lists(cidr_like, min_size=1, max_size=4))
def test_cluster_pod_cidrs(loop, host, values):
    error = create(loop, host, {"clusterLinkOptions": {"clusterPodCIDRs": values}})
    if error is None:
        assert all(python_parses_cidr(v) for v in values), values
    else:
        assert "spec.clusterLinkOptions.clusterPodCIDRs[" in str(error), str(error)


@SETTINGS
@given(value=st.text(max_size=12))
def test_network_type_enum(loop, host, value):
    error = create(loop, host, {"clusterLinkOptions": {"networkType": value}})
    assert (error is None) == (value in {"p2p", "gateway"})
    if error:
        assert "spec.clusterLinkOptions.networkType" in str(error)


net = st.builds(
    lambda a, b, p: f"10.{a}.{b}.0/{p}",
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(16, 24),
)


@SETTINGS
@given(mapping=st.dictionaries(net, net, min_size=1, max_size=4))
def test_global_cidrs_map(loop, host, mapping):
    error = create(loop, host, {"clusterLinkOptions": {"globalCIDRsMap": mapping}})
    values = [ipaddress.ip_network(v, strict=False) for v in mapping.values()]
    overlap = any(a.overlaps(b) for i, a in enumerate(values) for b in values[i + 1 :])
    size_mismatch = any(
        ipaddress.ip_network(k, strict=False).prefixlen
        != ipaddress.ip_network(v, strict=False).prefixlen
        for k, v in mapping.items()
    )
    assert (error is None) == (not overlap and not size_mismatch), (mapping, error)
    if error:
        assert "spec.clusterLinkOptions.globalCIDRsMap" in str(error)
