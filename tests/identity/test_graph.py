"""The partition of the identity graph: pure, and independent of the order edges arrive in."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from storeloop.identity.graph import (
    PROFILE_NAMESPACE,
    Edge,
    Node,
    earliest_edges,
    groups,
    partition,
    profile_id_for,
)

WORKSPACE = uuid.UUID("00000000-0000-7000-8000-000000000001")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
A1: Node = ("anonymous_id", "a-1")
A2: Node = ("anonymous_id", "a-2")
U1: Node = ("user_id", "u-1")
U2: Node = ("user_id", "u-2")
E1: Node = ("email", "0f3c")


def edge(x: Node, y: Node, minute: int, message_id: str = "") -> Edge:
    return Edge.between(x, y, T0 + timedelta(minutes=minute), message_id or f"m-{minute}")


def named(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(PROFILE_NAMESPACE, f"{WORKSPACE}:{kind}:{key}")


def test_edge_orders_its_ends() -> None:
    forward = Edge.between(U1, A1, T0, "m")
    assert (forward.a, forward.b) == (A1, U1)
    assert forward == Edge.between(A1, U1, T0, "m")


def test_profile_is_named_by_its_user_id_else_its_smallest_node() -> None:
    assert profile_id_for(WORKSPACE, [A2, U1, A1]) == named("user_id", "u-1")
    assert profile_id_for(WORKSPACE, [E1, A2, A1]) == named("anonymous_id", "a-1")
    assert profile_id_for(WORKSPACE, [E1]) == named("email", "0f3c")
    other = uuid.UUID("00000000-0000-7000-8000-000000000002")
    assert profile_id_for(other, [A1]) != profile_id_for(WORKSPACE, [A1])


def test_singletons_get_their_own_profile() -> None:
    result = partition(WORKSPACE, [A1, U1], [])
    assert result.profile_of == {A1: named("anonymous_id", "a-1"), U1: named("user_id", "u-1")}
    assert result.conflicts == []


def test_anonymous_visitor_joins_the_user() -> None:
    result = partition(WORKSPACE, [], [edge(A1, U1, 1), edge(E1, A2, 2), edge(A2, U1, 3)])
    assert groups(result.profile_of) == {named("user_id", "u-1"): frozenset({A1, A2, E1, U1})}
    assert result.conflicts == []


def test_two_user_ids_are_never_merged_and_the_earliest_link_wins() -> None:
    later_u1 = [edge(A1, U2, 1), edge(A1, U1, 2)]
    result = partition(WORKSPACE, [], later_u1)
    assert groups(result.profile_of) == {
        named("user_id", "u-2"): frozenset({A1, U2}),
        named("user_id", "u-1"): frozenset({U1}),
    }
    assert result.conflicts == [edge(A1, U1, 2)]


def test_same_time_ties_are_broken_by_message_id_then_nodes() -> None:
    result = partition(WORKSPACE, [], [edge(A1, U1, 1, "m-b"), edge(A1, U2, 1, "m-a")])
    assert result.profile_of[A1] == named("user_id", "u-2")
    assert result.conflicts == [edge(A1, U1, 1, "m-b")]
    tied = partition(WORKSPACE, [], [edge(A1, U2, 1, "m"), edge(A1, U1, 1, "m")])
    assert tied.profile_of[A1] == named("user_id", "u-1")


def test_duplicate_edges_keep_the_earliest_sighting() -> None:
    kept = earliest_edges([edge(A1, U1, 5), edge(U1, A1, 2), edge(A1, U1, 9)])
    assert kept == {(A1, U1): edge(A1, U1, 2)}
    result = partition(WORKSPACE, [], [edge(A1, U1, 5), edge(A1, U2, 3), edge(A1, U1, 2)])
    assert result.profile_of[A1] == named("user_id", "u-1")
    assert result.conflicts == [edge(A1, U2, 3)]


# -- properties ------------------------------------------------------------------------------

nodes = st.tuples(
    st.sampled_from(["anonymous_id", "user_id", "email", "phone"]),
    st.sampled_from(["k1", "k2", "k3", "k4", "k5"]),
)
edges = st.builds(
    Edge.between,
    nodes,
    nodes,
    st.integers(min_value=0, max_value=4).map(lambda minute: T0 + timedelta(minutes=minute)),
    st.sampled_from(["m-1", "m-2", "m-3"]),
).filter(lambda e: e.a != e.b)


@settings(max_examples=300, deadline=None)
@given(
    edge_list=st.lists(edges, max_size=30),
    extra_nodes=st.lists(nodes, max_size=5),
    seed=st.integers(),
)
def test_partition_does_not_depend_on_arrival_order(
    edge_list: list[Edge], extra_nodes: list[Node], seed: int
) -> None:
    reference = partition(WORKSPACE, extra_nodes, edge_list)
    shuffled_edges, shuffled_nodes = list(edge_list), list(extra_nodes)
    rng = random.Random(seed)
    rng.shuffle(shuffled_edges)
    rng.shuffle(shuffled_nodes)
    again = partition(WORKSPACE, shuffled_nodes, shuffled_edges)
    assert again.profile_of == reference.profile_of
    assert again.conflicts == reference.conflicts


@settings(max_examples=300, deadline=None)
@given(edge_list=st.lists(edges, max_size=30), extra_nodes=st.lists(nodes, max_size=5))
def test_partition_invariants(edge_list: list[Edge], extra_nodes: list[Node]) -> None:
    result = partition(WORKSPACE, extra_nodes, edge_list)
    every_node = set(extra_nodes) | {node for e in edge_list for node in e.pair}
    assert set(result.profile_of) == every_node
    for profile_id, members in groups(result.profile_of).items():
        users = [node for node in members if node[0] == "user_id"]
        assert len(users) <= 1
        assert profile_id == profile_id_for(WORKSPACE, members)
    conflicted = {e.pair for e in result.conflicts}
    for kept in earliest_edges(edge_list).values():
        same_profile = result.profile_of[kept.a] == result.profile_of[kept.b]
        # An edge is either followed or reported, never silently dropped.
        assert same_profile != (kept.pair in conflicted)
