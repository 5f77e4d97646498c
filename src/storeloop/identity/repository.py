"""Every query of the identity domain, each scoped to one workspace.

Writes are Core bulk statements (the resolver runs on the ingestion hot path); upserts use the
dialect's own ``INSERT ... ON CONFLICT`` so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storeloop.identity.graph import Edge, Node
from storeloop.kit.pagination import older_than
from storeloop.kit.timeutil import as_utc
from storeloop.models import Event, Identifier, IdentityConflict, IdentityLink, Profile, TraitSet

logger = logging.getLogger(__name__)

_IDENTIFIERS = cast(Table, Identifier.__table__)
_LINKS = cast(Table, IdentityLink.__table__)
_CONFLICTS = cast(Table, IdentityConflict.__table__)
_TRAIT_SETS = cast(Table, TraitSet.__table__)
_PROFILES = cast(Table, Profile.__table__)
_EVENTS = cast(Table, Event.__table__)

# Keeps every IN list well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 400

_T = TypeVar("_T")


def _chunks(items: Iterable[_T], size: int = _CHUNK) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _match_nodes(
    kind_column: ColumnElement[str], key_column: ColumnElement[str], nodes: Iterable[Node]
) -> ColumnElement[bool]:
    """``kind = k AND key IN (...)`` per kind: an index range scan on both databases, where a
    row-value IN list of hundreds of pairs is slow to plan on PostgreSQL."""
    keys_of: dict[str, list[str]] = {}
    for kind, key in nodes:
        keys_of.setdefault(kind, []).append(key)
    return or_(
        *(and_(kind_column == kind, key_column.in_(keys)) for kind, keys in sorted(keys_of.items()))
    )


@dataclass(frozen=True, slots=True)
class IdentifierRecord:
    node: Node
    profile_id: uuid.UUID
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Component:
    """The part of the identity graph reachable from some seed nodes."""

    nodes: set[Node]
    edges: list[Edge]
    truncated: bool


@dataclass(frozen=True, slots=True)
class ProfileTimes:
    first_seen_at: datetime
    last_seen_at: datetime


class IdentityRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # -- dialect helpers -------------------------------------------------------------------

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _edge_row(self, edge: Edge) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "a_kind": edge.a[0],
            "a_key": edge.a[1],
            "b_kind": edge.b[0],
            "b_key": edge.b[1],
            "message_id": edge.message_id,
        }

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _in_text_order(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """Compare strings by code point, as Python does, whatever the database's collation."""
        return column.collate("C") if self._dialect == "postgresql" else column

    @property
    def has_concurrent_writers(self) -> bool:
        """SQLite admits one writer at a time, and a transaction that read before another one
        committed fails when it writes; PostgreSQL lets several run side by side."""
        return self._dialect == "postgresql"

    def lock_graph(self) -> bool:
        """Serialise changes to this workspace's graph until the transaction ends; True when a
        lock was taken (so rows read from now on are current).

        Two workers recomputing overlapping components at once could otherwise each write a
        partition computed without the other's edges.
        """
        if not self.has_concurrent_writers:
            return False
        digest = hashlib.blake2b(
            b"storeloop:identity-graph:" + self.workspace_id.bytes, digest_size=8
        )
        key = int.from_bytes(digest.digest(), "big", signed=True)
        self.session.execute(select(func.pg_advisory_xact_lock(key)))
        return True

    # -- identifiers -----------------------------------------------------------------------

    def identifiers(self, nodes: Iterable[Node]) -> dict[Node, IdentifierRecord]:
        found: dict[Node, IdentifierRecord] = {}
        columns = _IDENTIFIERS.c
        for chunk in _chunks(nodes):
            rows = self.session.execute(
                select(columns.kind, columns.key, columns.profile_id, columns.first_seen_at).where(
                    columns.workspace_id == self.workspace_id,
                    _match_nodes(columns.kind, columns.key, chunk),
                )
            )
            for kind, key, profile_id, first_seen_at in rows:
                found[(kind, key)] = IdentifierRecord(
                    (kind, key), profile_id, as_utc(first_seen_at)
                )
        return found

    def identifiers_of_profiles(
        self, profile_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[IdentifierRecord]]:
        found: dict[uuid.UUID, list[IdentifierRecord]] = {}
        columns = _IDENTIFIERS.c
        for chunk in _chunks(profile_ids):
            rows = self.session.execute(
                select(columns.kind, columns.key, columns.profile_id, columns.first_seen_at).where(
                    columns.workspace_id == self.workspace_id, columns.profile_id.in_(chunk)
                )
            )
            for kind, key, profile_id, first_seen_at in rows:
                found.setdefault(profile_id, []).append(
                    IdentifierRecord((kind, key), profile_id, as_utc(first_seen_at))
                )
        return found

    def identifier_rows_of_profile(self, profile_id: uuid.UUID) -> Sequence[Identifier]:
        return self.session.scalars(
            select(Identifier)
            .where(
                Identifier.workspace_id == self.workspace_id, Identifier.profile_id == profile_id
            )
            .order_by(Identifier.first_seen_at, Identifier.kind, Identifier.key)
        ).all()

    def owning_profiles(self, profile_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``profile_ids`` that still own at least one identifier."""
        owning: set[uuid.UUID] = set()
        columns = _IDENTIFIERS.c
        for chunk in _chunks(profile_ids):
            owning.update(
                self.session.scalars(
                    select(columns.profile_id)
                    .where(columns.workspace_id == self.workspace_id, columns.profile_id.in_(chunk))
                    .distinct()
                )
            )
        return owning

    def upsert_identifiers(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows carry kind, key, profile_id, first_seen_at and value_sealed. An existing row
        takes the new profile_id and the earlier first_seen_at; its sealed value never changes."""
        if not rows:
            return
        statement = self._insert(_IDENTIFIERS)
        excluded, current = statement.excluded, _IDENTIFIERS.c
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "kind", "key"],
            set_={
                "profile_id": excluded.profile_id,
                "first_seen_at": case(
                    (excluded.first_seen_at < current.first_seen_at, excluded.first_seen_at),
                    else_=current.first_seen_at,
                ),
            },
        )
        self.session.execute(statement, [{"workspace_id": self.workspace_id, **r} for r in rows])

    # -- links -----------------------------------------------------------------------------

    def _edge(self, row: Row[Any]) -> Edge:
        return Edge(
            as_utc(row.seen_at), row.message_id, (row.a_kind, row.a_key), (row.b_kind, row.b_key)
        )

    def links(self, pairs: Iterable[tuple[Node, Node]]) -> dict[tuple[Node, Node], Edge]:
        """The stored edges among ``pairs``, found through their a side (the primary key)."""
        wanted = set(pairs)
        found: dict[tuple[Node, Node], Edge] = {}
        columns = _LINKS.c
        for chunk in _chunks(sorted({a for a, _b in wanted})):
            rows = self.session.execute(
                select(_LINKS).where(
                    columns.workspace_id == self.workspace_id,
                    _match_nodes(columns.a_kind, columns.a_key, chunk),
                )
            )
            for row in rows:
                edge = self._edge(row)
                if edge.pair in wanted:
                    found[edge.pair] = edge
        return found

    def upsert_links(self, edges: Sequence[Edge]) -> None:
        """Insert new edges; an existing edge keeps the earliest ``(seen_at, message_id)``."""
        if not edges:
            return
        statement = self._insert(_LINKS)
        excluded = statement.excluded
        current = _LINKS.c
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "a_kind", "a_key", "b_kind", "b_key"],
            set_={"seen_at": excluded.seen_at, "message_id": excluded.message_id},
            where=or_(
                excluded.seen_at < current.seen_at,
                and_(
                    excluded.seen_at == current.seen_at,
                    self._in_text_order(excluded.message_id)
                    < self._in_text_order(current.message_id),
                ),
            ),
        )
        self.session.execute(
            statement,
            [{**self._edge_row(edge), "seen_at": edge.seen_at} for edge in edges],
        )

    def links_touching(self, nodes: Collection[Node]) -> list[Edge]:
        """Edges with either end in ``nodes``: the primary key serves the a side, the reverse
        index the b side."""
        edges: list[Edge] = []
        columns = _LINKS.c
        for chunk in _chunks(nodes):
            for kind_column, key_column in (
                (columns.a_kind, columns.a_key),
                (columns.b_kind, columns.b_key),
            ):
                rows = self.session.execute(
                    select(_LINKS).where(
                        columns.workspace_id == self.workspace_id,
                        _match_nodes(kind_column, key_column, chunk),
                    )
                )
                edges.extend(self._edge(row) for row in rows)
        return edges

    def component(self, seeds: Iterable[Node], max_nodes: int) -> Component:
        """Breadth-first search over links in both directions, all seeds at once.

        A component stops growing at ``max_nodes`` nodes; the edges leading out of it are left
        out and ``truncated`` is set.
        """
        parent: dict[Node, Node] = {}
        size: dict[Node, int] = {}

        def find(node: Node) -> Node:
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        def union(x: Node, y: Node) -> None:
            root_x, root_y = find(x), find(y)
            if root_x != root_y:
                parent[root_y] = root_x
                size[root_x] += size.pop(root_y)

        frontier = set(seeds)
        for seed in frontier:
            parent[seed] = seed
            size[seed] = 1
        edges: dict[tuple[Node, Node], Edge] = {}
        truncated = False
        while frontier:
            next_frontier: set[Node] = set()
            for edge in self.links_touching(frontier):
                if edge.pair in edges:
                    continue
                if edge.a in parent and edge.b in parent:
                    edges[edge.pair] = edge
                    union(edge.a, edge.b)
                    continue
                inside, outside = (edge.a, edge.b) if edge.a in parent else (edge.b, edge.a)
                if size[find(inside)] >= max_nodes:
                    truncated = True
                    continue
                parent[outside] = outside
                size[outside] = 1
                union(inside, outside)
                edges[edge.pair] = edge
                next_frontier.add(outside)
            frontier = next_frontier
        if truncated:
            logger.warning(
                "identity component in workspace %s reached %d identifiers; stopped expanding it",
                self.workspace_id,
                max_nodes,
            )
        return Component(set(parent), list(edges.values()), truncated)

    # -- trait sets ------------------------------------------------------------------------

    def trait_sets(self, nodes: Iterable[Node]) -> dict[Node, bytes]:
        found: dict[Node, bytes] = {}
        columns = _TRAIT_SETS.c
        for chunk in _chunks(nodes):
            rows = self.session.execute(
                select(columns.node_kind, columns.node_key, columns.traits_sealed).where(
                    columns.workspace_id == self.workspace_id,
                    _match_nodes(columns.node_kind, columns.node_key, chunk),
                )
            )
            for kind, key, sealed in rows:
                found[(kind, key)] = sealed
        return found

    def upsert_trait_sets(self, rows: Sequence[tuple[Node, bytes, datetime]]) -> None:
        if not rows:
            return
        statement = self._insert(_TRAIT_SETS)
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "node_kind", "node_key"],
            set_={
                "traits_sealed": statement.excluded.traits_sealed,
                "updated_at": statement.excluded.updated_at,
            },
        )
        self.session.execute(
            statement,
            [
                {
                    "workspace_id": self.workspace_id,
                    "node_kind": node[0],
                    "node_key": node[1],
                    "traits_sealed": sealed,
                    "updated_at": updated_at,
                }
                for node, sealed, updated_at in rows
            ],
        )

    # -- profiles --------------------------------------------------------------------------

    def profile_times(self, profile_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProfileTimes]:
        found: dict[uuid.UUID, ProfileTimes] = {}
        columns = _PROFILES.c
        for chunk in _chunks(profile_ids):
            rows = self.session.execute(
                select(columns.id, columns.first_seen_at, columns.last_seen_at).where(
                    columns.workspace_id == self.workspace_id, columns.id.in_(chunk)
                )
            )
            for profile_id, first_seen_at, last_seen_at in rows:
                found[profile_id] = ProfileTimes(as_utc(first_seen_at), as_utc(last_seen_at))
        return found

    def upsert_profiles(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write whole profile rows; an existing row (even a merged one) becomes active again."""
        if not rows:
            return
        statement = self._insert(_PROFILES)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                name: excluded[name]
                for name in (
                    "merged_into",
                    "first_seen_at",
                    "last_seen_at",
                    "updated_at",
                    "email_index",
                    "phone_index",
                    "personal_sealed",
                    "traits",
                )
            },
            # A profile id names one workspace's identifiers; never touch another's row.
            where=_PROFILES.c.workspace_id == excluded.workspace_id,
        )
        self.session.execute(
            statement,
            [{"workspace_id": self.workspace_id, "merged_into": None, **row} for row in rows],
        )

    def widen_seen(self, rows: Sequence[tuple[uuid.UUID, datetime, datetime, datetime]]) -> None:
        """Move first_seen_at back / last_seen_at forward: (profile_id, first, last, now)."""
        if not rows:
            return
        columns = _PROFILES.c
        first = bindparam("b_first", type_=columns.first_seen_at.type)
        last = bindparam("b_last", type_=columns.last_seen_at.type)
        statement = (
            update(_PROFILES)
            .where(columns.workspace_id == self.workspace_id, columns.id == bindparam("b_id"))
            .values(
                first_seen_at=case(
                    (columns.first_seen_at > first, first), else_=columns.first_seen_at
                ),
                last_seen_at=case((columns.last_seen_at < last, last), else_=columns.last_seen_at),
                updated_at=bindparam("b_now", type_=columns.updated_at.type),
            )
        )
        self.session.execute(
            statement,
            [
                {"b_id": profile_id, "b_first": first_at, "b_last": last_at, "b_now": now}
                for profile_id, first_at, last_at, now in rows
            ],
        )

    def merge_profiles(self, merges: Sequence[tuple[uuid.UUID, uuid.UUID]], now: datetime) -> None:
        """Mark each (merged, into) pair: old ids keep resolving by following merged_into.

        Redirects that pointed at ``merged`` are not rewritten (that needs an index on
        merged_into); readers follow the chain instead.
        """
        if not merges:
            return
        columns = _PROFILES.c
        self.session.execute(
            update(_PROFILES)
            .where(columns.workspace_id == self.workspace_id, columns.id == bindparam("b_id"))
            .values(
                merged_into=bindparam("b_into", type_=columns.merged_into.type),
                updated_at=bindparam("b_now", type_=columns.updated_at.type),
            ),
            [{"b_id": merged, "b_into": into, "b_now": now} for merged, into in merges],
        )

    def merged_among(self, profile_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``profile_ids`` that have been folded into another profile."""
        merged: set[uuid.UUID] = set()
        columns = _PROFILES.c
        for chunk in _chunks(profile_ids):
            merged.update(
                self.session.scalars(
                    select(columns.id).where(
                        columns.workspace_id == self.workspace_id,
                        columns.id.in_(chunk),
                        columns.merged_into.is_not(None),
                    )
                )
            )
        return merged

    def profile(self, profile_id: uuid.UUID) -> Profile | None:
        return self.session.scalar(
            select(Profile).where(
                Profile.workspace_id == self.workspace_id, Profile.id == profile_id
            )
        )

    def profile_ids_of(self, nodes: Iterable[Node]) -> dict[Node, uuid.UUID]:
        return {node: record.profile_id for node, record in self.identifiers(nodes).items()}

    def list_profiles(
        self,
        *,
        only: Collection[uuid.UUID] | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> Sequence[Profile]:
        """Active profiles, most recently seen first, keyset-paged by (last_seen_at, id)."""
        query = select(Profile).where(
            Profile.workspace_id == self.workspace_id, Profile.merged_into.is_(None)
        )
        if only is not None:
            query = query.where(Profile.id.in_(list(only)))
        if after is not None:
            query = query.where(older_than(Profile.last_seen_at, Profile.id, after))
        query = query.order_by(Profile.last_seen_at.desc(), Profile.id.desc()).limit(limit)
        return self.session.scalars(query).all()

    # -- conflicts and events --------------------------------------------------------------

    def add_conflicts(self, edges: Sequence[Edge], detected_at: datetime) -> None:
        if not edges:
            return
        statement = self._insert(_CONFLICTS)
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "a_kind", "a_key", "b_kind", "b_key"],
            # The link may since have been seen earlier, by another message; keep detected_at.
            set_={"message_id": statement.excluded.message_id},
        )
        self.session.execute(
            statement,
            [{**self._edge_row(edge), "detected_at": detected_at} for edge in edges],
        )

    def remove_conflicts(self, pairs: Iterable[tuple[Node, Node]]) -> None:
        """Forget conflicts on these edges: a later-arriving, earlier link resolved them."""
        columns = _CONFLICTS.c
        for chunk in _chunks(pairs):
            self.session.execute(
                delete(_CONFLICTS).where(
                    columns.workspace_id == self.workspace_id,
                    tuple_(columns.a_kind, columns.a_key, columns.b_kind, columns.b_key).in_(
                        [(a[0], a[1], b[0], b[1]) for a, b in chunk]
                    ),
                )
            )

    def conflicts(self) -> Sequence[IdentityConflict]:
        return self.session.scalars(
            select(IdentityConflict)
            .where(IdentityConflict.workspace_id == self.workspace_id)
            .order_by(
                IdentityConflict.a_kind,
                IdentityConflict.a_key,
                IdentityConflict.b_kind,
                IdentityConflict.b_key,
            )
        ).all()

    def repoint_events(self, moves: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """Move every event of each old profile to its new one: (old, new) pairs."""
        if not moves:
            return
        columns = _EVENTS.c
        self.session.execute(
            update(_EVENTS)
            .where(
                columns.workspace_id == self.workspace_id,
                columns.profile_id == bindparam("b_old", type_=columns.profile_id.type),
            )
            .values(profile_id=bindparam("b_new", type_=columns.profile_id.type)),
            [{"b_old": old, "b_new": new} for old, new in moves],
        )

    def repoint_events_of(
        self,
        old: uuid.UUID,
        new: uuid.UUID,
        *,
        user_ids: Collection[str],
        anonymous_ids: Collection[str],
    ) -> None:
        """Move only the events whose own identifier moved (a profile that was split)."""
        columns = _EVENTS.c
        for users in _chunks(user_ids):
            self.session.execute(
                update(_EVENTS)
                .where(
                    columns.workspace_id == self.workspace_id,
                    columns.profile_id == old,
                    columns.user_id.in_(users),
                )
                .values(profile_id=new)
            )
        for anonymous in _chunks(anonymous_ids):
            self.session.execute(
                update(_EVENTS)
                .where(
                    columns.workspace_id == self.workspace_id,
                    columns.profile_id == old,
                    columns.user_id.is_(None),
                    columns.anonymous_id.in_(anonymous),
                )
                .values(profile_id=new)
            )

    def has_events(self) -> bool:
        """Whether the workspace has stored any event (one index probe)."""
        return (
            self.session.scalar(
                select(Event.id).where(Event.workspace_id == self.workspace_id).limit(1)
            )
            is not None
        )

    def events_of_profile(
        self, profile_id: uuid.UUID, *, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[Event]:
        """Newest first, keyset-paged by (timestamp, id)."""
        query = select(Event).where(
            Event.workspace_id == self.workspace_id, Event.profile_id == profile_id
        )
        if before is not None:
            query = query.where(older_than(Event.timestamp, Event.id, before))
        query = query.order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit)
        return self.session.scalars(query).all()
