import asyncio
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kosmos.local.nodes import layout, lifecycle, pki, relay
from kosmos.local.nodes.node import archive_digest, images_present
from kosmos.local.nodes.plan import real_node
from kosmos.local.topology import Options, plan

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LISTING = f"""\
REF                           TYPE       DIGEST     SIZE      PLATFORMS   LABELS
docker.io/kosmos/pause:3.10.2 {MANIFEST} sha256:aa  309.9 KiB linux/amd64 -
sha256:0123                   {MANIFEST} sha256:aa  309.9 KiB linux/amd64 -
"""


def test_images_present_maps_references_to_digests():
    assert images_present(LISTING)["docker.io/kosmos/pause:3.10.2"] == "sha256:aa"


def test_archive_digest_is_the_manifest_the_index_names(tmp_path):
    index = {"schemaVersion": 2, "manifests": [{"digest": "sha256:bb", "size": 1}]}
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert archive_digest(archive) == "sha256:bb"


def test_node_kinds_and_rows():
    assert lifecycle.kind_of({"local.kosmos.io/real-node": "true"}) == "real"
    assert lifecycle.kind_of({"kwok.x-k8s.io/node": "fake"}) == "kwok"
    assert lifecycle.kind_of({"kosmos.io/node": "true"}) == "leaf"
    assert lifecycle.kind_of({}) == "other"
    node = {
        "metadata": {"name": "c1-node1", "labels": {"kwok.x-k8s.io/node": "fake"}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"containerRuntimeVersion": "kwok"},
        },
    }
    (row,) = lifecycle.node_rows("cluster1", [node])
    assert (row.kind, row.runtime, row.ready, row.processes) == ("kwok", "kwok", True, "-")


def test_relay_routes_parse_and_bytes_go_both_ways():
    assert relay.parse_route("10.200.1.1:17310=127.0.0.1:17310") == (
        ("10.200.1.1", 17310),
        ("127.0.0.1", 17310),
    )
    with pytest.raises(ValueError):
        relay.parse_route("10.200.1.1:17310")

    async def scenario() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"echo:" + await reader.read(100))
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        target = upstream.sockets[0].getsockname()[:2]
        front = await asyncio.start_server(relay._handler(target), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*front.sockets[0].getsockname()[:2])
        writer.write(b"hello")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        front.close()
        upstream.close()
        return answer

    assert asyncio.run(scenario()) == b"echo:hello"


def _ca(directory: Path, serial: int = 0) -> None:
    """A CA like kwokctl's (RSA, serial number zero) and its admin pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kwok-ca")])
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or 1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (directory / "ca.key").write_bytes(pem)
    (directory / "admin.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "admin.key").write_bytes(pem)


def test_kubelet_gets_a_node_identity_signed_by_the_cluster_ca_kept_across_runs(tmp_path):
    ca = tmp_path / "pki"
    _ca(ca)
    kubelet, admin = tmp_path / "kubelet.kubeconfig", tmp_path / "admin.kubeconfig"
    assert pki.ensure_kubeconfigs(ca, "c1-real1", "https://10.200.0.1:1", kubelet, admin)
    config = yaml.safe_load(kubelet.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://10.200.0.1:1"
    import base64

    cert = x509.load_pem_x509_certificate(
        base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    )
    subject = {a.oid: a.value for a in cert.subject}
    assert subject[NameOID.COMMON_NAME] == "system:node:c1-real1"
    assert subject[NameOID.ORGANIZATION_NAME] == "system:nodes"
    assert oct(kubelet.stat().st_mode & 0o777) == "0o600"
    assert not pki.ensure_kubeconfigs(ca, "c1-real1", "https://10.200.0.1:1", kubelet, admin)
    _ca(ca)  # a re-created cluster: a new CA, so a new certificate
    assert pki.ensure_kubeconfigs(ca, "c1-real1", "https://10.200.0.1:1", kubelet, admin)


def test_node_record_round_trips_and_put_writes_only_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    node = real_node(plan(Options(real_nodes=1))[1], 1, "kosmos-16400")
    layout.NodeDirs(node.name).create()
    layout.save(node)
    assert layout.load(node.name) == node
    assert layout.recorded() == [node.name]
    target = tmp_path / "f"
    assert layout.put(target, "a") and not layout.put(target, "a") and layout.put(target, "b")
