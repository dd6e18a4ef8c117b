"""Tunnel daemons inside a named network namespace, each with a private ``/run``.

charon and wireguard-go keep fixed paths under ``/run`` (``charon.pid``, the WireGuard UAPI
socket ``/run/wireguard/<dev>.sock``), so two of them on one machine would collide. Each
daemon therefore runs in its own mount namespace where a directory of ours is bind-mounted on
``/run``: from outside, its pid file and sockets are plain files in that directory. The
daemon runs in the foreground (daemonized copies leave zombies) in its own process group, so
a Ctrl-C meant for the agent does not reach it and a restarted agent adopts it from its pid
file. Not in its own session: with ``sched_autogroup`` every session is a scheduling group
of its own, and setsid'd libipsec charons carried ~40% less traffic on two cores (measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from ipaddress import IPv4Interface, IPv6Interface, ip_interface, ip_network
from pathlib import Path
from typing import BinaryIO

from kosmos.net.tunnels import TunnelError

log = logging.getLogger(__name__)

_BIND_RUN = 'mount --bind "$0" /run && exec "$@"'


def daemon_home(run_dir: Path) -> Path:
    """``run_dir`` made absolute, for a daemon confined by :func:`confined_argv`.

    Refused under ``/run`` (also through the ``/var/run`` symlink): the daemon's private
    ``/run`` hides whatever lies there, its configuration and sockets included.
    """
    resolved = run_dir.resolve()
    if resolved == Path("/run") or Path("/run") in resolved.parents:
        raise TunnelError(
            f"run_dir {run_dir} is under /run, which the daemon's private /run hides from it"
        )
    return run_dir.absolute()


def confined_argv(argv: Sequence[str], *, netns: str | None, private_run: Path) -> list[str]:
    """``argv`` inside ``netns`` (None: this one) with ``private_run`` mounted on /run."""
    inner = ["unshare", "--mount", "--propagation", "private", "--"]
    inner += ["sh", "-c", _BIND_RUN, str(private_run), *argv]
    return ["ip", "netns", "exec", netns, *inner] if netns else inner


async def ip(netns: str | None, *args: str, check: bool = True) -> str:
    """Run ``ip [-n netns] args``; raise TunnelError with its stderr when it fails."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if check and process.returncode != 0:
        raise TunnelError(f"`{' '.join(argv)}` failed: {err.decode().strip()}")
    return out.decode()


def _prepare(private_run: Path, log_file: Path) -> BinaryIO:
    """Create the private /run and open the log (small local file work, done in place)."""
    private_run.mkdir(mode=0o700, parents=True, exist_ok=True)
    return log_file.open("ab")


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a daemon's log, for an error message (our logs hold no keys)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    return " | ".join(text.splitlines()[-lines:]) or f"({path.name} is empty)"


async def wait_ready(
    daemon: Daemon, ready: Callable[[], Awaitable[bool]], *, timeout: float, log: Path | None = None
) -> None:
    """Poll ``ready`` until it holds; stop the daemon and raise if it dies or takes too long.

    The error quotes the daemon's output (where ``ip netns exec`` complains) and ``log``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await ready():
        if not daemon.alive() or loop.time() > deadline:
            await daemon.stop()
            said = " | ".join(tail(path) for path in (daemon.output, log) if path is not None)
            raise TunnelError(f"{daemon.name} did not start within {timeout:.0f} s: {said}")
        await asyncio.sleep(0.05)


class Daemon:
    """One supervised daemon: a child we spawned, or a process adopted from its pid file."""

    def __init__(
        self,
        pid: int,
        name: str,
        process: asyncio.subprocess.Process | None = None,
        output: Path | None = None,
    ) -> None:
        self.pid = pid
        self.name = name
        self.output = output  # where its stdout and stderr go, when we started it
        self._process = process

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        netns: str | None,
        private_run: Path,
        env: Mapping[str, str],
        log_file: Path,
    ) -> Daemon:
        """Start ``argv`` confined (see :func:`confined_argv`), stdout/stderr to ``log_file``."""
        with _prepare(private_run, log_file) as out:
            try:
                process = await asyncio.create_subprocess_exec(
                    *confined_argv(argv, netns=netns, private_run=private_run),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **env},
                    process_group=0,
                )
            except OSError as e:
                raise TunnelError(f"cannot start {argv[0]}: {e}") from e
        # ip netns exec, unshare and sh all exec: the child's pid is the daemon's pid.
        return cls(process.pid, Path(argv[0]).name, process, log_file)

    @classmethod
    def adopt(cls, pid_file: Path, name: str) -> Daemon | None:
        """The live process named ``name`` whose pid ``pid_file`` holds, if there is one."""
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        daemon = cls(pid, name)
        return daemon if daemon.alive() else None

    def alive(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
        return comm == self.name[:15] and state not in "ZX"

    async def stop(self, timeout: float = 5.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` s; True when it exited on SIGTERM."""
        if not self.alive():
            return True
        self._signal(signal.SIGTERM)
        if await self._wait(timeout):
            return True
        log.warning(
            "%s (pid %d) ignored SIGTERM for %.0f s; killing it", self.name, self.pid, timeout
        )
        self._signal(signal.SIGKILL)
        await self._wait(timeout)
        return False

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    async def _wait(self, timeout: float) -> bool:
        if self._process is not None:
            try:
                await asyncio.wait_for(self._process.wait(), timeout)
            except TimeoutError:
                return False
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.alive():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


async def addresses(netns: str | None) -> list[IPv4Interface | IPv6Interface]:
    """Every address configured in ``netns`` (to find this node's address in a subnet)."""
    found: list[IPv4Interface | IPv6Interface] = []
    for link in json.loads(await ip(netns, "-j", "addr", "show") or "[]"):
        for info in link.get("addr_info", []):
            found.append(ip_interface(f"{info['local']}/{info['prefixlen']}"))
    return found


def address_in(
    subnets: Sequence[str], present: Sequence[IPv4Interface | IPv6Interface], version: int
) -> str | None:
    """This node's first address inside one of ``subnets`` of IP ``version``, if any."""
    for subnet in map(ip_network, subnets):
        for address in present:
            if address.version == version == subnet.version and address.ip in subnet:
                return str(address.ip)
    return None
