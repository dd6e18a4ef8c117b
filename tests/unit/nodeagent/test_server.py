"""The agent over real TLS on 127.0.0.1: both checks (client certificate, bearer token),
the three operations, and how each failure is answered."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

import aiohttp
import pytest

from kosmos.api import nodeagent as api
from kosmos.kube.metrics import REGISTRY
from kosmos.nodeagent import server
from tests.unit.nodeagent.fakes import OPERATOR, Running, eventually, join_body


async def test_state_join_and_leave_with_the_token_and_a_certificate(agent: Running):
    status, body, _ = await agent.call("GET", api.STATE_PATH)
    assert status == 200
    assert api.parse_state(body) == api.State(node="node-1")

    status, body, _ = await agent.call("POST", api.JOIN_PATH, body=join_body(agent.pki))
    assert status == 200
    assert body == {
        "node": "node-1",
        "cluster": api.TENANT,
        "tenant": "team-a/vc1",
        "server": "https://10.0.0.5:6443",
        "kubelet": "running",
    }
    (what, join), *_ = agent.backend.calls[1:]
    assert what == "join"
    assert join == api.parse_join(join_body(agent.pki))

    status, body, _ = await agent.call("POST", api.LEAVE_PATH)
    assert status == 200
    assert body["cluster"] == api.OWN_CLUSTER
    assert [what for what, _ in agent.backend.calls] == ["state", "join", "leave"]


@pytest.mark.parametrize("token", [None, "", "wrong", "s3cret-token-and-more", "s3cret-toke"])
@pytest.mark.parametrize("method,path", [("GET", api.STATE_PATH), ("POST", api.JOIN_PATH)])
async def test_no_or_a_wrong_token_is_401_and_the_backend_is_not_called(
    agent: Running, token: str | None, method: str, path: str
):
    body = join_body(agent.pki) if method == "POST" else None
    status, answer, headers = await agent.call(method, path, token=token, body=body)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert "bearer token" in answer["error"]
    assert agent.backend.calls == []


async def test_another_scheme_than_bearer_is_refused(agent: Running):
    context = agent.pki.context()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            agent.url + api.STATE_PATH,
            headers={"Authorization": "Basic s3cret-token"},
            ssl=context,
        ) as response,
    ):
        assert response.status == 401
    assert agent.backend.calls == []


@pytest.mark.parametrize("client", ["stranger", None], ids=["other-ca", "no-certificate"])
async def test_a_client_without_a_certificate_of_the_agents_ca_is_refused_in_the_handshake(
    agent: Running, client: str | None
):
    context = agent.pki.context(client=client)
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await agent.call("GET", api.STATE_PATH, context=context)
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await agent.call("POST", api.JOIN_PATH, body=join_body(agent.pki), context=context)
    assert agent.backend.calls == []
    # and the agent still serves the operator
    assert (await agent.call("GET", api.STATE_PATH))[0] == 200


async def test_a_client_that_trusts_another_ca_refuses_the_agent(agent: Running):
    context = agent.pki.context(trust=agent.pki.other_ca)
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await agent.call("GET", api.STATE_PATH, context=context)
    assert agent.backend.calls == []


@pytest.mark.parametrize(
    "change,field",
    [
        ({"tenant": "no-namespace"}, "tenant"),
        ({"server": "http://10.0.0.5:6443"}, "server"),
        ({"caData": "not pem"}, "caData"),
        ({"kubelet": {"certData": "", "keyData": "x"}}, "kubelet.certData"),
        ({"proxy": "pem"}, "proxy"),
        ({"clusterDNS": "10.96.0.10"}, "clusterDNS"),
    ],
)
async def test_a_bad_join_body_is_400_naming_the_field(agent: Running, change, field):
    status, body, _ = await agent.call("POST", api.JOIN_PATH, body=join_body(agent.pki, **change))
    assert status == 400
    assert field in body["error"]
    assert agent.backend.calls == []


@pytest.mark.parametrize(
    "data", [b"", b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 30000 + b"]" * 30000]
)
async def test_a_join_body_that_is_no_json_object_is_400(agent: Running, data: bytes):
    status, body, _ = await agent.call("POST", api.JOIN_PATH, data=data)
    assert status == 400
    assert body["error"].startswith("bad join request")
    assert agent.backend.calls == []


async def test_a_body_over_the_limit_is_413(agent: Running):
    huge = join_body(agent.pki, caData="-----BEGIN" + "A" * server.MAX_BODY)
    status, body, _ = await agent.call("POST", api.JOIN_PATH, body=huge)
    assert status == 413
    assert "error" in body
    assert agent.backend.calls == []


@pytest.mark.parametrize(
    "failure,status",
    [
        (api.Refused("node-1 serves tenant team-b/vc2: leave first"), 409),
        (api.Failed("kubelet exited at start: bad flag"), 500),
        (api.BadRequest("clusterDNS: not an address"), 400),
        (KeyError("surprise"), 500),
    ],
)
async def test_backend_failures_map_to_their_status_and_the_agent_keeps_serving(
    agent: Running, failure: Exception, status: int, caplog: pytest.LogCaptureFixture
):
    agent.backend.fail = failure
    with caplog.at_level(logging.INFO, logger="kosmos.nodeagent"):
        got, body, _ = await agent.call("POST", api.JOIN_PATH, body=join_body(agent.pki))
    assert got == status
    assert body["error"] == str(failure)
    assert OPERATOR in caplog.text and "join team-a/vc1" in caplog.text
    if isinstance(failure, KeyError):  # unexpected: its traceback is logged
        assert any(r.exc_info for r in caplog.records)
    got, body, _ = await agent.call("POST", api.LEAVE_PATH)
    assert got == status
    agent.backend.fail = None
    assert (await agent.call("POST", api.LEAVE_PATH))[0] == 200


async def test_unknown_paths_and_methods(agent: Running):
    status, body, _ = await agent.call("GET", "/v1/exec")
    assert (status, body) == (404, {"error": "Not Found"})
    status, body, headers = await agent.call("GET", api.JOIN_PATH)
    assert status == 405
    assert "POST" in headers["Allow"]
    # without the token an unknown path says nothing about which paths exist
    assert (await agent.call("GET", "/v1/exec", token=None))[0] == 401
    assert agent.backend.calls == []


async def test_healthz_needs_the_certificate_but_no_token(agent: Running):
    assert (await agent.call("GET", server.HEALTHZ, token=None))[:2] == (200, "ok")
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await agent.call("GET", server.HEALTHZ, context=agent.pki.context(client=None))


async def test_operations_run_one_at_a_time(agent: Running):
    agent.backend.delay = 0.1
    calls = [agent.call("POST", api.JOIN_PATH, body=join_body(agent.pki)) for _ in range(3)]
    results = await asyncio.gather(*calls, agent.call("POST", api.LEAVE_PATH))
    assert [status for status, _, _ in results] == [200] * 4
    assert agent.backend.most_active == 1


async def test_requests_are_counted_by_operation_and_code(agent: Running):
    def count(op: str, code: str) -> float:
        labels = {"op": op, "code": code}
        return REGISTRY.get_sample_value("kosmos_node_agent_requests_total", labels) or 0.0

    before = (count("state", "200"), count("join", "401"), count("other", "404"))
    await agent.call("GET", api.STATE_PATH)
    await agent.call("POST", api.JOIN_PATH, token="wrong", body={})
    await agent.call("GET", "/nothing")
    after = (count("state", "200"), count("join", "401"), count("other", "404"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
    status, text, _ = await agent.call("GET", server.METRICS)
    assert status == 200 and "kosmos_node_agent_requests_total" in text


def test_an_empty_token_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        server.Agent(object(), "")  # type: ignore[arg-type]


def _handshake(port: int, context: ssl.SSLContext) -> None:
    """A blocking client, which sends its alert before closing (asyncio's does not)."""
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


async def test_a_client_that_refuses_the_agent_is_logged(
    agent: Running, caplog: pytest.LogCaptureFixture
):
    context = agent.pki.context(trust=agent.pki.other_ca)
    with caplog.at_level(logging.WARNING, logger="kosmos.nodeagent"):
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.to_thread(_handshake, agent.port, context)
        await eventually(lambda: "refused the agent's certificate" in caplog.text)
    assert "tlsv1_alert_unknown_ca" in caplog.text
