"""``kosmos cluster-manager``: ClusterTree, the MCS controllers and application migration
(PromotePolicy) in one process.

Components never import each other; this top layer composes them: ClusterTree's flags,
the MCS flags and the shared ones make one command, and both builders declare their
controllers on one Runtime (one manager and member set, one ``cluster-manager`` Lease).
``--multi-cluster-service`` is also handed to ClusterTree (``Options.multi_cluster_service``),
and so is the MCS cleanup of a member that leaves (``Options.member_cleanups``).
"""

from __future__ import annotations

from typing import Any

import click

from kosmos.clustertree import app as tree_app
from kosmos.kube import component
from kosmos.mcs import app as mcs_app
from kosmos.migration import app as migration_app

COMPONENT = tree_app.COMPONENT


def compose(*builds: Any) -> Any:
    def build(runtime: component.Runtime) -> None:
        for each in builds:
            each(runtime)

    return build


@click.command(COMPONENT)
@tree_app.click_options
@mcs_app.click_options
@component.common_options(COMPONENT, **tree_app.COMMON_DEFAULTS)
def command(common: component.Common, **kwargs: Any) -> None:
    """Run ClusterTree (member clusters as leaf nodes), the multi-cluster services and
    application migration (PromotePolicy)."""
    mcs = mcs_app.options_from(kwargs)
    cleanups = (mcs_app.forget_member,) if mcs.enabled else ()
    tree = tree_app.settings_from(
        common, kwargs, multi_cluster_service=mcs.enabled, member_cleanups=cleanups
    )
    spec = component.Component(COMPONENT, lease=COMPONENT)
    build = compose(tree.builder(), mcs_app.builder(mcs), migration_app.build)
    run = component.run_component(spec, common, build)
    component.main(COMPONENT, common.verbose, run, log_format=common.log_format)
