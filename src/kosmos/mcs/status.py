"""Conditions of ServiceExports and ServiceImports, as pure data from the planner's verdicts.

Reasons follow the MCS API (mcs-api.md §2): ``Valid`` True ``Valid`` / False ``NoService``,
``InvalidServiceType`` (and ``InvalidClusterID``, ``NoPorts`` of ours); ``Ready`` True
``Exported`` / False ``Failed``; ``Conflict`` True with comma-joined reasons (no spaces:
the CRD's reason pattern) / False ``NoConflicts``. Messages are cut to the CRD's limit.
"""

from __future__ import annotations

from kosmos.api.objects import Obj, conditions_of, with_condition
from kosmos.mcs.planner import Verdict

#: the CRD allows 32768; a readable status is much shorter
MAX_MESSAGE = 2000


def condition(kind: str, status: bool, reason: str, message: str, generation: int = 0) -> Obj:
    out: Obj = {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message[:MAX_MESSAGE],
    }
    if generation:
        out["observedGeneration"] = generation
    return out


def export_conditions(export: Obj, verdict: Verdict, imported: bool) -> list[Obj]:
    """The export's conditions after this verdict (transition times kept where unchanged)."""
    generation = int(export.get("metadata", {}).get("generation") or 0)
    current = conditions_of(export)
    wanted = [condition("Valid", verdict.valid, verdict.reason, verdict.message, generation)]
    if not verdict.valid:
        wanted.append(condition("Ready", False, "Failed", verdict.message, generation))
    elif imported:
        message = "the service is imported in the clusterset"
        wanted.append(condition("Ready", True, "Exported", message, generation))
    else:
        message = "waiting for the imports to be written"
        wanted.append(condition("Ready", False, "Pending", message, generation))
    if verdict.conflicts:
        reasons = ",".join(verdict.conflicts)
        wanted.append(condition("Conflict", True, reasons, verdict.conflict_message, generation))
    else:
        wanted.append(condition("Conflict", False, "NoConflicts", "", generation))
    for new in wanted:
        current = with_condition(current, new)
    return current


def import_conditions(current_obj: Obj, ready: bool, reason: str, message: str) -> list[Obj]:
    return with_condition(conditions_of(current_obj), condition("Ready", ready, reason, message))


def transitions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """Conditions of ``new`` whose status or reason differs from ``old``'s (events to send)."""
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in old}
    return [c for c in new if before.get(c.get("type")) != (c.get("status"), c.get("reason"))]
