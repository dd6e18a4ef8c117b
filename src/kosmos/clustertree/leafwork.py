"""Which leaf nodes a leaf-node pass recomputes: those whose inputs changed, not all of them.

A one-to-one member declares a leaf per member node; recomputing every leaf's capacity on
each (coalesced, once a second) member change made a pass cost O(leaves) while a pod start
changes one node. The watches record what changed (``Dirty``: member node names, host leaf
names); ``LeafModels`` maps a member node to its one-to-one leaf in O(1). Leaves that group
several member nodes (group, whole-cluster) are few and recomputed on any member change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kosmos.api.leafmodel import LeafNode


@dataclass
class Dirty:
    """What changed in one member since its last pass."""

    #: member nodes whose Node or whose (foreign) pods changed
    member_nodes: set[str] = field(default_factory=set)
    #: host leaf Nodes that changed (or were deleted) under us
    leaves: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.member_nodes or self.leaves)


@dataclass(frozen=True)
class LeafModels:
    """A Cluster's leaf models, parsed once per version of the Cluster object."""

    leaves: tuple[LeafNode, ...]
    by_name: dict[str, LeafNode]
    #: one-to-one leaves by the member node they stand for
    by_member_node: dict[str, LeafNode]
    #: leaves standing for several member nodes (group, whole-cluster)
    shared: tuple[LeafNode, ...]

    @classmethod
    def of(cls, leaves: Iterable[LeafNode]) -> LeafModels:
        listed = tuple(leaves)
        return cls(
            leaves=listed,
            by_name={leaf.name: leaf for leaf in listed},
            by_member_node={
                leaf.member_node: leaf
                for leaf in listed
                if leaf.mode == "one-to-one" and leaf.member_node
            },
            shared=tuple(leaf for leaf in listed if leaf.mode != "one-to-one"),
        )

    def touched(self, dirty: Dirty) -> list[LeafNode]:
        """The leaves ``dirty`` concerns, in declaration order of lookup; O(len(dirty))."""
        chosen: dict[str, LeafNode] = {}
        for node in dirty.member_nodes:
            leaf = self.by_member_node.get(node)
            if leaf is not None:
                chosen[leaf.name] = leaf
        if dirty.member_nodes:
            chosen.update((leaf.name, leaf) for leaf in self.shared)
        for name in dirty.leaves:
            leaf = self.by_name.get(name)
            if leaf is not None:
                chosen[name] = leaf
        return list(chosen.values())
