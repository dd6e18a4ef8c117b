"""Gateway mode with ``directRouting``: the gateway module's tests again, on the same
firewalled testbed (internal nodes can reach the other cluster only through their gateway),
with the internal nodes routing to their gateway over their NIC instead of ``vx-local``.
Where the two modes differ the tests read the option (test_link_gateway.py)."""

from __future__ import annotations

from tests.dataplane import test_link_gateway as gateway
from tests.dataplane.linked import Layout

BED = Layout(options={**gateway.OPTIONS, "directRouting": True}, nodes=3, elastic=2, firewall=True)

# In the gateway module's order: the later tests use what the earlier ones set up or check.
test_the_firewall_keeps_internal_nodes_off_the_other_underlay = (
    gateway.test_the_firewall_keeps_internal_nodes_off_the_other_underlay
)
test_gateways_are_elected_among_nodes_with_elastic_ips = (
    gateway.test_gateways_are_elected_among_nodes_with_elastic_ips
)
test_pods_on_internal_nodes_reach_each_other_through_the_gateways = (
    gateway.test_pods_on_internal_nodes_reach_each_other_through_the_gateways
)
test_gateway_failover_resumes_pod_traffic = gateway.test_gateway_failover_resumes_pod_traffic
test_leaving_removes_everything_the_agents_made = (
    gateway.test_leaving_removes_everything_the_agents_made
)
