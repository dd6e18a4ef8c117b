"""The kubelet's query parameters, validated as the kubelet does and translated for the
member apiserver's pod subresources (``pods/log``, ``pods/exec|attach``, ``pods/portforward``).

The apiserver talks to a kubelet in the kubelet's own parameter names (``input``/``output``/
``error``/``tty`` = ``1``, ``port=80,8080``); the member's API takes the pod-options names.
Errors are ``Refusal``s carrying the HTTP status the kubelet would answer with.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime

from multidict import MultiMapping

_INT64 = re.compile(r"[+-]?[0-9]+")  # strconv.ParseInt, base 10
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.ASCII)
_LOG_FLAGS = ("follow", "previous", "timestamps")
_LOG_INTS = ("tailLines", "limitBytes", "sinceSeconds")
_LOG_STREAMS = ("All", "Stdout", "Stderr")
_STREAM_FLAGS = (("input", "stdin"), ("output", "stdout"), ("error", "stderr"), ("tty", "tty"))


class Refusal(Exception):
    """A kubelet-style plain-text error answer, raised from deep in request parsing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _go_bool(value: str) -> bool:
    """apimachinery's query bool: only ``0`` and ``false`` (any case) are false."""
    return value != "0" and value.lower() != "false"


def _int64(key: str, value: str) -> int:
    number = int(value) if _INT64.fullmatch(value) else None
    if number is None or not -(2**63) <= number < 2**63:
        raise Refusal(400, f"Unable to decode query: {key}: invalid integer {value!r}")
    return number


def _rfc3339(value: str) -> str:
    """Go's ``time.Parse(time.RFC3339, ..)``: the shape, then real calendar values."""
    if _RFC3339.fullmatch(value):
        with contextlib.suppress(ValueError):
            datetime.fromisoformat(value)
            return value
    raise Refusal(400, f"Unable to decode query: sinceTime: {value!r} is not RFC 3339")


def _first_values(query: MultiMapping[str]) -> dict[str, str]:
    """First value of each key (Go's decoding), with the kubelet's legacy ``tail`` alias."""
    first: dict[str, str] = {}
    for key, value in query.items():
        first.setdefault(key, value)
    tail = first.get("tail")
    if tail == "all":
        first.pop("tailLines", None)
    elif tail:
        first["tailLines"] = tail
    return first


def _validate_log_options(options: dict[str, int], since_time: bool, stream: str | None) -> None:
    """``ValidatePodLogOptions`` (core/v1): the kubelet answers 422 for these."""
    problems = []
    if since_time and "sinceSeconds" in options:
        problems.append("at most one of `sinceTime` or `sinceSeconds` may be specified")
    if options.get("tailLines", 0) < 0:
        problems.append("tailLines: must be greater than or equal to 0")
    if options.get("limitBytes", 1) < 1:
        problems.append("limitBytes: must be greater than 0")
    if "sinceSeconds" in options and options["sinceSeconds"] < 1:
        problems.append("sinceSeconds: must be greater than 0")
    if stream is not None and stream not in _LOG_STREAMS:
        problems.append(f"stream: unsupported value {stream!r}")
    if stream not in {None, "All"} and "tailLines" in options:
        problems.append("`tailLines` and specific `stream` are mutually exclusive for now")
    if problems:
        raise Refusal(422, "Invalid request: " + "; ".join(problems))


def log_params(query: MultiMapping[str], container: str) -> dict[str, object]:
    """The kubelet's ``containerLogs`` query as the member's ``pods/log`` parameters.

    ``stream=All`` is the default and is dropped (a member without the split-streams gate
    rejects any ``stream``); ``Stdout``/``Stderr`` are passed on for the member to judge.
    """
    first = _first_values(query)
    numbers = {key: _int64(key, first[key]) for key in _LOG_INTS if key in first}
    since_time = _rfc3339(first["sinceTime"]) if first.get("sinceTime") else None
    stream = first.get("stream")
    _validate_log_options(numbers, since_time is not None, stream)
    params: dict[str, object] = {"container": container, **numbers}
    params.update({key: True for key in _LOG_FLAGS if key in first and _go_bool(first[key])})
    if since_time:
        params["sinceTime"] = since_time
    if stream in {"Stdout", "Stderr"}:
        params["stream"] = stream
    return params


def stream_params(query: MultiMapping[str]) -> list[tuple[str, str]]:
    """The kubelet's ``input/output/error/tty=1`` as the API's ``stdin/stdout/stderr/tty``.

    As the kubelet (``remotecommand.NewOptions``): only ``1`` means yes, tty wins over
    stderr, and at least one stream must be asked for.
    """
    flags = {api: query.get(kubelet) == "1" for kubelet, api in _STREAM_FLAGS}
    if flags["tty"] and flags["stderr"]:
        flags["stderr"] = False
    if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
        raise Refusal(400, "you must specify at least 1 of stdin, stdout, stderr")
    return [(api, "true") for api, on in flags.items() if on]


def port_params(query: MultiMapping[str]) -> list[tuple[str, str]]:
    """The kubelet's ``port=80,8080`` (``portforward.NewV4Options``) as repeated ``ports``."""
    values = query.getall("port", [])
    if not values:
        raise Refusal(400, 'query parameter "port" is required')
    ports: list[tuple[str, str]] = []
    for value in values:
        if not value:
            raise Refusal(400, 'query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or not part.isascii() or int(part) > 65535:
                raise Refusal(400, f"unable to parse {value!r} as a port")
            if int(part) < 1:
                raise Refusal(400, f"port {value!r} must be > 0")
            ports.append(("ports", str(int(part))))
    return ports
