"""What a check reports (pure): netctl's two tables, resume.json, and the JSON of every pair.

resume.json keeps netctl's shape (``Status`` 0 for a failure, ``ResultStr``, node names,
``targetIP``) so a file written by either tool can be resumed; it holds only the pairs that
did not succeed, with their whole log (the table cuts it to fit a line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor.config import Config
from kosmos.ops.netdoctor.plan import family
from kosmos.ops.netdoctor.run import Outcome

HEADERS = ("S/N", "SRC NODE NAME", "DST NODE NAME", "TARGET IP", "RESULT")
FAILURE_HEADERS = (*HEADERS, "LOG")
LOG_WIDTH = 60

Rows = list[tuple[object, ...]]


def _row(number: int, outcome: Outcome) -> tuple[object, ...]:
    pair = outcome.pair
    return (number, pair.src_node, pair.dst_node, pair.target, outcome.result)


def success_rows(outcomes: Sequence[Outcome]) -> Rows:
    return [_row(i, o) for i, o in enumerate((o for o in outcomes if o.ok), 1)]


def failure_rows(outcomes: Sequence[Outcome], width: int = LOG_WIDTH) -> Rows:
    failed = (o for o in outcomes if not o.ok)
    return [(*_row(i, o), cut(o.log, width)) for i, o in enumerate(failed, 1)]


def cut(text: str, width: int) -> str:
    """One line of at most ``width`` characters (the whole text is in resume.json)."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def resume_entries(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    return [
        {
            "Status": 0,
            "ResultStr": o.log,
            "srcNodeName": o.pair.src_node,
            "dstNodeName": o.pair.dst_node,
            "targetIP": o.pair.target,
        }
        for o in outcomes
        if not o.ok
    ]


def json_entries(outcomes: Sequence[Outcome], config: Config) -> list[dict[str, Any]]:
    """``-o json``: every pair, in resume.json's keys plus what a script filters on."""
    out = []
    for o in outcomes:
        out.append(
            {
                "Status": 1 if o.ok else 0,
                "ResultStr": o.log,
                "srcNodeName": o.pair.src_node,
                "dstNodeName": o.pair.dst_node,
                "targetIP": o.pair.target,
                "result": o.result,
                "protocol": config.protocol,
                "mode": config.mode,
                "srcCluster": "src",
                "dstCluster": "dst" if config.two_clusters else "src",
                "srcPod": o.pair.src_pod,
                "command": list(o.pair.command),
                "seconds": o.seconds,
            }
        )
    return out


def write_resume(path: str | Path, outcomes: Sequence[Outcome]) -> None:
    path = Path(path)
    try:
        path.write_text(json.dumps(resume_entries(outcomes), indent=2) + "\n")
    except OSError as exc:
        raise OperationError(f"{path}: {exc.strerror or exc}") from exc


def read_resume(path: str | Path) -> list[tuple[str, str, int]]:
    """(src node, dst node, family of targetIP) of each failure in a resume.json."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise OperationError(
            f"{path}: no such file (`kosmosctl netdoctor check` writes it)"
        ) from None
    except OSError as exc:
        raise OperationError(f"{path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise OperationError(f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, list):
        raise OperationError(f"{path}: expected a JSON list of failed pairs")
    out = []
    for i, entry in enumerate(data):
        keys = ("srcNodeName", "dstNodeName", "targetIP")
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in keys):
            raise OperationError(f"{path}: entry {i} lacks srcNodeName, dstNodeName or targetIP")
        out.append((entry["srcNodeName"], entry["dstNodeName"], family(entry["targetIP"])))
    return list(dict.fromkeys(out))
