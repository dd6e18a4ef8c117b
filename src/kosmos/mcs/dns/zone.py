"""Render records as an RFC 1035 master file, and write it so readers never see half of one.

CoreDNS's ``file`` plugin reloads a zone only when its SOA serial grows, so every change must
come with a larger serial: :func:`next_serial` takes the wall clock in seconds (a restarted
writer still moves forward) or the previous serial + 1 when changes come faster than that.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kosmos.mcs.dns.records import Record

__all__ = [
    "NEGATIVE_TTL",
    "RECORD_TTL",
    "VERSION_TTL",
    "next_serial",
    "render",
    "write_atomically",
]

#: small, as the specification's examples: endpoints come and go
RECORD_TTL = 5
#: the specification's example TTL of the version record
VERSION_TTL = 28800
SERIAL_MOD = 2**32
#: negative answers (RFC 2308: the smaller of the SOA's TTL and minimum): a name asked for
#: just before its import exists must not stay NXDOMAIN in caches for long
NEGATIVE_TTL = 1
#: SOA timers (refresh, retry, expire, minimum = negative-answer TTL)
SOA_TIMERS = (7200, 1800, 86400, NEGATIVE_TTL)


def next_serial(previous: int, now: float) -> int:
    """A serial greater than ``previous``: the clock's seconds, or previous + 1."""
    return max(int(now) % SERIAL_MOD, previous + 1) % SERIAL_MOD


def render(records: Iterable[Record], zone: str, serial: int) -> str:
    """The zone file: SOA and NS at the apex, then one line per record."""
    ns = f"ns.dns.{zone}."
    refresh, retry, expire, minimum = SOA_TIMERS
    lines = [
        f"$ORIGIN {zone}.",
        f"@ {NEGATIVE_TTL} IN SOA {ns} hostmaster.{zone}. "
        f"{serial} {refresh} {retry} {expire} {minimum}",
        f"@ {RECORD_TTL} IN NS {ns}",
    ]
    for record in records:
        lines.append(f"{record.name}. {_ttl(record)} IN {record.type} {_rdata(record)}")
    return "\n".join(lines) + "\n"


def _ttl(record: Record) -> int:
    return VERSION_TTL if record.type == "TXT" else RECORD_TTL


def _rdata(record: Record) -> str:
    if record.type == "TXT":
        return '"' + record.data.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if record.type == "SRV":
        return record.data + "."
    return record.data


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file in the same directory, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
