"""The network plan: Clusters + ClusterNodes in, one NodeConfig spec per node out (pure).

``inputs`` reads the API objects into small values and says what it had to leave out and why;
``addressing`` numbers devices; ``plan`` decides devices, routes, FDB/ARP, NAT, sets and
tunnels. Nothing here does I/O, so the whole plan is table-tested.
"""
