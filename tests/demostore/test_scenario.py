"""The demo store's plan: deterministic, believable, and carrying its three planted stories."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from storeloop.demostore.scenario import DAYS, Scenario, build_scenario

END = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(seed=11, end=END)


def test_same_seed_same_store(scenario: Scenario) -> None:
    again = build_scenario(seed=11, end=END)
    assert [(v.at, v.anonymous_id, len(v.events)) for v in again.visits] == [
        (v.at, v.anonymous_id, len(v.events)) for v in scenario.visits
    ]
    assert [o.order_id for o in again.orders] == [o.order_id for o in scenario.orders]


def test_catalog_influencers_and_time_span(scenario: Scenario) -> None:
    assert 250 <= len(scenario.products) <= 300
    assert len({p.category for p in scenario.products}) == 7
    assert len(scenario.influencers) == 12
    assert {i.platform for i in scenario.influencers} == {"instagram", "tiktok", "youtube"}
    assert all(3 <= len(i.posts) <= 6 for i in scenario.influencers)
    assert (scenario.end - scenario.start).days == DAYS
    assert all(scenario.start <= v.at < scenario.end for v in scenario.visits)
    assert [v.at for v in scenario.visits] == sorted(v.at for v in scenario.visits)


def test_orders_add_up(scenario: Scenario) -> None:
    for order in scenario.orders:
        subtotal = sum((p.price * q for p, _, q in order.lines), Decimal(0))
        assert order.subtotal == subtotal
        assert order.total == order.subtotal - order.discount + order.shipping
    for refund in scenario.refunds:
        assert Decimal(0) < refund.amount


def test_weekends_sell_more_than_mondays(scenario: Scenario) -> None:
    by_weekday: dict[int, int] = defaultdict(int)
    for order in scenario.orders:
        by_weekday[order.at.weekday()] += 1
    assert by_weekday[5] + by_weekday[6] > 2 * by_weekday[0]


def test_the_planted_stories(scenario: Scenario) -> None:
    clicks: dict[str, list[bool]] = defaultdict(list)
    for visit in scenario.visits:
        if visit.click is not None:
            clicks[visit.click.link_code].append(visit.click.is_bot)
    bot_share = {code: sum(flags) / len(flags) for code, flags in clicks.items()}
    assert bot_share["lena"] > 0.6
    assert max(share for code, share in bot_share.items() if code != "lena") < 0.15

    jade_orders = [o for o in scenario.orders if o.discount_code == "JADE15"]
    assert sum(1 for o in jade_orders if o.via_link is None) > len(jade_orders) / 2

    orders_by_link: dict[str, list[Decimal]] = defaultdict(list)
    for order in scenario.orders:
        if order.via_link is not None:
            orders_by_link[order.via_link].append(order.total)
    average = {code: sum(t, Decimal(0)) / len(t) for code, t in orders_by_link.items()}
    others = [value for code, value in average.items() if code != "theo"]
    assert average["theo"] > max(others)
    assert len(clicks["theo"]) < sorted(len(flags) for flags in clicks.values())[len(clicks) // 2]
