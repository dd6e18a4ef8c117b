"""A process that contends for a Lease; prints LEADING when it holds it (used by tests)."""

from __future__ import annotations

import asyncio
import signal
import sys

from kosmos.kube.client import Client
from kosmos.kube.config import from_kubeconfig
from kosmos.kube.leader import LeaderElectionConfig, LeaderElector


async def main(kubeconfig: str, lease: str, identity: str) -> None:
    client = Client(await from_kubeconfig("host", kubeconfig))
    elector = LeaderElector(client, LeaderElectionConfig("default", lease, identity))
    current = asyncio.current_task()
    assert current is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)

    async def lead() -> None:
        print(f"LEADING {identity}", flush=True)
        await asyncio.Event().wait()

    try:
        await elector.run(lead)
    except asyncio.CancelledError:
        pass
    finally:
        await client.close()
        print(f"EXITED {identity}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
