"""resolve() against a real database: merges, conflicts, traits, events, and order independence."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from storeloop import migrate
from storeloop.db import create_db_engine
from storeloop.identity.graph import PROFILE_NAMESPACE
from storeloop.identity.schemas import Observation
from storeloop.identity.service import resolve
from storeloop.kit.crypto import row_aad
from storeloop.kit.timeutil import as_utc
from storeloop.models import Event, Identifier, IdentityConflict, IdentityLink, Profile, TraitSet
from tests.factories.identity import Store, add_events, at, make_store, observation

ReadableNode = tuple[str, str]


def profile_id(store: Store, kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(PROFILE_NAMESPACE, f"{store.id}:{kind}:{key}")


def readable_identifiers(session: Session, store: Store) -> dict[ReadableNode, uuid.UUID]:
    """Every identifier (emails and phones decrypted) -> the profile that owns it."""
    owners: dict[ReadableNode, uuid.UUID] = {}
    for row in session.scalars(select(Identifier).where(Identifier.workspace_id == store.id)):
        value = row.key
        if row.value_sealed is not None:
            aad = row_aad("identifiers", f"{row.kind}:{row.key}", "value")
            value = store.cipher.open(row.value_sealed, aad).decode()
        owners[(row.kind, value)] = row.profile_id
    return owners


def personal(store: Store, profile: Profile) -> dict[str, Any]:
    if profile.personal_sealed is None:
        return {}
    aad = row_aad("profiles", profile.id, "personal")
    result: dict[str, Any] = orjson.loads(store.cipher.open(profile.personal_sealed, aad))
    return result


def active_profiles(session: Session, store: Store) -> dict[uuid.UUID, Profile]:
    rows = session.scalars(
        select(Profile).where(Profile.workspace_id == store.id, Profile.merged_into.is_(None))
    )
    return {profile.id: profile for profile in rows}


def snapshot(session: Session, store: Store) -> dict[frozenset[ReadableNode], tuple[Any, ...]]:
    """Each active profile as (its nodes) -> (id, plain traits, personal traits, first seen)."""
    owners = readable_identifiers(session, store)
    profiles = active_profiles(session, store)
    assert set(owners.values()) == set(profiles)
    members: dict[uuid.UUID, set[ReadableNode]] = {}
    for node, owner in owners.items():
        members.setdefault(owner, set()).add(node)
    return {
        frozenset(members[pid]): (
            pid,
            profile.traits,
            personal(store, profile),
            as_utc(profile.first_seen_at),
        )
        for pid, profile in profiles.items()
    }


def event_profiles(session: Session, store: Store) -> dict[str, uuid.UUID | None]:
    rows = session.execute(
        select(Event.message_id, Event.profile_id).where(Event.workspace_id == store.id)
    )
    return {str(message_id): pid for message_id, pid in rows}


def conflicts(session: Session, store: Store) -> list[tuple[str, str, str, str, str]]:
    rows = session.scalars(
        select(IdentityConflict).where(IdentityConflict.workspace_id == store.id)
    )
    return sorted((c.a_kind, c.a_key, c.b_kind, c.b_key, c.message_id) for c in rows)


# -- scenarios -------------------------------------------------------------------------------


def test_anonymous_visitor_logs_in(session: Session, store: Store) -> None:
    views = [
        observation("p1", seconds=0, anonymous_id="a-1"),
        observation("p2", seconds=60, anonymous_id="a-1"),
    ]
    first = resolve(session, store.id, store.cipher, views)
    anonymous_profile = profile_id(store, "anonymous_id", "a-1")
    assert first == {"p1": anonymous_profile, "p2": anonymous_profile}
    add_events(session, store, views, first)

    login = [observation("i1", "identify", seconds=120, anonymous_id="a-1", user_id="u-1")]
    second = resolve(session, store.id, store.cipher, login)
    user_profile = profile_id(store, "user_id", "u-1")
    assert second == {"i1": user_profile}
    add_events(session, store, login, second)

    assert readable_identifiers(session, store) == {
        ("anonymous_id", "a-1"): user_profile,
        ("user_id", "u-1"): user_profile,
    }
    old = session.get(Profile, anonymous_profile)
    assert old is not None
    assert old.merged_into == user_profile
    new = session.get(Profile, user_profile)
    assert new is not None
    assert (as_utc(new.first_seen_at), as_utc(new.last_seen_at)) == (at(0), at(120))
    assert event_profiles(session, store) == {
        "p1": user_profile,
        "p2": user_profile,
        "i1": user_profile,
    }
    links = session.scalars(select(IdentityLink).where(IdentityLink.workspace_id == store.id))
    assert [(link.a_key, link.b_key, link.message_id) for link in links] == [("a-1", "u-1", "i1")]

    # Seen again later on the same device: the profile's window widens, nothing else moves.
    again = resolve(
        session, store.id, store.cipher, [observation("p3", seconds=900, anonymous_id="a-1")]
    )
    assert again == {"p3": user_profile}
    session.expire_all()
    refreshed = session.get(Profile, user_profile)
    assert refreshed is not None
    assert (as_utc(refreshed.first_seen_at), as_utc(refreshed.last_seen_at)) == (at(0), at(900))


def test_alias_folds_previous_id_into_user(session: Session, store: Store) -> None:
    resolve(
        session,
        store.id,
        store.cipher,
        [
            observation("p1", seconds=0, anonymous_id="a-9"),
            observation("al", "alias", seconds=10, previous_id="a-9", user_id="u-9"),
        ],
    )
    owner = profile_id(store, "user_id", "u-9")
    assert readable_identifiers(session, store) == {
        ("anonymous_id", "a-9"): owner,
        ("user_id", "u-9"): owner,
    }
    assert list(active_profiles(session, store)) == [owner]


@pytest.mark.parametrize("arrival", ["in_time_order", "reversed", "one_batch"])
def test_an_alias_between_two_user_ids_is_a_conflict_not_a_merge(
    session: Session, store: Store, arrival: str
) -> None:
    """Segment's alias reads previousId as an anonymous id; when it is another user's id, the
    two users stay apart and the conflict is recorded, whichever arrives first (the alias may
    come before u-1 ever signs in)."""
    u1_login = observation("m-u1", "identify", seconds=10, anonymous_id="a-1", user_id="u-1")
    u2_login = observation("m-u2", "identify", seconds=20, anonymous_id="a-2", user_id="u-2")
    alias = observation("m-al", "alias", seconds=30, previous_id="u-1", user_id="u-2")
    batches = {
        "in_time_order": [[u1_login], [u2_login], [alias]],
        "reversed": [[alias], [u2_login], [u1_login]],
        "one_batch": [[alias, u1_login, u2_login]],
    }[arrival]
    for batch in batches:
        add_events(session, store, batch, resolve(session, store.id, store.cipher, batch))

    u1, u2 = profile_id(store, "user_id", "u-1"), profile_id(store, "user_id", "u-2")
    assert readable_identifiers(session, store) == {
        ("anonymous_id", "a-1"): u1,
        # The alias's previousId is u-1's: it stays with u-1, not relabelled as u-2's visitor.
        ("anonymous_id", "u-1"): u1,
        ("user_id", "u-1"): u1,
        ("anonymous_id", "a-2"): u2,
        ("user_id", "u-2"): u2,
    }
    assert set(active_profiles(session, store)) == {u1, u2}
    assert conflicts(session, store) == [("anonymous_id", "u-1", "user_id", "u-2", "m-al")]
    assert event_profiles(session, store) == {"m-u1": u1, "m-u2": u2, "m-al": u2}


@pytest.mark.parametrize("arrival", ["in_time_order", "reversed"])
def test_shared_device_never_merges_two_users(session: Session, store: Store, arrival: str) -> None:
    u1_login = observation("m-u1", "identify", seconds=10, anonymous_id="a-1", user_id="u-1")
    u2_login = observation("m-u2", "identify", seconds=20, anonymous_id="a-1", user_id="u-2")
    batches = [[u1_login], [u2_login]]
    if arrival == "reversed":
        batches.reverse()
    for batch in batches:
        add_events(session, store, batch, resolve(session, store.id, store.cipher, batch))

    u1, u2 = profile_id(store, "user_id", "u-1"), profile_id(store, "user_id", "u-2")
    assert readable_identifiers(session, store) == {
        ("anonymous_id", "a-1"): u1,
        ("user_id", "u-1"): u1,
        ("user_id", "u-2"): u2,
    }
    assert set(active_profiles(session, store)) == {u1, u2}
    assert conflicts(session, store) == [("anonymous_id", "a-1", "user_id", "u-2", "m-u2")]
    assert event_profiles(session, store) == {"m-u1": u1, "m-u2": u2}


def test_late_earlier_link_moves_the_device_and_its_events(session: Session, store: Store) -> None:
    """a-1 went with u-2 until an earlier login with u-1 arrived; the conflict flips sides."""
    batches = [
        [observation("m-u2", "identify", seconds=20, anonymous_id="a-1", user_id="u-2")],
        [observation("p1", seconds=30, anonymous_id="a-1")],
        [observation("m-u1", "identify", seconds=10, anonymous_id="a-1", user_id="u-1")],
    ]
    for batch in batches:
        add_events(session, store, batch, resolve(session, store.id, store.cipher, batch))
    u1, u2 = profile_id(store, "user_id", "u-1"), profile_id(store, "user_id", "u-2")
    assert readable_identifiers(session, store)[("anonymous_id", "a-1")] == u1
    # The page view was a-1's alone and moves; u-2's own login stays with u-2.
    assert event_profiles(session, store) == {"m-u2": u2, "p1": u1, "m-u1": u1}
    assert conflicts(session, store) == [("anonymous_id", "a-1", "user_id", "u-2", "m-u2")]


def test_conflict_rows_follow_the_current_graph(session: Session, store: Store) -> None:
    resolve(
        session,
        store.id,
        store.cipher,
        [
            observation("m-u1", "identify", seconds=30, anonymous_id="a-1", user_id="u-1"),
            observation("m-u2", "identify", seconds=40, anonymous_id="a-1", user_id="u-2"),
        ],
    )
    assert conflicts(session, store) == [("anonymous_id", "a-1", "user_id", "u-2", "m-u2")]
    # An earlier sighting of a-1 with u-2 arrives: a-1 now goes with u-2, u-1 is the conflict.
    resolve(
        session,
        store.id,
        store.cipher,
        [observation("m-u2-early", "track", seconds=10, anonymous_id="a-1", user_id="u-2")],
    )
    assert conflicts(session, store) == [("anonymous_id", "a-1", "user_id", "u-1", "m-u1")]
    assert readable_identifiers(session, store)[("anonymous_id", "a-1")] == profile_id(
        store, "user_id", "u-2"
    )
    u1 = session.get(Profile, profile_id(store, "user_id", "u-1"))
    assert u1 is not None
    assert u1.merged_into is None


def test_traits_last_write_wins_and_personal_traits_are_sealed(
    session: Session, store: Store
) -> None:
    resolve(
        session,
        store.id,
        store.cipher,
        [
            observation(
                "i2",
                "identify",
                seconds=20,
                user_id="u-1",
                traits={"plan": "gold", "email": "New@Example.com", "address": {"city": "Lyon"}},
            ),
            observation(
                "i1",
                "identify",
                seconds=10,
                user_id="u-1",
                traits={"plan": "free", "email": "old@example.com", "visits": 3},
            ),
            observation("g1", "group", seconds=30, user_id="u-1", traits={"name": "ACME"}),
        ],
        default_phone_region="FR",
    )
    resolve(
        session,
        store.id,
        store.cipher,
        [observation("i0", "identify", seconds=5, user_id="u-1", traits={"plan": "trial"})],
    )
    owner = profile_id(store, "user_id", "u-1")
    profile = active_profiles(session, store)[owner]
    assert profile.traits == {"plan": "gold", "visits": 3}
    assert personal(store, profile) == {"address": {"city": "Lyon"}, "email": "new@example.com"}
    assert profile.email_index == store.cipher.blind_index("email", "new@example.com")
    assert profile.phone_index is None
    # Both emails were seen with u-1, so both are nodes of the profile.
    assert readable_identifiers(session, store) == {
        ("user_id", "u-1"): owner,
        ("email", "new@example.com"): owner,
        ("email", "old@example.com"): owner,
    }
    [trait_set] = session.scalars(select(TraitSet).where(TraitSet.workspace_id == store.id))
    assert (trait_set.node_kind, trait_set.node_key) == ("user_id", "u-1")
    assert b"Lyon" not in trait_set.traits_sealed


def test_plain_traits_are_made_storable_in_jsonb(session: Session, store: Store) -> None:
    traits = {
        "note\x00": "a\x00b",
        "nested": {"k\x00": ["x\x00", 1, float("inf")]},
        "name": "N\x00",
        "ratio": float("nan"),
    }
    resolve(
        session,
        store.id,
        store.cipher,
        [observation("i1", "identify", user_id="u-1", traits=traits)],
    )
    profile = active_profiles(session, store)[profile_id(store, "user_id", "u-1")]
    assert profile.traits == {
        "nested": {"k\ufffd": ["x\ufffd", 1, None]},
        "note\ufffd": "a\ufffdb",
        "ratio": None,
    }
    # Sealed values are bytes and keep what was sent.
    assert personal(store, profile) == {"name": "N\x00"}


def test_shared_email_links_anonymous_visitor_to_user(session: Session, store: Store) -> None:
    resolve(
        session,
        store.id,
        store.cipher,
        [
            observation(
                "i1", "identify", seconds=0, anonymous_id="a-7", traits={"phone": "06 12 34 56 78"}
            )
        ],
        default_phone_region="FR",
    )
    resolve(
        session,
        store.id,
        store.cipher,
        [observation("i2", "identify", seconds=5, user_id="u-7", traits={"phone": "+33612345678"})],
    )
    owner = profile_id(store, "user_id", "u-7")
    assert readable_identifiers(session, store) == {
        ("anonymous_id", "a-7"): owner,
        ("phone", "+33612345678"): owner,
        ("user_id", "u-7"): owner,
    }
    profile = active_profiles(session, store)[owner]
    assert profile.phone_index == store.cipher.blind_index("phone", "+33612345678")
    assert personal(store, profile) == {"phone": "+33612345678"}


def test_workspaces_do_not_share_profiles(session: Session, store: Store) -> None:
    other = make_store(session, "Other store")
    view = [observation("p1", anonymous_id="a-1")]
    mine = resolve(session, store.id, store.cipher, view)
    theirs = resolve(session, other.id, other.cipher, view)
    assert mine == {"p1": profile_id(store, "anonymous_id", "a-1")}
    assert theirs == {"p1": profile_id(other, "anonymous_id", "a-1")}
    assert list(active_profiles(session, store)) == [mine["p1"]]
    assert list(active_profiles(session, other)) == [theirs["p1"]]


@contextmanager
def counting_statements(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    connection = session.connection()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", count)


def test_batches_cost_a_fixed_number_of_statements(session: Session, store: Store) -> None:
    views = [observation(f"p-{i}", seconds=i, anonymous_id=f"a-{i % 150}") for i in range(300)]
    concurrent = session.get_bind().dialect.name == "postgresql"
    with counting_statements(session) as statements:
        resolve(session, store.id, store.cipher, views)
    # Look up identifiers, then the new ones' namesakes (a user id equal to a new anonymous id),
    # insert identifiers, insert profiles. On PostgreSQL new identifiers are added under the
    # workspace's graph lock, and looked up again once it is held, with the namesakes.
    if concurrent:
        assert statements == ["SELECT", "SELECT", "SELECT", "INSERT", "INSERT"]
    else:
        assert statements == ["SELECT", "SELECT", "INSERT", "INSERT"]

    known = [
        observation(f"q-{i}", seconds=400 + i, anonymous_id=f"a-{i % 150}") for i in range(300)
    ]
    with counting_statements(session) as statements:
        resolved = resolve(session, store.id, store.cipher, known)
    # Look up identifiers, widen the profiles' seen window; on PostgreSQL, check that no merge
    # committed meanwhile.
    assert statements == (["SELECT", "UPDATE", "SELECT"] if concurrent else ["SELECT", "UPDATE"])
    assert len(set(resolved.values())) == 150


# -- order independence ----------------------------------------------------------------------

ALICE = "alice.example@example.com"
BOB = "bob@example.com"
JOURNEY = (
    observation("p1", seconds=0, anonymous_id="a-1"),
    observation("p2", seconds=60, anonymous_id="a-1"),
    observation(
        "i4",
        "identify",
        seconds=90,
        anonymous_id="a-4",
        traits={"email": "alice.example@example.com", "favourite_colour": "green"},
    ),
    observation(
        "i1",
        "identify",
        seconds=120,
        anonymous_id="a-1",
        user_id="u-1",
        traits={"email": " Alice.Example@Example.COM ", "name": "Alice", "plan": "pro"},
    ),
    observation("p3", seconds=200, anonymous_id="a-2"),
    observation("al", "alias", seconds=240, previous_id="a-2", user_id="u-1"),
    observation("i2", "identify", seconds=300, user_id="u-1", traits={"plan": "enterprise"}),
    # A second person signs in on the first person's device.
    observation("t1", "track", seconds=400, anonymous_id="a-1", user_id="u-2"),
    observation(
        "i3",
        "identify",
        seconds=500,
        anonymous_id="a-5",
        user_id="u-2",
        traits={"email": BOB, "phone": "020 7946 0958", "plan": "free"},
    ),
    observation("p4", seconds=600, anonymous_id="a-3"),
    observation("g1", "group", seconds=610, anonymous_id="a-3", traits={"name": "ACME"}),
    # An alias from one known user to another: a conflict, never a merge.
    observation("al2", "alias", seconds=700, previous_id="u-2", user_id="u-1"),
)
PRIMARY = {
    "p1": ("anonymous_id", "a-1"),
    "p2": ("anonymous_id", "a-1"),
    "i4": ("anonymous_id", "a-4"),
    "i1": ("user_id", "u-1"),
    "p3": ("anonymous_id", "a-2"),
    "al": ("user_id", "u-1"),
    "i2": ("user_id", "u-1"),
    "t1": ("user_id", "u-2"),
    "i3": ("user_id", "u-2"),
    "p4": ("anonymous_id", "a-3"),
    "g1": ("anonymous_id", "a-3"),
    "al2": ("user_id", "u-1"),
}


def expected_journey(store: Store) -> dict[frozenset[ReadableNode], tuple[Any, ...]]:
    return {
        frozenset(
            {
                ("anonymous_id", "a-1"),
                ("anonymous_id", "a-2"),
                ("anonymous_id", "a-4"),
                ("email", ALICE),
                ("user_id", "u-1"),
            }
        ): (
            profile_id(store, "user_id", "u-1"),
            {"favourite_colour": "green", "plan": "enterprise"},
            {"email": ALICE, "name": "Alice"},
            at(0),
        ),
        frozenset(
            {
                ("anonymous_id", "a-5"),
                ("anonymous_id", "u-2"),
                ("email", BOB),
                ("phone", "+442079460958"),
                ("user_id", "u-2"),
            }
        ): (
            profile_id(store, "user_id", "u-2"),
            {"plan": "free"},
            {"email": BOB, "phone": "+442079460958"},
            at(400),
        ),
        frozenset({("anonymous_id", "a-3")}): (
            profile_id(store, "anonymous_id", "a-3"),
            {},
            {},
            at(600),
        ),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.permutations(JOURNEY),
    cuts=st.sets(st.integers(min_value=1, max_value=len(JOURNEY) - 1), max_size=len(JOURNEY)),
)
def test_any_arrival_order_and_batching_gives_the_same_profiles(
    engine: Engine, order: list[Observation], cuts: set[int]
) -> None:
    bounds = [0, *sorted(cuts), len(order)]
    batches = [order[start:end] for start, end in itertools.pairwise(bounds)]
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            session = Session(bind=connection)
            store = make_store(session)
            for batch in batches:
                resolved = resolve(
                    session, store.id, store.cipher, batch, default_phone_region="GB"
                )
                add_events(session, store, batch, resolved)

            assert snapshot(session, store) == expected_journey(store)
            assert conflicts(session, store) == [
                ("anonymous_id", "a-1", "user_id", "u-2", "t1"),
                ("anonymous_id", "u-2", "user_id", "u-1", "al2"),
            ]
            owners = readable_identifiers(session, store)
            assert event_profiles(session, store) == {
                message_id: owners[node] for message_id, node in PRIMARY.items()
            }
            rows = session.execute(
                select(Profile.id, Profile.merged_into).where(Profile.workspace_id == store.id)
            )
            redirects: dict[uuid.UUID, uuid.UUID | None] = dict(rows.all())
            # Every old id leads, through merged_into, to a live profile.
            for old_id, target in redirects.items():
                hops = 0
                while target is not None:
                    old_id, target = target, redirects[target]
                    hops += 1
                    assert hops < len(redirects)
                assert old_id in active_profiles(session, store)
            session.close()
        finally:
            transaction.rollback()


# -- no plaintext at rest --------------------------------------------------------------------

CANARY_EMAIL = "canary.person+storeloop@example.org"
CANARY_PHONE = "+1 415 555 2671"


def test_personal_data_never_reaches_the_database_file(tmp_path: Path) -> None:
    database = tmp_path / "canary.db"
    engine = create_db_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    with Session(engine) as session:
        store = make_store(session)
        resolve(
            session,
            store.id,
            store.cipher,
            [
                observation(
                    "i1",
                    "identify",
                    anonymous_id="canary-device",
                    user_id="canary-user",
                    traits={
                        "email": CANARY_EMAIL.upper(),
                        "phone": CANARY_PHONE,
                        "name": "Canarina Person",
                        "plan": "visible-plan",
                    },
                )
            ],
        )
        session.commit()
    engine.dispose()
    files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("canary.db"))
    content = b"".join(path.read_bytes() for path in files)
    # Plain ids and plain traits are stored as such: the bytes were read correctly.
    assert b"canary-device" in content
    assert b"visible-plan" in content
    for needle in (
        CANARY_EMAIL.encode(),
        CANARY_EMAIL.upper().encode(),
        b"canary.person",
        b"CANARY.PERSON",
        b"4155552671",
        b"415 555 2671",
        b"Canarina",
    ):
        assert needle not in content, needle


# -- concurrent workers ----------------------------------------------------------------------


def test_concurrent_batches_touching_one_component_are_serialised(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite admits one writer at a time; a stale writer fails instead")
    with Session(engine) as setup:
        store = make_store(setup)
        setup.commit()
    first_resolved = threading.Event()
    errors: list[BaseException] = []

    def worker(batch: list[Observation], *, wait: bool) -> None:
        try:
            with Session(engine) as session:
                if wait:
                    first_resolved.wait(5)
                resolve(session, store.id, store.cipher, batch)
                if not wait:
                    first_resolved.set()
                    time.sleep(0.3)  # hold the transaction open while the other one starts
                session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(
            target=worker,
            args=(
                [observation("m-u1", "identify", seconds=10, anonymous_id="a-1", user_id="u-1")],
            ),
            kwargs={"wait": False},
        ),
        threading.Thread(
            target=worker,
            args=(
                [observation("m-u2", "identify", seconds=20, anonymous_id="a-1", user_id="u-2")],
            ),
            kwargs={"wait": True},
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    with Session(engine) as session:
        u1, u2 = profile_id(store, "user_id", "u-1"), profile_id(store, "user_id", "u-2")
        assert readable_identifiers(session, store) == {
            ("anonymous_id", "a-1"): u1,
            ("user_id", "u-1"): u1,
            ("user_id", "u-2"): u2,
        }
        assert conflicts(session, store) == [("anonymous_id", "a-1", "user_id", "u-2", "m-u2")]


@pytest.mark.parametrize("first", ["merge", "page_view"])
def test_page_view_racing_a_merge_ends_on_the_merged_profile(engine: Engine, first: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite admits one writer at a time; a stale writer fails instead")
    with Session(engine) as setup:
        store = make_store(setup)
        resolve(setup, store.id, store.cipher, [observation("p0", anonymous_id="a-1")])
        setup.commit()
    started = threading.Event()
    errors: list[BaseException] = []
    results: dict[str, dict[str, uuid.UUID]] = {}

    def worker(name: str, batch: list[Observation]) -> None:
        try:
            with Session(engine) as session:
                if name != first:
                    started.wait(5)
                results[name] = resolve(session, store.id, store.cipher, batch)
                add_events(session, store, batch, results[name])
                if name == first:
                    started.set()
                    time.sleep(0.3)  # hold the transaction open while the other one runs
                session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    batches = {
        "merge": [observation("i1", "identify", seconds=10, anonymous_id="a-1", user_id="u-1")],
        "page_view": [observation("p1", seconds=20, anonymous_id="a-1")],
    }
    threads = [threading.Thread(target=worker, args=item) for item in batches.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    user_profile = profile_id(store, "user_id", "u-1")
    with Session(engine) as session:
        assert event_profiles(session, store) == {"i1": user_profile, "p1": user_profile}
    expected_answer = user_profile if first == "merge" else profile_id(store, "anonymous_id", "a-1")
    assert results["page_view"] == {"p1": expected_answer}
