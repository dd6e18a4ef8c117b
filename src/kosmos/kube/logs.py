"""The components' log output: text (the default) or one JSON object per line.

JSON lines are for log pipelines (Loki, Elasticsearch, Cloud Logging) that index fields
instead of parsing text. Each line has ``time`` (RFC 3339, UTC), ``level``, ``logger`` and
``message``, plus structured fields: those of the surrounding ``fields(...)`` block (a
controller sets ``controller``, ``cluster`` and ``key`` around each reconcile, so every line
a reconcile logs names its object), and any ``extra={...}`` of the call. ``error`` holds a
traceback when there is one.

Standard library and click only: the floater and the node-agent, which never talk to an apiserver,
use it without importing the client.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_FIELDS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("kosmos_log_fields")
#: what every LogRecord has: anything else on a record came from ``extra=``
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def fields(**values: Any) -> Iterator[None]:
    """Add ``values`` to every JSON line logged inside the block (in this task/thread)."""
    token = _FIELDS.set({**_FIELDS.get({}), **values})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def current_fields() -> dict[str, Any]:
    return dict(_FIELDS.get({}))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_FIELDS.get({}))
        line.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: int, log_format: str = "text") -> None:
    """Send the root logger's records to stderr in ``log_format`` (one of ``FORMATS``).

    Like ``logging.basicConfig`` (which it calls), a no-op when the root logger already has
    handlers: a process configures its logging once, at start.
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler])


def option() -> Callable[[Any], Any]:
    """``--log-format text|json`` (also ``$KOSMOS_LOG_FORMAT``), for every component."""
    return click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        envvar="KOSMOS_LOG_FORMAT",
        help="Log lines as text, or one JSON object per line (time, level, logger, message "
        "and the fields a controller knows: controller, cluster, key).",
    )
