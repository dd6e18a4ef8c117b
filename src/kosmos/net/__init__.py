"""The only code that touches the kernel: links, routes, FDB/ARP, nftables, ipsets, tunnels."""
