"""charts/kosmos: its generated files match the generator, its version Kosmos's."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml

from kosmos.api import crds
from kosmos.ops import chart

ROOT = Path(__file__).resolve().parents[3]


def test_generated_templates_are_committed_as_generated():
    for name, body in chart.templates().items():
        path = chart.CHART_DIR / "templates" / name
        assert path.read_text() == chart.HEADER + body, (
            f"{path} is stale: run `python -m kosmos.ops.chart`"
        )


def test_chart_crds_are_the_generators():
    wanted = {crds.file_name(m): crds.render(m) for m in crds.crd_manifests()}
    present = {p.name: p.read_text() for p in (chart.CHART_DIR / "crds").glob("*.yaml")}
    assert present == wanted, "charts/kosmos/crds is stale: run `python -m kosmos.ops.chart`"
    assert present == {p.name: p.read_text() for p in (ROOT / "deploy" / "crds").glob("*.yaml")}


def test_chart_version_is_kosmoss():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    meta = yaml.safe_load((chart.CHART_DIR / "Chart.yaml").read_text())
    assert meta["version"] == version
    assert meta["appVersion"] == f"v{version}"


def test_every_values_key_is_in_the_schema():
    values = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())
    schema = json.loads((chart.CHART_DIR / "values.schema.json").read_text())

    def walk(node: dict, props: dict, at: str) -> None:
        for key, value in node.items():
            assert key in props, f"{at}{key} is not in values.schema.json"
            sub = props[key]
            if "$ref" in sub:
                continue
            if isinstance(value, dict) and "properties" in sub:
                walk(value, sub["properties"], f"{at}{key}.")

    walk(values, schema["properties"], "")


def test_every_sentinel_becomes_a_template_action():
    for name, body in chart.templates().items():
        assert "sentinel" not in body, name
        assert "kosmosctl" not in body, name  # managed-by is Helm's


def test_each_workload_container_has_its_resources_key():
    values = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())
    for path in chart.RESOURCES.values():
        node = values
        for part in path.split("."):
            node = node[part]
        assert node.get("requests"), path
