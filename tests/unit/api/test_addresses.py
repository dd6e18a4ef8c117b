from kosmos.api.addresses import join_host_port


def test_ipv6_is_bracketed_ipv4_and_names_are_not() -> None:
    assert join_host_port("fd00::1", 443) == "[fd00::1]:443"
    assert join_host_port("10.0.0.1", "80") == "10.0.0.1:80"
    assert join_host_port("node-1", 10270) == "node-1:10270"
