import gzip
import io
import tarfile

import orjson
import pytest

from kosmos.migration import archive
from kosmos.migration.archive import BackupError

META = {"policy": "default/p", "cluster": "c1", "namespaces": ["app"], "created": "2026-01-01"}


def items():
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "app"}},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "app"},
            "spec": {"podSelector": {}},
        },
    ]


def repack(data, change):
    """The archive's files, changed by ``change(files)``, packed again."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            files[member.name] = tar.extractfile(member).read()
    change(files)
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb") as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_build_is_deterministic_and_read_gives_it_back_in_order():
    data = archive.build(META, items())
    assert data == archive.build(dict(META), items())
    backup = archive.read(data)
    assert backup.meta == META
    assert backup.items == items()
    assert [e.path for e in backup.entries] == [
        "resources/namespaces/_cluster/app.json",
        "resources/configmaps/app/c.json",
        "resources/networkpolicies.networking.k8s.io/app/deny.json",
    ]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getnames()[0] == "manifest.json"
        assert {m.mtime for m in tar} == {0}


@pytest.mark.parametrize(
    ("kind", "plural"),
    [("Ingress", "ingresses"), ("NetworkPolicy", "networkpolicies"), ("Pod", "pods")],
)
def test_guess_plural(kind, plural):
    assert archive.guess_plural(kind) == plural


def test_a_changed_file_is_named():
    def change(files):
        files["resources/configmaps/app/c.json"] += b" "

    with pytest.raises(BackupError, match=r"configmaps/app/c.json \(ConfigMap app/c\): sha256"):
        archive.read(repack(archive.build(META, items()), change))


def test_a_missing_or_extra_file_and_a_bad_manifest_are_refused():
    data = archive.build(META, items())
    with pytest.raises(BackupError, match="ConfigMap app/c.*missing"):
        archive.read(repack(data, lambda f: f.pop("resources/configmaps/app/c.json")))
    with pytest.raises(BackupError, match="not in the manifest: x.json"):
        archive.read(repack(data, lambda f: f.update({"x.json": b"{}"})))
    with pytest.raises(BackupError, match="no manifest.json"):
        archive.read(repack(data, lambda f: f.pop("manifest.json")))

    def other_format(files):
        manifest = orjson.loads(files["manifest.json"])
        manifest["format"] = "v0"
        files["manifest.json"] = orjson.dumps(manifest)

    with pytest.raises(BackupError, match="format 'v0'"):
        archive.read(repack(data, other_format))


def test_a_file_swapped_with_its_digest_is_still_caught():
    def swap(files):
        manifest = orjson.loads(files["manifest.json"])
        body = orjson.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "other", "namespace": "app"},
            }
        )
        files["resources/configmaps/app/c.json"] = body
        manifest["items"][1]["sha256"] = archive._digest(body)
        files["manifest.json"] = orjson.dumps(manifest)

    with pytest.raises(BackupError, match="holds ConfigMap app/other"):
        archive.read(repack(archive.build(META, items()), swap))


def test_garbage_and_bad_items_are_refused():
    with pytest.raises(BackupError, match="not a readable tar.gz"):
        archive.read(b"not an archive")
    with pytest.raises(BackupError, match="without apiVersion"):
        archive.build(META, [{"metadata": {"name": "x"}}])
    with pytest.raises(BackupError, match="twice"):
        archive.build(META, items() + items()[:1])
