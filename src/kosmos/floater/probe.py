"""``python3 -m kosmos.floater.probe udp HOST PORT``: one UDP round trip to a floater.

UDP has no handshake, so "reachable" means an answer came back: send one datagram and wait
for the floater's echo. Run inside a floater by ``kosmosctl netdoctor`` through ``pods/exec``,
once per checked pair, so its start-up is part of every UDP check: it imports only the
standard library (``python3 -X importtime`` shows what it costs).
Exit 0 and the reply on stdout; exit 1 and one line on stderr.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

PAYLOAD = b"kosmos-netdoctor"
_BUFFER = 65535


def udp(host: str, port: int, timeout: float) -> bytes:
    """The echo of one datagram sent to ``host:port``; raises ``TimeoutError`` / ``OSError``."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        sock.connect(address)  # replies from elsewhere are dropped; ICMP errors reach recv
        sock.send(PAYLOAD)
        return sock.recv(_BUFFER)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m kosmos.floater.probe")
    protocols = parser.add_subparsers(dest="protocol", required=True)
    check = protocols.add_parser("udp", help="send one datagram and wait for the floater's echo")
    check.add_argument("host", help="IPv4 or IPv6 address (or name)")
    check.add_argument("port", type=int)
    check.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    host = args.host.removeprefix("[").removesuffix("]")  # as in a URL: [fd00::1]
    where = f"udp [{host}]:{args.port}" if ":" in host else f"udp {host}:{args.port}"
    try:
        reply = udp(host, args.port, args.timeout)
    except TimeoutError:
        print(f"{where}: no reply within {args.timeout:g} s", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(reply.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
