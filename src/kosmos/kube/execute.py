"""Run one command in a container through the apiserver (``pods/exec``) and collect its output.

The remote-command WebSocket protocols ``v5.channel.k8s.io`` and ``v4.channel.k8s.io`` frame
every binary message with one leading channel byte: 1 stdout, 2 stderr, 3 the final ``Status``
JSON (``Success``, or ``Failure`` whose reason ``NonZeroExitCode`` carries the exit code as the
message of the cause with reason ``ExitCode``). Only these two are offered: the older ones
carry no exit code. No stdin and no TTY: the callers run short probes and read their output.

The whole call, handshake included, is bounded by one ``timeout``: a check that hangs (a
dropped SYN, an unanswered DNS query) must not hold its caller longer than it said. A refused
handshake is not a command result: it raises the typed ``KubeError`` from
``Client.websocket`` so the caller can tell "could not run" from "ran and failed".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import orjson

from kosmos.api.objects import Obj
from kosmos.api.resources import PODS
from kosmos.kube.client import Client

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_STDOUT, _STDERR, _STATUS = 1, 2, 3
_CLOSE_WAIT = 1.0
_NO_STATUS = "the stream ended without an exit status"


@dataclass(frozen=True)
class ExecResult:
    """What one command did.

    ``exit_code`` is None when no exit code is known: the call timed out, the stream ended
    without a ``Status``, or the ``Status`` failed without an exit code (the runtime could
    not start the command, e.g. an executable missing from the image). ``error`` says which,
    or carries the ``Status`` message of a non-zero exit; it is None on exit 0.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class _Session:
    """Output collected so far, kept outside the timed block so a timeout still returns it."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    status: Obj | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None

    def result(self, exit_code: int | None, error: str | None) -> ExecResult:
        return ExecResult(
            self.stdout.decode(errors="replace"),
            self.stderr.decode(errors="replace"),
            exit_code,
            error,
        )


def _params(command: Sequence[str], container: str | None) -> list[tuple[str, str]]:
    params = [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
    if container:
        params.append(("container", container))
    return params + [("command", word) for word in command]


def exit_status(status: Obj) -> tuple[int | None, str | None]:
    """(exit code, error) from the final ``Status`` of an exec stream."""
    if status.get("status") == "Success":
        return 0, None
    message = str(status.get("message") or status.get("reason") or "exec failed")
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", "")), message
                except ValueError:
                    break
    return None, message


def _status(payload: bytes) -> Obj:
    try:
        status = orjson.loads(payload)
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict):
        text = payload[:200].decode(errors="replace")
        return {"status": "Failure", "message": f"unreadable exit status: {text}"}
    return status


async def _collect(session: _Session, ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read frames until the ``Status`` arrives (the server sends it last) or the stream ends."""
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            data: bytes = message.data
        elif message.type == aiohttp.WSMsgType.TEXT:
            data = message.data.encode()
        else:
            break
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == _STDOUT:
            session.stdout.extend(payload)
        elif channel == _STDERR:
            session.stderr.extend(payload)
        elif channel == _STATUS and payload:
            session.status = _status(payload)
            return


async def _close(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close, waiting briefly for the server's close frame: a hung peer must not add the
    client's 10 s close timeout to the caller's budget (cancelling drops the connection)."""
    try:
        async with asyncio.timeout(_CLOSE_WAIT):
            await ws.close()
    except TimeoutError:
        pass


class Exec(Protocol):
    """The type of :func:`run`, so callers can take a stand-in (tests) in its place."""

    def __call__(
        self,
        client: Client,
        namespace: str,
        pod: str,
        command: Sequence[str],
        *,
        container: str | None = None,
        timeout: float = 10.0,
    ) -> Awaitable[ExecResult]: ...


async def run(
    client: Client,
    namespace: str,
    pod: str,
    command: Sequence[str],
    *,
    container: str | None = None,
    timeout: float = 10.0,
) -> ExecResult:
    """Run ``command`` (argv, no shell) in ``pod`` and wait for it, at most ``timeout`` s.

    Raises the ``KubeError`` of a refused or unreachable handshake (no such pod or container,
    forbidden, apiserver down). Everything after the upgrade is a result: on timeout the
    socket is closed and the output so far comes back with ``exit_code`` None.
    """
    session = _Session()
    try:
        async with asyncio.timeout(timeout):
            session.ws = await client.websocket(
                PODS, pod, namespace, "exec", _params(command, container), PROTOCOLS
            )
            await _collect(session, session.ws)
    except TimeoutError:
        return session.result(None, f"timed out after {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return session.result(None, f"the stream broke: {exc or type(exc).__name__}")
    finally:
        if session.ws is not None:
            await _close(session.ws)
    if session.status is None:
        return session.result(None, _NO_STATUS)
    return session.result(*exit_status(session.status))
