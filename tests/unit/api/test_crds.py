from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from kosmos.api import crds
from kosmos.api.cluster import Cluster, ClusterLinkOptions, ClusterSpec
from kosmos.api.schema import Embedded, prop, schema_of, to_json

DEPLOY = Path(__file__).parents[3] / "deploy" / "crds"


def test_committed_crds_are_what_the_models_generate():
    expected = {crds.file_name(m): crds.render(m) for m in crds.crd_manifests()}
    committed = {p.name: p.read_text() for p in DEPLOY.glob("*.yaml")}
    stale = sorted(n for n in expected if committed.get(n) != expected[n])
    extra = sorted(set(committed) - set(expected))
    assert not stale and not extra, (
        f"deploy/crds is stale (regenerate: python -m kosmos.api.crds): "
        f"changed {stale}, not generated {extra}"
    )


def test_cluster_crd_has_seed_columns_status_and_category():
    manifest = next(m for m in crds.crd_manifests() if m["spec"]["names"]["kind"] == "Cluster")
    version = manifest["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["NETWORK_TYPE", "IP_FAMILY", "READY", "AGE"]
    assert version["subresources"] == {"status": {}}
    assert manifest["spec"]["names"]["categories"] == ["kosmos-io"]
    assert manifest["spec"]["scope"] == "Cluster"


def test_every_kind_is_found_by_plural_singular_and_short_name():
    assert crds.kind_by_name("clusters") is Cluster
    assert crds.kind_by_name("Cluster") is Cluster
    with pytest.raises(KeyError):
        crds.kind_by_name("nope")


def test_to_json_uses_api_names_and_omits_unset_fields():
    spec = ClusterSpec(cluster_link_options=ClusterLinkOptions(network_type="gateway"))
    out = to_json(spec)
    assert out["namespace"] == "kosmos-system"
    options = out["clusterLinkOptions"]
    assert options["networkType"] == "gateway"
    assert options["defaultNICName"] == "*"
    assert "kubeconfig" not in out and "globalCIDRsMap" not in options


def test_schema_generation_covers_types_and_item_constraints():
    @dataclass
    class Sample:
        mode: Literal["a", "b"] = prop(default="a")
        counts: dict[str, int] = prop(items={"minimum": 0})
        raw: Embedded = prop(embedded=True)
        names: list[str] = prop(required=True, max_items=3)

    schema = schema_of(Sample)
    assert schema["required"] == ["names"]
    assert schema["properties"]["mode"] == {"type": "string", "enum": ["a", "b"], "default": "a"}
    assert schema["properties"]["counts"]["additionalProperties"] == {
        "type": "integer",
        "minimum": 0,
    }
    assert schema["properties"]["raw"]["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["properties"]["names"]["maxItems"] == 3
