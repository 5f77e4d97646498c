"""The demo loader against a live server: everything in the plan arrives through the real paths."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storeloop.demostore.loader import LoadReport, Target, WorkerBacklog, load_scenario
from storeloop.demostore.scenario import Scenario, build_scenario
from storeloop.kit.timeutil import as_utc
from storeloop.models import (
    AttributionCredit,
    Campaign,
    Click,
    DiscountCode,
    Event,
    Influencer,
    Link,
    Order,
    Post,
    Refund,
    Touchpoint,
)
from storeloop.runtime import Runtime
from tests.conftest import LiveServer, make_settings
from tests.factories.workspaces import WorkspaceKeys, make_workspace


def _monday() -> datetime:
    """Midnight of the latest Monday: whole days with the same weekdays on every run, so the
    plan (and its counts) is the same whenever the test runs."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday())


def _unique_link_codes(scenario: Scenario) -> None:
    """Link codes are unique on the whole instance (the test database is shared)."""
    suffix = uuid.uuid4().hex[:6]
    renamed = {plan.link_code: f"{plan.link_code}-{suffix}" for plan in scenario.influencers}
    for plan in scenario.influencers:
        plan.link_code = renamed[plan.link_code]
    for visit in scenario.visits:
        if visit.click is not None:
            visit.click.link_code = renamed[visit.click.link_code]
        if visit.order is not None and visit.order.via_link is not None:
            visit.order.via_link = renamed[visit.order.via_link]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    planned = build_scenario(
        seed=4, end=_monday(), visitors_per_day=10, days=14, influencer_audience=0.05
    )
    _unique_link_codes(planned)
    # What the assertions below rely on: the planted stories are in this small plan.
    assert len(planned.refunds) == 2
    assert [o for o in planned.orders if o.discount_code == "JADE15" and o.via_link is None]
    assert sum(1 for v in planned.visits if v.click and v.click.is_bot) > 0
    return planned


@pytest.fixture
def worker_runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose inbox processor and derivation runner run in threads, as in the demo."""
    runtime = Runtime(make_settings(database_url, tmp_path, inprocess_worker=True))
    runtime.start()
    yield runtime
    runtime.close()


def _count(runtime: Runtime, model: type, workspace_id: uuid.UUID, *conditions: object) -> int:
    with runtime.session_factory() as session:
        query = (
            select(func.count())
            .select_from(model)
            .where(
                model.workspace_id == workspace_id,  # type: ignore[attr-defined]
                *conditions,  # type: ignore[arg-type]
            )
        )
        return int(session.execute(query).scalar_one())


def test_the_plan_arrives_through_the_real_paths(
    scenario: Scenario, worker_runtime: Runtime
) -> None:
    runtime = worker_runtime
    keys: WorkspaceKeys = make_workspace(runtime, name="Demo Store")
    backlog = WorkerBacklog(runtime.engine, keys.id, runtime.spool)
    with LiveServer(runtime) as server:
        report = load_scenario(
            scenario,
            Target(server.url, keys.write_key, keys.secret_key),
            backlog=backlog,
        )

    clicks = [visit.click for visit in scenario.visits if visit.click is not None]
    bots = [click for click in clicks if click.is_bot]
    events = sum(len(visit.events) for visit in scenario.visits)
    posts = sum(len(plan.posts) for plan in scenario.influencers)
    assert report == LoadReport(
        influencers=12,
        campaigns=12,
        posts=posts,
        links=12,
        discount_codes=12,
        clicks=len(clicks),
        bot_clicks=len(bots),
        events=events,
        rejected_events=0,
        orders=Counter({"applied": len(scenario.orders)}),
        refunds=Counter({"applied": len(scenario.refunds)}),
        seconds=report.seconds,
    )
    assert backlog() == 0

    workspace = keys.id
    assert _count(runtime, Influencer, workspace) == 12
    assert _count(runtime, Campaign, workspace) == 12
    assert _count(runtime, Post, workspace) == posts
    assert _count(runtime, Link, workspace) == 12
    assert _count(runtime, DiscountCode, workspace) == 12
    assert _count(runtime, Event, workspace) == events
    assert _count(runtime, Click, workspace) == len(clicks)
    assert _count(runtime, Click, workspace, Click.is_bot.is_(True)) == len(bots)
    # Every person's click is joined to its landing page view (or its order), as a redirect's
    # would be: one touchpoint per click.
    assert _count(
        runtime, Touchpoint, workspace, Touchpoint.kind == "click", Touchpoint.is_bot.is_(False)
    ) == len(clicks) - len(bots)

    with runtime.session_factory() as session:
        orders = {
            order.external_id: order
            for order in session.scalars(select(Order).where(Order.workspace_id == workspace))
        }
        refunds = list(session.scalars(select(Refund).where(Refund.workspace_id == workspace)))
        credited = set(
            session.scalars(
                select(AttributionCredit.order_id).where(
                    AttributionCredit.workspace_id == workspace
                )
            )
        )
    assert sorted(orders) == sorted(order.order_id for order in scenario.orders)
    for plan in scenario.orders:
        order = orders[plan.order_id]
        assert (order.source, order.currency, order.total) == ("shopify", "EUR", plan.total)
        assert order.anonymous_id == plan.anonymous_id
        assert as_utc(order.placed_at) == plan.at
        assert order.discount_codes == ([plan.discount_code] if plan.discount_code else [])
    external_ids = {order.id: external_id for external_id, order in orders.items()}
    assert sorted((external_ids[r.order_id], r.amount, as_utc(r.refunded_at)) for r in refunds) == (
        sorted((refund.order_id, refund.amount, refund.at) for refund in scenario.refunds)
    )
    # The leaked code: orders with Jade's code from visitors who never clicked her link.
    leaked = [o for o in scenario.orders if o.discount_code == "JADE15" and o.via_link is None]
    assert sorted(
        external_id
        for external_id, order in orders.items()
        if "JADE15" in (order.discount_codes or []) and not (order.marketing or {}).get("click_id")
    ) == sorted(order.order_id for order in leaked)
    # Every order was attributed once the whole history was in.
    assert _count(runtime, Order, workspace, Order.attribution_stale.is_(True)) == 0
    assert credited == {order.id for order in orders.values()}
