"""The Kosmos CRDs installed in the host, once per session, as a user would (server-side apply)."""

from __future__ import annotations

import asyncio

import pytest

from kosmos.api import crds
from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS
from tests.fixtures.clusters import LocalEnv


async def install_crds(local_env: LocalEnv) -> list[str]:
    client = await local_env.client(local_env.host)
    names = []
    try:
        for manifest in crds.crd_manifests():
            await client.apply(
                CUSTOMRESOURCEDEFINITIONS, manifest, field_manager="kosmos-test", force=True
            )
            names.append(manifest["metadata"]["name"])
        async with asyncio.timeout(60):
            for name in names:
                while True:
                    crd = await client.get(CUSTOMRESOURCEDEFINITIONS, name)
                    conditions = {
                        c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])
                    }
                    if conditions.get("Established") == "True":
                        break
                    await asyncio.sleep(0.2)
    finally:
        await client.close()
    return names


@pytest.fixture(scope="session")
def kosmos_crds(local_env: LocalEnv) -> list[str]:
    return asyncio.run(install_crds(local_env))
