"""The identity graph's partition into profiles: pure logic, no I/O.

The result depends only on the set of edges (each with the earliest time it was seen), never on
the order they arrived in: edges are applied in ``(seen_at, message_id, a, b)`` order, and a
union that would put two different user ids in one profile is skipped and reported instead.
A same-id edge (an anonymous id equal to a user id, ``SAME_ID_LINK``) is applied before all the
others: that anonymous id is that user's, so an alias from one user id to another (Segment
reads ``previousId`` as an anonymous id) is a conflict, not a merge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

ANONYMOUS_ID: Final = "anonymous_id"
USER_ID: Final = "user_id"
EMAIL: Final = "email"
PHONE: Final = "phone"
NODE_KINDS: Final = frozenset({ANONYMOUS_ID, USER_ID, EMAIL, PHONE})

# The message id of a same-id edge: written by resolution, not by a message.
SAME_ID_LINK: Final = "(same id)"

# Profile ids are uuid5 names under this namespace (a fixed, randomly drawn UUID: changing it
# would give every existing profile a new id).
PROFILE_NAMESPACE: Final = uuid.UUID("8a0f6c55-3d2e-4f1b-9c47-5e6b1d2a7f30")

Node = tuple[str, str]
"""``(kind, key)``: key is the id itself for anonymous_id/user_id, a blind index otherwise."""


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    """Two identifiers seen together; ``a < b`` always (see ``Edge.between``).

    The field order is the order edges are applied in: ``(seen_at, message_id, a, b)``.
    """

    seen_at: datetime
    message_id: str
    a: Node
    b: Node

    @classmethod
    def between(cls, x: Node, y: Node, seen_at: datetime, message_id: str) -> Edge:
        a, b = (x, y) if x <= y else (y, x)
        return cls(seen_at, message_id, a, b)

    @property
    def pair(self) -> tuple[Node, Node]:
        return (self.a, self.b)


@dataclass(frozen=True, slots=True)
class Partition:
    profile_of: dict[Node, uuid.UUID]
    """Every node given (and every edge endpoint) -> the id of the profile that owns it."""
    conflicts: list[Edge]
    """Edges skipped because they would have joined two different user ids, in applied order."""


def profile_id_for(workspace_id: uuid.UUID, members: Iterable[Node]) -> uuid.UUID:
    """The user id node names the profile if there is one, else the smallest ``(kind, key)``."""
    nodes = list(members)
    if not nodes:
        raise ValueError("a profile needs at least one identifier")
    users = [node for node in nodes if node[0] == USER_ID]
    if len(users) > 1:
        raise ValueError("a profile cannot hold two different user ids")
    kind, key = users[0] if users else min(nodes)
    return uuid.uuid5(PROFILE_NAMESPACE, f"{workspace_id}:{kind}:{key}")


def is_same_id(edge: Edge) -> bool:
    """An anonymous id and a user id that are the same string."""
    return edge.a[1] == edge.b[1] and {edge.a[0], edge.b[0]} == {ANONYMOUS_ID, USER_ID}


def _applied_order(edge: Edge) -> tuple[bool, Edge]:
    return (not is_same_id(edge), edge)


def earliest_edges(edges: Iterable[Edge]) -> dict[tuple[Node, Node], Edge]:
    """One edge per pair of nodes: the one seen first (by ``(seen_at, message_id)``)."""
    kept: dict[tuple[Node, Node], Edge] = {}
    for edge in edges:
        current = kept.get(edge.pair)
        if current is None or edge < current:
            kept[edge.pair] = edge
    return kept


def partition(workspace_id: uuid.UUID, nodes: Iterable[Node], edges: Iterable[Edge]) -> Partition:
    """Split nodes into profiles. Works on any number of connected components at once."""
    parent: dict[Node, Node] = {}
    user_of_root: dict[Node, Node | None] = {}

    def add(node: Node) -> None:
        if node not in parent:
            parent[node] = node
            user_of_root[node] = node if node[0] == USER_ID else None

    def find(node: Node) -> Node:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    for node in nodes:
        add(node)
    conflicts: list[Edge] = []
    # Same-id edges first: each joins an anonymous id to the one user id it equals, so none of
    # them is ever a conflict, and what they join no later edge can take away.
    for edge in sorted(earliest_edges(edges).values(), key=_applied_order):
        add(edge.a)
        add(edge.b)
        root_a, root_b = find(edge.a), find(edge.b)
        if root_a == root_b:
            continue
        user_a, user_b = user_of_root[root_a], user_of_root[root_b]
        if user_a is not None and user_b is not None:
            conflicts.append(edge)
            continue
        # The smaller root wins only to keep the structure itself deterministic; ids don't
        # depend on which root survives.
        keep, drop = (root_a, root_b) if root_a < root_b else (root_b, root_a)
        parent[drop] = keep
        user_of_root[keep] = user_a if user_a is not None else user_b
        del user_of_root[drop]

    members: dict[Node, list[Node]] = {}
    for node in parent:
        members.setdefault(find(node), []).append(node)
    profile_of: dict[Node, uuid.UUID] = {}
    for group in members.values():
        profile_id = profile_id_for(workspace_id, group)
        for node in group:
            profile_of[node] = profile_id
    return Partition(profile_of, conflicts)


def groups(profile_of: Mapping[Node, uuid.UUID]) -> dict[uuid.UUID, frozenset[Node]]:
    """Invert a partition: profile id -> its nodes."""
    grouped: dict[uuid.UUID, set[Node]] = {}
    for node, profile_id in profile_of.items():
        grouped.setdefault(profile_id, set()).add(node)
    return {profile_id: frozenset(nodes) for profile_id, nodes in grouped.items()}
