"""The local provider: a tenant's control plane as processes on the operator's machine.

Per tenant a directory ``<state dir>/<namespace>_<name>/`` holds everything: ``pki/`` (the
PKI from the ``<vc>-cert`` Secret, files 0600), ``etcd/`` (data), the components' kubeconfigs,
``kwok.yaml`` (kwok's node and pod stages), ``Corefile``, ``logs/``, ``pids/`` and
``ports.json``. ``ensure`` writes what is missing or changed, adopts the processes that are
still running (the operator may have restarted; they run in their own sessions), starts the
ones that are not, and asks the apiserver's ``/readyz`` with the admin certificate: it never
waits for the start itself, the controller calls again. ``destroy`` stops every process
(TERM, KILL after 10 s) and removes the directory.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import sys
from pathlib import Path

import aiohttp

from kosmos.api.addresses import join_host_port
from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.kubenest import components, kwokstages, ports, processes
from kosmos.kubenest.components import Layout
from kosmos.kubenest.kubeconfig import admin_kubeconfig, component_kubeconfig
from kosmos.kubenest.pki import ADMIN, CA, TenantPKI
from kosmos.kubenest.provider import Addresses, ControlPlane, ProviderError
from kosmos.kubenest.settings import Settings

log = logging.getLogger(__name__)
READY_TIMEOUT = 2.0
#: component -> the client pair its kubeconfig carries (kwok and CoreDNS act as the admin,
#: as kwokctl's components do: the tenant has no narrower role for them yet)
KUBECONFIG_USERS = {
    "admin": ADMIN,
    components.CONTROLLER_MANAGER: "controller-manager",
    components.SCHEDULER: "scheduler",
    components.KWOK: ADMIN,
    components.COREDNS: ADMIN,
}


def tenant_dir_name(vc: Obj) -> str:
    return f"{namespace_of(vc)}_{name_of(vc)}"


def cluster_name(vc: Obj) -> str:
    return f"{namespace_of(vc)}-{name_of(vc)}"


def _put(path: Path, content: bytes, mode: int = 0o600) -> bool:
    """Write ``content`` unless the file already holds it; True when it changed."""
    try:
        if path.read_bytes() == content:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=mode)
    path.chmod(mode)
    path.write_bytes(content)
    return True


def _failed_checks(body: str) -> str:
    """The ``[-]`` lines of a ``/readyz`` answer (the checks that fail), else its end."""
    failed = [line.strip() for line in body.splitlines() if line.startswith("[-]")]
    return "; ".join(failed)[:300] if failed else body.strip()[-300:]


class LocalProvider:
    """Runs tenants' etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
    CoreDNS from ``settings.binaries_dir`` on ports of ``settings.port_range``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.expanduser()
        self.bin_dir = settings.binaries_dir.expanduser()

    def layout(self, vc: Obj) -> Layout:
        return Layout(self.state_dir / tenant_dir_name(vc))

    def endpoint(self, port: int) -> str:
        return f"https://{join_host_port(self.settings.advertise_address, port)}"

    async def addresses(self, vc: Obj) -> Addresses:
        """Nothing beyond the advertise address: every process binds it or loopback."""
        return Addresses()

    async def ensure(self, vc: Obj, pki: TenantPKI) -> ControlPlane:
        layout = self.layout(vc)
        try:
            allocated, started = await asyncio.to_thread(self._start, vc, layout, pki)
        except (OSError, ports.PortsExhausted) as exc:
            raise ProviderError(f"cannot run the control plane in {layout.dir}: {exc}") from exc
        endpoint = self.endpoint(allocated[components.APISERVER])
        problem = await self._readyz(endpoint, layout)
        pending = f"started {', '.join(started)}; " if started else ""
        message = "" if problem is None else f"{pending}apiserver not ready: {problem}"
        return ControlPlane(endpoint, problem is None, message, allocated)

    def _start(self, vc: Obj, layout: Layout, pki: TenantPKI) -> tuple[dict[str, int], list[str]]:
        missing = [b for b in components.BINARIES.values() if not (self.bin_dir / b).is_file()]
        if missing:
            raise ProviderError(f"{self.bin_dir} lacks {', '.join(missing)}")
        if not ports.bindable(0, [self.settings.advertise_address]):
            raise ProviderError(
                f"advertise address {self.settings.advertise_address} is not one of this machine"
            )
        hosts = list(dict.fromkeys(["127.0.0.1", self.settings.advertise_address]))
        allocated = ports.allocate(
            self.state_dir, layout.dir, components.PORTS, self.settings.port_range, hosts
        )
        changed = self._write_files(vc, layout, pki, allocated)
        started = []
        for component in components.PROCESSES:
            pid = processes.running(layout.dir, component)
            if pid is not None and not changed:
                continue
            if pid is not None:  # new certificates: the process must read them again
                processes.stop(layout.dir, [pid])
            exited = processes.last_words(layout.dir, component) if pid is None else ""
            argv = components.argv(
                component, layout, self.bin_dir, allocated, self.settings.advertise_address
            )
            processes.start(layout.dir, component, argv)
            started.append(f"{component} (it had exited: {exited})" if exited else component)
        if started:
            log.info("tenant %s: started %s", layout.dir.name, ", ".join(started))
        return allocated, started

    def _write_files(
        self, vc: Obj, layout: Layout, pki: TenantPKI, allocated: dict[str, int]
    ) -> bool:
        """The PKI, kubeconfigs, kwok stages and Corefile; True when the PKI changed (a new
        Secret), which the running processes must pick up."""
        layout.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        changed = False
        for name, pem in pki.files.items():
            changed = _put(layout.pki(name), pem) or changed
        server = self.endpoint(allocated[components.APISERVER])  # it binds there alone
        for component, base in KUBECONFIG_USERS.items():
            config = component_kubeconfig(server, pki, base, cluster_name(vc))
            _put(layout.kubeconfig(component), config.encode())
        _put(layout.kwok_config, kwokstages.documents())
        _put(layout.corefile, components.corefile(layout, allocated).encode())
        layout.etcd_data.mkdir(exist_ok=True, mode=0o700)
        return changed

    async def _readyz(self, endpoint: str, layout: Layout) -> str | None:
        """None when ``/readyz`` answers 200 to the admin; else what went wrong."""
        context = ssl.create_default_context(cafile=str(layout.crt(CA)))
        context.load_cert_chain(str(layout.crt(ADMIN)), str(layout.key(ADMIN)))
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{endpoint}/readyz", ssl=context) as response,
            ):
                if response.status == 200:
                    return None
                return (
                    f"/readyz answered {response.status}: {_failed_checks(await response.text())}"
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def tree_unsupported(self) -> str:
        return ""

    async def ensure_tree(self, vc: Obj, owner: str) -> str:
        layout = self.layout(vc)
        try:
            return await asyncio.to_thread(self._start_tree, layout, owner)
        except (OSError, ports.PortsExhausted) as exc:
            raise ProviderError(f"cannot run the tenant's ClusterTree: {exc}") from exc

    def _start_tree(self, layout: Layout, owner: str) -> str:
        """The cluster-manager process, on a port of its own from the range (allocated the
        first time: tenants without the plugin do not hold one)."""
        name = components.CLUSTER_MANAGER
        if processes.running(layout.dir, name) is not None:
            return ""
        address = self.settings.advertise_address
        hosts = list(dict.fromkeys(["127.0.0.1", address]))
        port = ports.allocate(self.state_dir, layout.dir, [name], self.settings.port_range, hosts)
        exited = processes.last_words(layout.dir, name)
        argv = components.cluster_manager(layout, sys.executable, port[name], address, owner)
        processes.start(layout.dir, name, argv)
        log.info("tenant %s: started %s", layout.dir.name, name)
        return f"ClusterTree: started {name}" + (f" (it had exited: {exited})" if exited else "")

    def admin_kubeconfig(self, vc: Obj, pki: TenantPKI, port: int) -> str:
        """The admin kubeconfig for users: the advertise address, not loopback."""
        return admin_kubeconfig(
            self.endpoint(port), pki.files["ca.crt"], *pki.pair(ADMIN), cluster_name(vc)
        )

    def pids(self, vc: Obj) -> list[int]:
        return processes.tenant_pids(self.layout(vc).dir)

    async def destroy(self, vc: Obj) -> None:
        layout = self.layout(vc)
        await asyncio.to_thread(self._destroy, layout)

    def _destroy(self, layout: Layout) -> None:
        if not layout.dir.exists():
            return
        # the tenant's ClusterTree first, while its apiserver still answers its goodbye;
        # etcd last: an apiserver stopping removes its endpoint from the kubernetes
        # Service, and with etcd gone it retries until its grace period is over (10 s)
        tree = processes.running(layout.dir, components.CLUSTER_MANAGER)
        survivors = processes.stop(layout.dir, [tree] if tree is not None else [])
        users = [processes.running(layout.dir, c) for c in components.PROCESSES[1:]]
        survivors += processes.stop(layout.dir, [pid for pid in users if pid is not None])
        survivors += processes.stop(layout.dir, processes.tenant_pids(layout.dir))
        if survivors:
            raise ProviderError(f"tenant processes {survivors} survived SIGKILL; kept {layout.dir}")
        shutil.rmtree(layout.dir)
