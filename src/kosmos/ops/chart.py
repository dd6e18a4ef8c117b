"""The Helm chart's templates (``charts/kosmos``), generated from install's own builders.

``kosmosctl install`` and ``helm install`` must create the same objects. Rather than keep a
second, hand-written copy of every object in Go templates, the chart's object templates are
rendered here from :mod:`kosmos.ops.manifests` with *sentinel* install options (strings that
appear nowhere else), then each sentinel is replaced by the template expression that reads
the matching value of ``values.yaml``. The hand-written parts of the chart are Chart.yaml,
values.yaml, values.schema.json, _helpers.tpl, NOTES.txt and the metrics and hook templates.

``python -m kosmos.ops.chart [CHART_DIR]`` rewrites the generated files (default
``charts/kosmos``); a unit test fails when the committed ones differ, and another renders the
chart with the real ``helm template`` and compares the objects with ``install_objects``.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import yaml

from kosmos.api import crds, names
from kosmos.api.objects import Obj
from kosmos.api.resources import DAEMONSETS, DEPLOYMENTS
from kosmos.ops import hostlink, linkside, manifests
from kosmos.ops.kubenest import KubenestOptions
from kosmos.ops.manifests import InstallOptions, Planned

CHART_DIR = Path(__file__).resolve().parents[3] / "charts" / "kosmos"
HEADER = "# Generated from kosmos.ops.manifests by `python -m kosmos.ops.chart`: do not edit.\n"
#: The chart label Helm's best practices ask for on every object (not on pod templates:
#: a chart version bump would otherwise roll every pod).
CHART_LABEL = "helm.sh/chart"

#: Install options whose every parameter is a sentinel; each maps to a values key below.
SENTINELS = InstallOptions(
    namespace="sentinel-namespace",
    image_repository="sentinel-repository",
    version="sentinel-tag",
    enable_kubenest=True,
    kubenest=KubenestOptions(
        advertise_address="sentinel-advertise-address",
        node_selector=(("sentinel-cp-key", "sentinel-cp-value"),),
        image_repository="sentinel-kubenest-repository",
    ),
    cni="sentinel-cni",
    default_nic="sentinel-nic",
    node_selector=(("sentinel-node-key", "sentinel-node-value"),),
    pod_annotations=(("sentinel-annotation-key", "sentinel-annotation-value"),),
    auto_mcs_prefixes=("sentinel-auto-mcs",),
    migration=False,
    log_format="sentinel-log-format",
)

#: (workload, container) -> the values key of its resources.
RESOURCES: dict[tuple[str, str], str] = {
    ("kosmos-cluster-manager", "cluster-manager"): "clusterTree.resources",
    ("kosmos-eps-probe", "eps-probe"): "clusterTree.epsProbe.resources",
    ("kosmos-network-manager", "network-manager"): "clusterLink.resources",
    (linkside.AGENT, "agent"): "clusterLink.agent.resources",
    ("kosmos-virtual-cluster-operator", "virtual-cluster-operator"): "kubenest.resources",
    ("kosmos-scheduler", "kube-scheduler"): "scheduler.resources",
    ("kosmos-scheduler", "scheduler-extender"): "scheduler.extender.resources",
    ("kosmos-coredns", "coredns"): "mcsDns.resources",
    ("kosmos-coredns", "zone-writer"): "mcsDns.zoneWriter.resources",
}

#: Text sentinel -> template expression (applied in this order, after the line rules).
SCALARS: tuple[tuple[str, str], ...] = (
    ("sentinel-repository/kosmos:sentinel-tag", '{{ include "kosmos.image" . }}'),
    ("sentinel-repository", '{{ include "kosmos.repository" . }}'),
    ("sentinel-tag", '{{ include "kosmos.tag" . }}'),
    ("sentinel-namespace", "{{ .Release.Namespace }}"),
    ("sentinel-kubenest-repository", "{{ .Values.kubenest.imageRepository }}"),
    ("sentinel-cni", "{{ .Values.clusterLink.cni | quote }}"),
    ("sentinel-nic", "{{ .Values.clusterLink.defaultNic | quote }}"),
    ("imagePullPolicy: IfNotPresent", "imagePullPolicy: {{ .Values.image.pullPolicy }}"),
    (
        "app.kubernetes.io/managed-by: kosmosctl",
        "app.kubernetes.io/managed-by: {{ .Release.Service }}",
    ),
    (f"{CHART_LABEL}: sentinel-chart", f'{CHART_LABEL}: {{{{ include "kosmos.chart" . }}}}'),
)


def _with(path: str, indent: str, body: str) -> str:
    return f"{indent}{{{{- with .Values.{path} }}}}\n{body}{indent}{{{{- end }}}}\n"


def _block(indent: str, key: str, value: str) -> str:
    """``key:`` then ``value`` (a template expression) as YAML, indented under it."""
    return f"{indent}{key}: {{{{- toYaml {value} | nindent {len(indent) + 2} }}}}\n"


def _lines(text: str) -> str:
    """Replace the sentinels that stand for whole lines or optional blocks."""
    text = re.sub(
        r"^( *)nodeSelector:\n *sentinel-node-key: sentinel-node-value\n",
        lambda m: _with("nodeSelector", m[1], _block(m[1], "nodeSelector", ".")),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)annotations:\n *sentinel-annotation-key: sentinel-annotation-value\n",
        lambda m: _with("podAnnotations", m[1], _block(m[1], "annotations", ".")),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)(\S+): sentinel-block:(\S+)\n",
        lambda m: _block(m[1], m[2], f".Values.{m[3]}"),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)- --leader-elect\n",
        lambda m: (
            f"{m[1]}{{{{- if .Values.leaderElection.enabled }}}}\n{m[1]}- --leader-elect\n"
            f"{m[1]}{{{{- else }}}}\n{m[1]}- --no-leader-elect\n{m[1]}{{{{- end }}}}\n"
        ),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)- --advertise-address=sentinel-advertise-address\n",
        lambda m: _with(
            "kubenest.advertiseAddress", m[1], f"{m[1]}- --advertise-address={{{{ . }}}}\n"
        ),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)- --control-plane-node-selector=sentinel-cp-key=sentinel-cp-value\n",
        lambda m: (
            f"{m[1]}{{{{- range $key, $value := .Values.kubenest.controlPlaneNodeSelector }}}}\n"
            f"{m[1]}- --control-plane-node-selector={{{{ $key }}}}={{{{ $value }}}}\n"
            f"{m[1]}{{{{- end }}}}\n"
        ),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)- --auto-mcs-prefix=sentinel-auto-mcs\n",
        lambda m: (
            f"{m[1]}{{{{- range .Values.clusterTree.autoMcsPrefixes }}}}\n"
            f"{m[1]}- --auto-mcs-prefix={{{{ . }}}}\n{m[1]}{{{{- end }}}}\n"
        ),
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^( *)- --log-format=sentinel-log-format\n",
        lambda m: (
            f'{m[1]}{{{{- if ne .Values.logFormat "text" }}}}\n'
            f"{m[1]}- --log-format={{{{ .Values.logFormat }}}}\n{m[1]}{{{{- end }}}}\n"
        ),
        text,
        flags=re.M,
    )
    return re.sub(
        r"^( *)(\S+): sentinel-value:(\S+)\n",
        lambda m: f"{m[1]}{m[2]}: {{{{ .Values.{m[3]} }}}}\n",
        text,
        flags=re.M,
    )


def _prepared(body: Obj) -> Obj:
    """``body`` with the structural sentinels: chart label, resources, root Cluster flags."""
    out = copy.deepcopy(body)
    meta = out["metadata"]
    if "labels" in meta:
        meta["labels"][CHART_LABEL] = "sentinel-chart"
    pod = out.get("spec", {}).get("template", {}).get("spec")
    for container in [*(pod or {}).get("containers", []), *(pod or {}).get("initContainers", [])]:
        if "resources" in container:
            path = RESOURCES[(meta["name"], container["name"])]
            container["resources"] = f"sentinel-block:{path}"
    if out["kind"] == "Cluster":
        spec = out["spec"]
        spec["clusterLinkOptions"]["enable"] = "sentinel-value:clusterLink.enabled"
        spec["clusterTreeOptions"]["enable"] = "sentinel-value:clusterTree.enabled"
    return out


def render_objects(planned: list[Planned]) -> str:
    """The objects as one template body: YAML documents with their sentinels replaced
    (``--log-format`` on the Kosmos containers of workloads, as install writes it)."""
    text = "".join(
        "---\n"
        + yaml.safe_dump(_prepared(_log_formatted(resource, body)), sort_keys=False, width=1 << 20)
        for resource, body in planned
    )
    if "{{" in text:
        raise ValueError("an object holds '{{': it would be read as a template action")
    text = _lines(text)
    for sentinel, expression in SCALARS:
        text = text.replace(sentinel, expression)
    if "sentinel-" in text:
        left = sorted(set(re.findall(r"sentinel-[\w:.-]+", text)))
        raise ValueError(f"sentinels without a values key: {', '.join(left)}")
    return text


def _log_formatted(resource: object, body: Obj) -> Obj:
    """Deployments as install's ``install_objects`` writes them (the host agents' DaemonSet
    comes with it from :func:`kosmos.ops.hostlink.agent_daemonset`)."""
    if resource == DEPLOYMENTS:
        return manifests.with_log_format(copy.deepcopy(body), SENTINELS.image, SENTINELS.log_format)
    return body


def _guarded(condition: str, body: str) -> str:
    return f"{{{{- if {condition} }}}}\n{body}{{{{- end }}}}\n"


def host_agent_objects(options: InstallOptions) -> list[Planned]:
    """The host's own ClusterLink agents, as :func:`kosmos.ops.hostlink.set_up` applies them."""
    _, root = manifests.root_cluster(options)
    cluster = root["metadata"]["name"]
    return [
        *linkside.host_objects(cluster, linkside.key_secrets(root)),
        (DAEMONSETS, hostlink.agent_daemonset(options)),
    ]


def templates() -> dict[str, str]:
    """File name under ``templates/`` -> generated content."""
    o, tree, link = SENTINELS, ".Values.clusterTree.enabled", ".Values.clusterLink.enabled"
    migration = manifests.migration_objects(o)
    return {
        "cluster-manager.yaml": _guarded(
            tree,
            render_objects(manifests.component_objects(o, manifests.CLUSTER_MANAGER))
            + _guarded(".Values.clusterTree.migration", render_objects(migration)),
        ),
        "eps-probe.yaml": _guarded(tree, render_objects(manifests.host_probe_objects(o))),
        "network-manager.yaml": _guarded(
            link, render_objects(manifests.component_objects(o, manifests.NETWORK_MANAGER))
        ),
        "host-agents.yaml": _guarded(
            f'and {link} (eq .Release.Namespace "{names.SYSTEM_NAMESPACE}")',
            render_objects(host_agent_objects(o)),
        ),
        "virtual-cluster-operator.yaml": _guarded(
            ".Values.kubenest.enabled",
            render_objects(manifests.component_objects(o, manifests.VIRTUAL_CLUSTER_OPERATOR)),
        ),
        "scheduler.yaml": _guarded(
            ".Values.scheduler.enabled", render_objects(manifests.scheduler_objects(o))
        ),
        "mcs-dns.yaml": _guarded(
            f"and {tree} .Values.mcsDns.enabled", render_objects(manifests.mcs_dns_objects(o))
        ),
        "root-cluster.yaml": render_objects([manifests.root_cluster(o)]),
    }


def write(chart_dir: Path = CHART_DIR) -> list[Path]:
    """Write the generated templates and the CRDs (``crds/``) into ``chart_dir``."""
    written = []
    for name, body in templates().items():
        path = chart_dir / "templates" / name
        path.write_text(HEADER + body)
        written.append(path)
    (chart_dir / "crds").mkdir(parents=True, exist_ok=True)
    for manifest in crds.crd_manifests():
        path = chart_dir / "crds" / crds.file_name(manifest)
        path.write_text(crds.render(manifest))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else CHART_DIR):
        print(written_path)
