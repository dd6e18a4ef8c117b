"""Running a component: the flags, start-up and shutdown every ``kosmos <component>`` shares.

A component is a ``build(runtime)`` that declares its controllers on ``runtime.manager`` and
registers anything else it serves (an HTTPS endpoint, a background task). ``run_component``
does the rest the same way for all of them: host client from ``--kubeconfig`` or the pod's
service account, identity, optional leader election on a Lease in kosmos-system, health
serving, SIGTERM (stop controllers, release the Lease, exit 0), SIGUSR1 (task dump), and
exit status 1 on a lost Lease so a fresh process competes again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from kosmos.api import names
from kosmos.kube import config as kube_config
from kosmos.kube import diagnostics, logs
from kosmos.kube.client import Client
from kosmos.kube.events import EventRecorder
from kosmos.kube.gate import Gate
from kosmos.kube.leader import LeaderElectionConfig, LeadershipLost
from kosmos.kube.manager import Manager

log = logging.getLogger("kosmos.kube.component")

#: the manager's name for the host; also the root Cluster's name, so a component serving the
#: root Cluster as a member reaches it through the host's own client
HOST = names.ROOT_CLUSTER_NAME

_NS = names.SYSTEM_NAMESPACE
F = TypeVar("F", bound=Callable[..., Any])
Step = Callable[[], Awaitable[None]]


def configure_logging(verbose: int, log_format: str = "text") -> None:
    """The components' log output (``kosmos.kube.logs``); ``-vv`` and more turn on debug."""
    logs.configure(logging.DEBUG if verbose > 1 else logging.INFO, log_format)


@dataclass(frozen=True)
class Common:
    """The flags every component has (``common_options``)."""

    kubeconfig: str | None = None
    context: str | None = None
    leader_elect: bool = False
    bind_address: str = "0.0.0.0"
    health_port: int = 8080
    kube_qps: float = 50.0
    kube_burst: int = 100
    member_qps: float = 20.0
    member_burst: int = 40
    verbose: int = 0
    log_format: str = "text"


Option = Callable[[Any], Any]


def common_options(
    lease: str | None,
    *,
    health_port: int | None = 8080,
    bind_address: str = "0.0.0.0",
    kube_qps: float = 50.0,
    kube_burst: int = 100,
    member_qps: float | None = 20.0,
    member_burst: int = 40,
    leader_elect_help: str | None = None,
) -> Callable[[F], F]:
    """Add the shared flags to a click command; the command receives them as ``common``.

    ``lease`` names the Lease ``--leader-elect`` holds (None: no such flag), and
    ``leader_elect_help`` says what holding it means when that is not the whole manager;
    ``health_port`` None: health is served elsewhere (no ``--health-port`` flag);
    ``member_qps`` None: the component has no member clients (no ``--member-*`` flags).
    """
    options = [
        *_host_options(bind_address, health_port, kube_qps, kube_burst),
        *_lease_option(lease, leader_elect_help),
        *_member_options(member_qps, member_burst),
    ]

    def decorate(func: F) -> F:
        def collect(**kwargs: Any) -> Any:
            picked = {k: kwargs.pop(k) for k in list(kwargs) if k in _COMMON_FIELDS}
            return func(common=Common(**picked), **kwargs)

        collect.__name__, collect.__doc__ = func.__name__, func.__doc__
        # options declared below this decorator were attached to ``func``: keep them
        collect.__click_params__ = list(getattr(func, "__click_params__", []))  # type: ignore[attr-defined]
        wrapped: Any = collect
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorate


def _host_options(
    bind_address: str, health_port: int | None, kube_qps: float, kube_burst: int
) -> list[Option]:
    """How to reach the host, where to serve health (None: served elsewhere), how loud."""
    health = "/healthz /readyz /metrics (0: any free port)."
    return [
        click.option(
            "--kubeconfig", envvar="KUBECONFIG", help="Host kubeconfig (default: in-cluster)."
        ),
        click.option("--context", default=None, help="Context of --kubeconfig."),
        click.option("--bind-address", default=bind_address, show_default=True),
        *(
            [click.option("--health-port", default=health_port, show_default=True, help=health)]
            if health_port is not None
            else []
        ),
        click.option("--kube-qps", default=kube_qps, show_default=True, help="Host client QPS."),
        click.option(
            "--kube-burst", default=kube_burst, show_default=True, help="Host client burst."
        ),
        click.option("-v", "--verbose", count=True, help="-vv: debug logs."),
        logs.option(),
    ]


def _lease_option(lease: str | None, help_text: str | None) -> list[Option]:
    if lease is None:
        return []
    help_text = help_text or f"Run controllers only while holding Lease {_NS}/{lease}."
    flag = "--leader-elect/--no-leader-elect"
    return [click.option(flag, default=False, show_default=True, help=help_text)]


def _member_options(qps: float | None, burst: int) -> list[Option]:
    if qps is None:
        return []
    return [
        click.option("--member-qps", default=qps, show_default=True, help="QPS per member client."),
        click.option(
            "--member-burst", default=burst, show_default=True, help="Burst per member client."
        ),
    ]


_COMMON_FIELDS = frozenset(Common.__dataclass_fields__)


@dataclass
class Runtime:
    """What ``build`` gets: the manager (host registered), the host client and an identity."""

    name: str
    common: Common
    manager: Manager
    host: Client
    identity: str
    recorder: EventRecorder
    _starts: list[Step] = field(default_factory=list)
    _stops: list[Step] = field(default_factory=list)
    _alongside: list[Step] = field(default_factory=list)

    def on_start(self, step: Step) -> None:
        """Run ``step`` before the manager starts (e.g. open a server port)."""
        self._starts.append(step)

    def on_stop(self, step: Step) -> None:
        """Run ``step`` at shutdown, last registered first."""
        self._stops.append(step)

    def alongside(self, task: Step) -> None:
        """Run ``task`` next to the manager for the life of the process."""
        self._alongside.append(task)


@dataclass(frozen=True)
class Component:
    """How a component runs: its name, its Lease, where its health is served."""

    name: str
    #: the Lease --leader-elect holds for the manager (None: the manager is never elected)
    lease: str | None = None
    #: the event source (``reportingController``); default ``kosmos-<name>``
    event_source: str = ""
    #: the manager serves /healthz /readyz /metrics on --bind-address:--health-port
    serve_health: bool = True
    #: request handlers of this process go before cache upkeep (``kosmos.kube.gate``)
    gate: bool = False


async def run_component(
    component: Component,
    common: Common,
    build: Callable[[Runtime], Awaitable[None] | None],
) -> None:
    """Start the manager with what ``build`` declared; return when stopped by SIGTERM."""
    config = await kube_config.for_component(HOST, common.kubeconfig, common.context)
    config.qps, config.burst = common.kube_qps, common.kube_burst
    host = Client(config)
    identity = f"{socket.gethostname()}_{os.getpid()}"
    election = None
    if common.leader_elect and component.lease:
        election = (host, LeaderElectionConfig(names.SYSTEM_NAMESPACE, component.lease, identity))
    manager = Manager(
        component.name,
        leader_election=election,
        health_address=(common.bind_address, common.health_port)
        if component.serve_health
        else None,
        gate=Gate() if component.gate else None,
    )
    manager.add_cluster(HOST, host)
    source = component.event_source or f"kosmos-{component.name}"
    runtime = Runtime(
        component.name, common, manager, host, identity, EventRecorder(host, source, identity)
    )
    built = build(runtime)
    if built is not None:
        await built
    _install_signals()
    try:
        for start in runtime._starts:
            await start()
        await asyncio.gather(manager.run(), *(task() for task in runtime._alongside))
    finally:
        for stop in reversed(runtime._stops):
            await stop()
        await manager.close()


def _install_signals() -> None:
    """SIGTERM cancels the main task (controllers stop, the Lease is released); SIGUSR1 dumps."""
    diagnostics.install()
    current = asyncio.current_task()
    if current is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)


def main(name: str, verbose: int, run: Coroutine[Any, Any, None], log_format: str = "text") -> None:
    """The body of a component's click command: logging, the event loop, the exit status."""
    configure_logging(verbose, log_format)
    try:
        asyncio.run(run)
    except LeadershipLost:
        log.error("lost the %s lease; exiting so a fresh process can compete", name)
        sys.exit(1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
