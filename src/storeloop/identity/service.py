"""Resolving observations into profiles (called by the ingestion worker inside its transaction),
and reading profiles back for the management API.

Plaintext emails, phones and names never leave this module unsealed: identifiers store a blind
index as the key and the sealed value beside it; trait sets and personal traits are sealed.
"""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy.orm import Session

from storeloop.identity import graph
from storeloop.identity.graph import ANONYMOUS_ID, EMAIL, PHONE, USER_ID, Edge, Node
from storeloop.identity.normalize import is_personal_trait, normalize_email, normalize_phone
from storeloop.identity.repository import IdentifierRecord, IdentityRepository
from storeloop.identity.schemas import (
    IdentifierView,
    Observation,
    ProfileDetail,
    ProfilePage,
    ProfileSummary,
    TimelineEvent,
    TimelinePage,
)
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.errors import NotFound, ValidationFailed
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import Profile

# A component is never expanded past this many identifiers (a shared kiosk device or a bot
# reusing one anonymous id would otherwise make every batch walk a huge graph).
COMPONENT_NODE_CAP = 5_000
MAX_PAGE_SIZE = 500
# An old id leads to the live profile through merged_into, one hop per later merge (a chain
# only grows when a profile without a user id is folded again); the bound guards against damage.
_MAX_REDIRECTS = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Trait(NamedTuple):
    """One trait value with the (time, message) that set it: later wins, per key."""

    value: Any
    micros: int
    message_id: str

    @property
    def stamp(self) -> tuple[int, str]:
        return (self.micros, self.message_id)


TraitMap = dict[str, _Trait]


def _micros(moment: datetime) -> int:
    return (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)


def _merge_traits(into: TraitMap, fresh: Mapping[str, _Trait]) -> bool:
    changed = False
    for key, trait in fresh.items():
        current = into.get(key)
        if current is None or trait.stamp > current.stamp:
            into[key] = trait
            changed = True
    return changed


def _trait_set_aad(node: Node) -> bytes:
    return row_aad("trait_sets", f"{node[0]}:{node[1]}", "traits")


def _identifier_aad(node: Node) -> bytes:
    return row_aad("identifiers", f"{node[0]}:{node[1]}", "value")


def _seal_traits(cipher: WorkspaceCipher, node: Node, traits: TraitMap) -> bytes:
    document = {key: [t.value, t.micros, t.message_id] for key, t in traits.items()}
    return cipher.seal(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), _trait_set_aad(node))


def _open_traits(cipher: WorkspaceCipher, node: Node, sealed: bytes) -> TraitMap:
    document = orjson.loads(cipher.open(sealed, _trait_set_aad(node)))
    return {
        key: _Trait(value, micros, message_id)
        for key, (value, micros, message_id) in document.items()
    }


# -- deriving nodes and edges ----------------------------------------------------------------


@dataclass(slots=True)
class _Batch:
    primary_of: dict[str, Node] = field(default_factory=dict)
    # Each node of the batch -> (earliest, latest) timestamp it was observed at.
    seen: dict[Node, tuple[datetime, datetime]] = field(default_factory=dict)
    edges: dict[tuple[Node, Node], Edge] = field(default_factory=dict)
    traits: dict[Node, TraitMap] = field(default_factory=dict)
    # Normalised plaintext of new email/phone nodes, sealed into identifiers.value_sealed.
    values: dict[Node, str] = field(default_factory=dict)

    def observe(self, node: Node, moment: datetime) -> None:
        span = self.seen.get(node)
        self.seen[node] = (
            (moment, moment)
            if span is None
            else (
                min(span[0], moment),
                max(span[1], moment),
            )
        )

    def link(self, x: Node, y: Node, moment: datetime, message_id: str) -> None:
        edge = Edge.between(x, y, moment, message_id)
        current = self.edges.get(edge.pair)
        if current is None or edge < current:
            self.edges[edge.pair] = edge


def _derive(
    observations: Iterable[Observation], cipher: WorkspaceCipher, default_phone_region: str | None
) -> _Batch:
    """Nodes, edges and trait updates of a batch.

    Edges: anonymous_id—user_id whenever a message carries both; for alias, previous_id—user_id
    with previous_id always read as an *anonymous_id* node (Segment's alias folds a previousId,
    usually an anonymous id, into a userId; when it is a user id too, the same-id link that
    ``resolve`` adds puts the anonymous node with that user first, so the alias is recorded as a
    conflict between the two user ids, in any arrival order); for
    identify, the email and phone traits (when valid) each linked to the user_id, or else to the
    anonymous_id. Traits are taken from identify messages only (group traits describe a group).
    """
    batch = _Batch()
    for observation in observations:
        moment = as_utc(observation.timestamp)
        message_id = observation.message_id
        anonymous = (ANONYMOUS_ID, observation.anonymous_id) if observation.anonymous_id else None
        user = (USER_ID, observation.user_id) if observation.user_id else None
        primary = user or anonymous
        if primary is None:
            continue
        batch.primary_of[message_id] = primary
        for node in (anonymous, user):
            if node is not None:
                batch.observe(node, moment)
        if anonymous is not None and user is not None:
            batch.link(anonymous, user, moment, message_id)
        if observation.type == "alias" and observation.previous_id and user is not None:
            previous = (ANONYMOUS_ID, observation.previous_id)
            batch.observe(previous, moment)
            batch.link(previous, user, moment, message_id)
        if observation.type != "identify" or not observation.traits:
            continue
        traits = dict(observation.traits)
        email = normalize_email(traits.get("email"))
        if email is not None:
            traits["email"] = email
            node = (EMAIL, cipher.blind_index(EMAIL, email))
            batch.values[node] = email
            batch.observe(node, moment)
            batch.link(node, primary, moment, message_id)
        phone = normalize_phone(traits.get("phone"), default_phone_region)
        if phone is not None:
            traits["phone"] = phone
            node = (PHONE, cipher.blind_index(PHONE, phone))
            batch.values[node] = phone
            batch.observe(node, moment)
            batch.link(node, primary, moment, message_id)
        stamp = _micros(moment)
        fresh = {key: _Trait(value, stamp, message_id) for key, value in traits.items()}
        _merge_traits(batch.traits.setdefault(primary, {}), fresh)
    return batch


# -- resolve ---------------------------------------------------------------------------------


def resolve(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    observations: Sequence[Observation],
    *,
    default_phone_region: str | None = None,
    on_merge: Callable[[set[uuid.UUID]], object] | None = None,
) -> dict[str, uuid.UUID]:
    """Apply a batch of observations; return message_id -> profile_id of each observation's
    primary identifier (user_id if present, else anonymous_id).

    ``on_merge`` is called with every profile id that lost or gained identifiers to another
    profile in this batch (derived data such as attribution depends on it). Observations with
    neither id are left out of the result. Flushes, never commits.
    """
    if not observations:
        return {}
    now = utcnow()
    repository = IdentityRepository(session, workspace_id)
    batch = _derive(observations, cipher, default_phone_region)
    # Batches that change the graph, traits or add identifiers wait for each other (on
    # PostgreSQL); page views of known visitors, most of the traffic, never take the lock.
    locked = repository.lock_graph() if batch.edges or batch.traits else False
    previous = repository.identifiers(batch.seen)
    # New anonymous and user ids may have a namesake of the other kind (same-id links).
    namesakes = {
        (_COUNTERPART[kind], key): (kind, key)
        for kind, key in batch.seen.keys() - previous.keys()
        if kind in _COUNTERPART
    }
    stored: Collection[Node] = ()
    if not locked and batch.seen.keys() - previous.keys() and repository.lock_graph():
        locked = True
        # Another worker may have added them; the namesakes come in the same statement.
        found = repository.identifiers(batch.seen.keys() | namesakes.keys())
        previous = {node: record for node, record in found.items() if node in batch.seen}
        stored = found.keys()
    elif namesakes.keys() - batch.seen.keys():
        stored = repository.identifiers(namesakes.keys() - batch.seen.keys()).keys()
    _link_same_ids(batch, previous, namesakes, stored)

    changed_edges = _store_links(repository, batch)
    changed_trait_nodes = _store_traits(repository, cipher, batch, now)

    assignment: dict[Node, uuid.UUID] = {}
    rewritten: set[uuid.UUID] = set()
    # New identifiers seen alone: their profile is built in memory, without reading anything.
    singletons: dict[uuid.UUID, Node] = {}
    conflicts: list[Edge] = []
    component_pairs: list[tuple[Node, Node]] = []
    edge_first_seen: dict[Node, datetime] = {}
    seeds = {node for edge in changed_edges for node in edge.pair}
    if seeds:
        component = repository.component(seeds, COMPONENT_NODE_CAP)
        previous.update(
            repository.identifiers(component.nodes - previous.keys() - batch.seen.keys())
        )
        result = graph.partition(workspace_id, component.nodes, component.edges)
        assignment.update(result.profile_of)
        rewritten.update(result.profile_of.values())
        conflicts = result.conflicts
        component_pairs = [edge.pair for edge in component.edges]
        for edge in component.edges:
            for node in edge.pair:
                if node not in edge_first_seen or edge.seen_at < edge_first_seen[node]:
                    edge_first_seen[node] = edge.seen_at
    for node in batch.seen:
        if node not in previous and node not in assignment:
            assignment[node] = graph.profile_id_for(workspace_id, [node])
            singletons[assignment[node]] = node
            rewritten.add(assignment[node])

    def current(node: Node) -> uuid.UUID:
        return assignment[node] if node in assignment else previous[node].profile_id

    _store_identifiers(repository, cipher, batch, previous, assignment, edge_first_seen)
    moved_between = _fold_vacated_profiles(repository, previous, assignment, now)
    if moved_between and on_merge is not None:
        on_merge(moved_between)
    rewritten.update(current(node) for node in changed_trait_nodes)
    _write_profiles(
        repository,
        cipher,
        batch,
        previous,
        rewritten,
        singletons,
        now,
        default_phone_region=default_phone_region,
    )

    spans = _widen_profiles(repository, batch, batch.seen.keys(), current, rewritten, now)
    if repository.has_concurrent_writers and not locked and spans:
        # A merge committed while this batch ran (it locks the old profile's row, so the update
        # above waited for it): read those identifiers again. Otherwise that merge ran after
        # this transaction commits and moves these events itself.
        stale = repository.merged_among(spans)
        if stale:
            moved = [node for node in batch.seen if current(node) in stale]
            previous.update(repository.identifiers(moved))
            _widen_profiles(repository, batch, moved, current, rewritten, now)
    if seeds:
        # Conflicts are kept as the current state of the graph: an earlier link arriving late
        # can change which of two user ids an identifier went with.
        current_conflicts = {edge.pair for edge in conflicts}
        repository.remove_conflicts(
            sorted(pair for pair in component_pairs if pair not in current_conflicts)
        )
        repository.add_conflicts(conflicts, now)
    session.flush()
    return {message_id: current(node) for message_id, node in batch.primary_of.items()}


def _widen_profiles(
    repository: IdentityRepository,
    batch: _Batch,
    nodes: Iterable[Node],
    current: Callable[[Node], uuid.UUID],
    rewritten: Collection[uuid.UUID],
    now: datetime,
) -> dict[uuid.UUID, tuple[datetime, datetime]]:
    """Stretch the seen window of the (not rewritten) profiles these nodes belong to."""
    spans: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    for node in nodes:
        first, last = batch.seen[node]
        profile_id = current(node)
        if profile_id in rewritten:
            continue
        span = spans.get(profile_id)
        spans[profile_id] = (
            (first, last) if span is None else (min(span[0], first), max(span[1], last))
        )
    repository.widen_seen([(pid, first, last, now) for pid, (first, last) in sorted(spans.items())])
    return spans


_COUNTERPART = {ANONYMOUS_ID: USER_ID, USER_ID: ANONYMOUS_ID}


def _link_same_ids(
    batch: _Batch,
    previous: Mapping[Node, IdentifierRecord],
    namesakes: Mapping[Node, Node],
    stored: Collection[Node],
) -> None:
    """Link each new anonymous or user id to its namesake of the other kind (``namesakes``:
    namesake -> the batch's node), when there is one, in the batch or ``stored``:
    ``graph.SAME_ID_LINK``, applied before every other edge. Whichever of the two arrives second
    makes the link, so the graph is the same in any arrival order."""
    for namesake, node in namesakes.items():
        if node not in previous and (namesake in batch.seen or namesake in stored):
            batch.link(node, namesake, batch.seen[node][0], graph.SAME_ID_LINK)


def _store_links(repository: IdentityRepository, batch: _Batch) -> list[Edge]:
    """Write the batch's edges; return those that are new or now seen earlier than stored."""
    if not batch.edges:
        return []
    stored = repository.links(batch.edges)
    changed = [
        edge for pair, edge in batch.edges.items() if pair not in stored or edge < stored[pair]
    ]
    repository.upsert_links(changed)
    return changed


def _store_traits(
    repository: IdentityRepository, cipher: WorkspaceCipher, batch: _Batch, now: datetime
) -> set[Node]:
    """Merge the batch's traits into each node's trait set; return the nodes whose set changed."""
    if not batch.traits:
        return set()
    stored = repository.trait_sets(batch.traits)
    rows: list[tuple[Node, bytes, datetime]] = []
    for node, fresh in batch.traits.items():
        traits = _open_traits(cipher, node, stored[node]) if node in stored else {}
        if _merge_traits(traits, fresh) or node not in stored:
            rows.append((node, _seal_traits(cipher, node, traits), now))
    repository.upsert_trait_sets(rows)
    return {node for node, _sealed, _at in rows}


def _store_identifiers(
    repository: IdentityRepository,
    cipher: WorkspaceCipher,
    batch: _Batch,
    previous: Mapping[Node, IdentifierRecord],
    assignment: Mapping[Node, uuid.UUID],
    edge_first_seen: Mapping[Node, datetime],
) -> None:
    rows: list[dict[str, Any]] = []
    for node in sorted(assignment.keys() | batch.seen.keys()):
        observed = batch.seen.get(node)
        record = previous.get(node)
        if record is None:
            first_seen_at = observed[0] if observed else edge_first_seen.get(node, utcnow())
            value = batch.values.get(node)
            sealed = cipher.seal(value.encode(), _identifier_aad(node)) if value else None
            rows.append(
                {
                    "kind": node[0],
                    "key": node[1],
                    "profile_id": assignment[node],
                    "first_seen_at": first_seen_at,
                    "value_sealed": sealed,
                }
            )
            continue
        profile_id = assignment.get(node, record.profile_id)
        first_seen_at = min(record.first_seen_at, observed[0]) if observed else record.first_seen_at
        if profile_id != record.profile_id or first_seen_at != record.first_seen_at:
            rows.append(
                {
                    "kind": node[0],
                    "key": node[1],
                    "profile_id": profile_id,
                    "first_seen_at": first_seen_at,
                    "value_sealed": None,
                }
            )
    repository.upsert_identifiers(rows)


def _fold_vacated_profiles(
    repository: IdentityRepository,
    previous: Mapping[Node, IdentifierRecord],
    assignment: Mapping[Node, uuid.UUID],
    now: datetime,
) -> set[uuid.UUID]:
    """Redirect profiles left without identifiers, and move events to their nodes' new profile.

    Returns the profiles identifiers moved from and to."""
    moves: dict[uuid.UUID, dict[uuid.UUID, list[Node]]] = {}
    for node, profile_id in assignment.items():
        record = previous.get(node)
        if record is not None and record.profile_id != profile_id:
            moves.setdefault(record.profile_id, {}).setdefault(profile_id, []).append(node)
    if not moves:
        return set()
    active = set(assignment.values())
    candidates = moves.keys() - active
    vacated = candidates - repository.owning_profiles(candidates) if candidates else set()
    merges: list[tuple[uuid.UUID, uuid.UUID]] = []
    whole_moves: list[tuple[uuid.UUID, uuid.UUID]] = []
    for old in sorted(moves):
        targets = moves[old]
        if old in vacated:
            # The profile that took most of its identifiers inherits the old id.
            heir = min(targets, key=lambda pid: (-len(targets[pid]), str(pid)))
            merges.append((old, heir))
            if len(targets) == 1:
                whole_moves.append((old, heir))
                continue
        # Split between several profiles (a conflict changed sides): move event by event.
        for new, nodes in sorted(targets.items()):
            repository.repoint_events_of(
                old,
                new,
                user_ids=sorted(key for kind, key in nodes if kind == USER_ID),
                anonymous_ids=sorted(key for kind, key in nodes if kind == ANONYMOUS_ID),
            )
    repository.merge_profiles(merges, now)
    repository.repoint_events(whole_moves)
    return set(moves) | {new for targets in moves.values() for new in targets}


def _write_profiles(
    repository: IdentityRepository,
    cipher: WorkspaceCipher,
    batch: _Batch,
    previous: Mapping[Node, IdentifierRecord],
    profile_ids: set[uuid.UUID],
    singletons: Mapping[uuid.UUID, Node],
    now: datetime,
    *,
    default_phone_region: str | None,
) -> None:
    """Recompute whole profile rows (traits, personal data, seen times) from their members."""
    if not profile_ids:
        return
    members_of = repository.identifiers_of_profiles(profile_ids - singletons.keys())
    member_nodes = [record.node for records in members_of.values() for record in records]
    trait_sets = {
        node: _open_traits(cipher, node, sealed)
        for node, sealed in repository.trait_sets(member_nodes).items()
    }
    donors_of: dict[uuid.UUID, set[uuid.UUID]] = {}
    for profile_id, records in members_of.items():
        donors = {profile_id}
        donors.update(previous[r.node].profile_id for r in records if r.node in previous)
        donors_of[profile_id] = donors
    all_donors: set[uuid.UUID] = set()
    for donors in donors_of.values():
        all_donors |= donors
    times = repository.profile_times(all_donors)
    for profile_id, node in singletons.items():
        # A node never seen before: no stored traits, no earlier profile, no other members.
        members_of[profile_id] = [IdentifierRecord(node, profile_id, batch.seen[node][0])]
        donors_of[profile_id] = set()
        if node in batch.traits:
            trait_sets[node] = batch.traits[node]

    rows: list[dict[str, Any]] = []
    for profile_id in sorted(members_of):
        records = members_of[profile_id]
        first_seen_at = min(record.first_seen_at for record in records)
        # Carried over from every profile that gave it identifiers (exact for merges; after a
        # conflict moves an identifier away, the donor's last_seen_at may be later than its own).
        candidates = [first_seen_at]
        candidates.extend(times[d].last_seen_at for d in donors_of[profile_id] if d in times)
        candidates.extend(batch.seen[r.node][1] for r in records if r.node in batch.seen)

        winners: dict[str, tuple[tuple[int, str, Node], Any]] = {}
        for record in records:
            for key, trait in trait_sets.get(record.node, {}).items():
                rank = (trait.micros, trait.message_id, record.node)
                if key not in winners or rank > winners[key][0]:
                    winners[key] = (rank, trait.value)
        plain = {k: v for k, (_rank, v) in sorted(winners.items()) if not is_personal_trait(k)}
        personal = {k: v for k, (_rank, v) in sorted(winners.items()) if is_personal_trait(k)}
        email = normalize_email(personal.get("email"))
        phone = normalize_phone(personal.get("phone"), default_phone_region)
        rows.append(
            {
                "id": profile_id,
                "first_seen_at": first_seen_at,
                "last_seen_at": max(candidates),
                "updated_at": now,
                "email_index": cipher.blind_index(EMAIL, email) if email else None,
                "phone_index": cipher.blind_index(PHONE, phone) if phone else None,
                "personal_sealed": _seal_personal(cipher, profile_id, personal),
                "traits": _storable(plain),
            }
        )
    repository.upsert_profiles(rows)


def _storable(value: Any) -> Any:
    """PostgreSQL's JSONB holds neither NUL characters nor NaN/Infinity; ids are refused with
    them at ingestion, but trait values arrive unchecked. NULs become U+FFFD, such numbers null."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _seal_personal(
    cipher: WorkspaceCipher, profile_id: uuid.UUID, personal: Mapping[str, Any]
) -> bytes | None:
    if not personal:
        return None
    return cipher.seal(orjson.dumps(personal), row_aad("profiles", profile_id, "personal"))


def _open_personal(cipher: WorkspaceCipher, profile: Profile) -> dict[str, Any]:
    if profile.personal_sealed is None:
        return {}
    document = orjson.loads(
        cipher.open(profile.personal_sealed, row_aad("profiles", profile.id, "personal"))
    )
    return document if isinstance(document, dict) else {}


# -- reading ---------------------------------------------------------------------------------


def _encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    raw = orjson.dumps([_micros(moment), str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, row_id = orjson.loads(raw)
        return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(row_id)
    except (OverflowError, ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed("not a valid cursor", field="cursor") from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")


def _summary(cipher: WorkspaceCipher, profile: Profile) -> ProfileSummary:
    return ProfileSummary(
        id=profile.id,
        first_seen_at=as_utc(profile.first_seen_at),
        last_seen_at=as_utc(profile.last_seen_at),
        updated_at=as_utc(profile.updated_at),
        traits=dict(profile.traits),
        personal=_open_personal(cipher, profile),
    )


def find_profiles(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    *,
    email: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    phone: str | None = None,
    default_phone_region: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ProfilePage:
    """Active profiles, most recently seen first; every filter given must match the profile."""
    _check_limit(limit)
    after = _decode_cursor(cursor)
    repository = IdentityRepository(session, workspace_id)
    wanted: list[Node] = []
    if user_id is not None:
        wanted.append((USER_ID, user_id))
    if anonymous_id is not None:
        wanted.append((ANONYMOUS_ID, anonymous_id))
    if email is not None:
        normalized_email = normalize_email(email)
        if normalized_email is None:
            return ProfilePage([], None)
        wanted.append((EMAIL, cipher.blind_index(EMAIL, normalized_email)))
    if phone is not None:
        normalized_phone = normalize_phone(phone, default_phone_region)
        if normalized_phone is None:
            return ProfilePage([], None)
        wanted.append((PHONE, cipher.blind_index(PHONE, normalized_phone)))
    only: set[uuid.UUID] | None = None
    if wanted:
        owners = repository.profile_ids_of(wanted)
        only = set(owners.values())
        if len(owners) != len(wanted) or len(only) != 1:
            return ProfilePage([], None)
    profiles = repository.list_profiles(only=only, limit=limit + 1, after=after)
    items = [_summary(cipher, profile) for profile in profiles[:limit]]
    next_cursor = (
        _encode_cursor(items[-1].last_seen_at, items[-1].id) if len(profiles) > limit else None
    )
    return ProfilePage(items, next_cursor)


def _follow_redirects(repository: IdentityRepository, profile_id: uuid.UUID) -> Profile:
    profile = repository.profile(profile_id)
    for _ in range(_MAX_REDIRECTS):
        if profile is None or profile.merged_into is None:
            break
        profile = repository.profile(profile.merged_into)
    if profile is None or profile.merged_into is not None:
        raise NotFound(f"no profile {profile_id} in this workspace", field="profile_id")
    return profile


def get_profile(
    session: Session, workspace_id: uuid.UUID, cipher: WorkspaceCipher, profile_id: uuid.UUID
) -> ProfileDetail:
    """The profile (following merges), its decrypted personal traits and its identifiers."""
    repository = IdentityRepository(session, workspace_id)
    profile = _follow_redirects(repository, profile_id)
    identifiers = []
    for row in repository.identifier_rows_of_profile(profile.id):
        node = (row.kind, row.key)
        value = row.key
        if row.value_sealed is not None:
            value = cipher.open(row.value_sealed, _identifier_aad(node)).decode()
        identifiers.append(IdentifierView(row.kind, value, as_utc(row.first_seen_at)))
    summary = _summary(cipher, profile)
    return ProfileDetail(
        id=profile.id,
        requested_id=profile_id if profile.id != profile_id else None,
        first_seen_at=summary.first_seen_at,
        last_seen_at=summary.last_seen_at,
        updated_at=summary.updated_at,
        traits=summary.traits,
        personal=summary.personal,
        identifiers=identifiers,
    )


def profile_timeline(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    profile_id: uuid.UUID,
    *,
    limit: int = 50,
    before: str | None = None,
) -> TimelinePage:
    """The profile's events, newest first; ``before`` is the previous page's ``next_cursor``."""
    _check_limit(limit)
    cursor = _decode_cursor(before)
    repository = IdentityRepository(session, workspace_id)
    profile = _follow_redirects(repository, profile_id)
    events = repository.events_of_profile(profile.id, limit=limit + 1, before=cursor)
    items = []
    for event in events[:limit]:
        payload = orjson.loads(
            cipher.open(event.payload_sealed, row_aad("events", event.id, "payload"))
        )
        items.append(
            TimelineEvent(
                id=event.id,
                message_id=event.message_id,
                type=event.type,
                event=event.event,
                timestamp=as_utc(event.timestamp),
                anonymous_id=event.anonymous_id,
                user_id=event.user_id,
                payload=payload if isinstance(payload, dict) else {"value": payload},
            )
        )
    next_cursor = _encode_cursor(items[-1].timestamp, items[-1].id) if len(events) > limit else None
    return TimelinePage(profile.id, items, next_cursor)


def has_events(session: Session, workspace_id: uuid.UUID) -> bool:
    """Whether any event of the workspace has been stored: the dashboard's first-run check."""
    return IdentityRepository(session, workspace_id).has_events()
