"""Two CAs (the agents' and a stranger's) and an agent over a fake backend on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kosmos.kube.authority import Authority
from kosmos.nodeagent import server
from tests.unit.nodeagent.fakes import OPERATOR, TOKEN, FakeBackend, Pki, Running


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("nodeagent-pki")
    ca = Authority.create("kosmos-node-agent-ca")
    other = Authority.create("somebody-else-ca")
    pairs = {
        "agent": ca.issue("node-1", server_sans=["127.0.0.1", "node-1"], client=False, days=365),
        "operator": ca.issue(OPERATOR, days=365),
        "stranger": other.issue(OPERATOR, days=365),
    }
    result = Pki(base, ca.pair()[0], other.pair()[0])
    for name, (cert, key) in pairs.items():
        for ext, data in (("crt", cert), ("key", key)):
            path = base / f"{name}.{ext}"
            path.write_bytes(data)
            result.files[f"{name}.{ext}"] = path
    ca_file = base / "ca.crt"
    ca_file.write_bytes(result.ca)
    result.files["ca.crt"] = ca_file
    return result


@pytest.fixture
async def agent(pki: Pki) -> AsyncIterator[Running]:
    backend = FakeBackend()
    files = pki.files
    context = server.ssl_context(files["agent.crt"], files["agent.key"], files["ca.crt"])
    running = await server.start(server.Agent(backend, TOKEN), "127.0.0.1", 0, context)
    try:
        yield Running(running.port, backend, pki)
    finally:
        await running.stop()
