"""Reading profiles back: search by identifier, one profile with its identifiers, its timeline."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from storeloop.identity.graph import PROFILE_NAMESPACE
from storeloop.identity.schemas import IdentifierView
from storeloop.identity.service import find_profiles, get_profile, profile_timeline, resolve
from storeloop.kit.errors import NotFound, ValidationFailed
from storeloop.models import Profile
from tests.factories.identity import Store, add_events, at, make_store, observation


def profile_id(store: Store, kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(PROFILE_NAMESPACE, f"{store.id}:{kind}:{key}")


def seed(session: Session, store: Store) -> None:
    """Ada signs in on a device first seen anonymously; Bea and three visitors only browse."""
    batches = [
        [
            observation("v1", seconds=0, anonymous_id="dev-ada"),
            observation("v2", seconds=10, anonymous_id="dev-ada"),
            observation("v3", seconds=20, anonymous_id="visitor-1"),
            observation("v4", seconds=30, anonymous_id="visitor-2"),
            observation("v5", seconds=40, anonymous_id="visitor-3"),
        ],
        [
            observation(
                "i1",
                "identify",
                seconds=50,
                anonymous_id="dev-ada",
                user_id="ada",
                traits={"email": "Ada@Example.com", "phone": "020 7946 0958", "tier": "gold"},
            ),
            observation(
                "i2",
                "identify",
                seconds=60,
                user_id="bea",
                traits={"email": "bea@example.com", "first_name": "Bea"},
            ),
            observation("t1", "track", seconds=70, user_id="ada"),
        ],
    ]
    for batch in batches:
        resolved = resolve(session, store.id, store.cipher, batch, default_phone_region="GB")
        add_events(session, store, batch, resolved)


def test_find_by_each_identifier(session: Session, store: Store) -> None:
    seed(session, store)
    ada = profile_id(store, "user_id", "ada")
    queries: list[dict[str, str]] = [
        {"email": "  ADA@example.COM"},
        {"user_id": "ada"},
        {"anonymous_id": "dev-ada"},
        {"phone": "+44 20 7946 0958"},
        {"phone": "020 7946 0958"},
        {"email": "ada@example.com", "user_id": "ada", "anonymous_id": "dev-ada"},
    ]
    for query in queries:
        page = find_profiles(session, store.id, store.cipher, default_phone_region="GB", **query)
        assert [item.id for item in page.items] == [ada], query
        assert page.next_cursor is None
    [summary] = find_profiles(session, store.id, store.cipher, user_id="ada").items
    assert summary.traits == {"tier": "gold"}
    assert summary.personal == {"email": "ada@example.com", "phone": "+442079460958"}
    assert (summary.first_seen_at, summary.last_seen_at) == (at(0), at(70))


@pytest.mark.parametrize(
    "query",
    [
        {"email": "nobody@example.com"},
        {"email": "not an email"},
        {"phone": "12"},
        {"user_id": "ada", "email": "bea@example.com"},
        {"user_id": "ada", "anonymous_id": "unknown"},
        {"anonymous_id": "dev-ada-unknown"},
    ],
)
def test_find_without_a_match_is_empty(
    session: Session, store: Store, query: dict[str, str]
) -> None:
    seed(session, store)
    page = find_profiles(session, store.id, store.cipher, default_phone_region="GB", **query)
    assert (page.items, page.next_cursor) == ([], None)


def test_list_pages_newest_first(session: Session, store: Store) -> None:
    seed(session, store)
    seen: list[uuid.UUID] = []
    cursor = None
    pages = 0
    while True:
        page = find_profiles(session, store.id, store.cipher, limit=2, cursor=cursor)
        seen.extend(item.id for item in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [
        profile_id(store, "user_id", "ada"),
        profile_id(store, "user_id", "bea"),
        profile_id(store, "anonymous_id", "visitor-3"),
        profile_id(store, "anonymous_id", "visitor-2"),
        profile_id(store, "anonymous_id", "visitor-1"),
    ]


def test_bad_paging_arguments(session: Session, store: Store) -> None:
    with pytest.raises(ValidationFailed) as bad_cursor:
        find_profiles(session, store.id, store.cipher, cursor="garbage")
    assert bad_cursor.value.field == "cursor"
    with pytest.raises(ValidationFailed) as bad_limit:
        find_profiles(session, store.id, store.cipher, limit=0)
    assert bad_limit.value.field == "limit"


def test_get_profile_follows_merges_and_decrypts_identifiers(
    session: Session, store: Store
) -> None:
    seed(session, store)
    ada = profile_id(store, "user_id", "ada")
    old = profile_id(store, "anonymous_id", "dev-ada")
    detail = get_profile(session, store.id, store.cipher, old)
    assert (detail.id, detail.requested_id) == (ada, old)
    assert detail.traits == {"tier": "gold"}
    assert detail.personal == {"email": "ada@example.com", "phone": "+442079460958"}
    assert sorted(detail.identifiers, key=lambda view: (view.kind, view.value)) == [
        IdentifierView("anonymous_id", "dev-ada", at(0)),
        IdentifierView("email", "ada@example.com", at(50)),
        IdentifierView("phone", "+442079460958", at(50)),
        IdentifierView("user_id", "ada", at(50)),
    ]
    direct = get_profile(session, store.id, store.cipher, ada)
    assert (direct.id, direct.requested_id) == (ada, None)


def test_profiles_of_another_workspace_are_not_found(session: Session, store: Store) -> None:
    seed(session, store)
    other = make_store(session, "Other store")
    ada = profile_id(store, "user_id", "ada")
    with pytest.raises(NotFound):
        get_profile(session, other.id, other.cipher, ada)
    with pytest.raises(NotFound):
        profile_timeline(session, other.id, other.cipher, ada)
    with pytest.raises(NotFound):
        get_profile(session, store.id, store.cipher, uuid.uuid4())
    assert find_profiles(session, other.id, other.cipher, user_id="ada").items == []


def test_timeline_pages_newest_first_including_merged_history(
    session: Session, store: Store
) -> None:
    seed(session, store)
    ada = profile_id(store, "user_id", "ada")
    first = profile_timeline(session, store.id, store.cipher, ada, limit=2)
    assert first.profile_id == ada
    assert [(e.message_id, e.timestamp) for e in first.items] == [("t1", at(70)), ("i1", at(50))]
    assert first.items[0].event == "Product Viewed"
    assert first.items[0].payload == {"type": "track", "messageId": "t1"}
    assert first.next_cursor is not None
    # The old anonymous profile's id still reaches the same timeline.
    rest = profile_timeline(
        session,
        store.id,
        store.cipher,
        profile_id(store, "anonymous_id", "dev-ada"),
        limit=2,
        before=first.next_cursor,
    )
    assert [e.message_id for e in rest.items] == ["v2", "v1"]
    assert rest.next_cursor is None
    with pytest.raises(ValidationFailed):
        profile_timeline(session, store.id, store.cipher, ada, before="%%%")


def test_old_ids_resolve_through_several_merges(session: Session, store: Store) -> None:
    email = {"email": "cy@example.com"}
    batches = [
        [observation("v1", "identify", seconds=0, anonymous_id="dev-b", traits=email)],
        # dev-a < dev-b: the pair is named after dev-a now, and dev-b's profile redirects to it.
        [observation("i1", "identify", seconds=5, anonymous_id="dev-a", traits={**email, "x": 1})],
        [observation("i2", "identify", seconds=20, anonymous_id="dev-a", user_id="cy")],
    ]
    for batch in batches:
        add_events(session, store, batch, resolve(session, store.id, store.cipher, batch))
    cy = profile_id(store, "user_id", "cy")
    dev_a, dev_b = (profile_id(store, "anonymous_id", key) for key in ("dev-a", "dev-b"))
    redirects = {pid: session.get(Profile, pid) for pid in (dev_a, dev_b)}
    assert {pid: p.merged_into for pid, p in redirects.items() if p} == {dev_a: cy, dev_b: dev_a}
    for old in ("dev-a", "dev-b"):
        detail = get_profile(
            session, store.id, store.cipher, profile_id(store, "anonymous_id", old)
        )
        assert (detail.id, detail.traits) == (cy, {"x": 1})
    timeline = profile_timeline(
        session, store.id, store.cipher, profile_id(store, "anonymous_id", "dev-b")
    )
    assert [e.message_id for e in timeline.items] == ["i2", "i1", "v1"]
