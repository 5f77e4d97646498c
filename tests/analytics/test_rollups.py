"""Rollup answers equal a direct computation over the raw rows (ADR 0008), and stay equal when
late and duplicate events, refunds, merges and re-attribution arrive.

The direct computation is written independently of storeloop.analytics.rollups: pandas over
the events, orders, touchpoints and credits tables.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import select

from storeloop.analytics import service
from storeloop.analytics.schemas import KpiQuery
from storeloop.kit.timeutil import as_utc
from storeloop.models import AttributionCredit, Event, Order, Profile, Touchpoint
from storeloop.runtime import Runtime
from tests.factories.analytics import message, send, settle, storefront_traffic
from tests.factories.workspaces import WorkspaceKeys

DAYS = 3
FIRST_DAY = (datetime.now(UTC) - timedelta(days=6)).replace(
    hour=0, minute=0, second=0, microsecond=0
)
WINDOW = timedelta(minutes=60)


def _canonical(merged: dict[uuid.UUID, uuid.UUID], profile_id: Any) -> str | None:
    if profile_id is None:
        return None
    while profile_id in merged:
        profile_id = merged[profile_id]
    return str(profile_id)


def _raw(runtime: Runtime, workspace_id: uuid.UUID) -> dict[str, pd.DataFrame]:
    with runtime.session_factory() as session:
        merged = dict(
            session.execute(
                select(Profile.id, Profile.merged_into).where(
                    Profile.workspace_id == workspace_id, Profile.merged_into.is_not(None)
                )
            ).all()
        )
        events = pd.DataFrame(
            [
                {
                    "visitor": _canonical(merged, row.profile_id) or f"a:{row.anonymous_id}",
                    "at": as_utc(row.timestamp),
                    "type": row.type,
                    "event": row.event,
                    "device": row.device or "unknown",
                }
                for row in session.scalars(select(Event).where(Event.workspace_id == workspace_id))
            ]
        )
        orders = pd.DataFrame(
            [
                {
                    "id": row.id,
                    "visitor": _canonical(merged, row.profile_id),
                    "customer": row.customer_external_id
                    or row.customer_email_index
                    or str(row.profile_id),
                    "at": as_utc(row.placed_at),
                    "total": Decimal(row.total),
                    "refunded": Decimal(row.refunded_total),
                    "status": row.status,
                }
                for row in session.scalars(select(Order).where(Order.workspace_id == workspace_id))
            ]
        )
        touchpoints = pd.DataFrame(
            [
                {
                    "visitor": _canonical(merged, row.profile_id) or f"a:{row.anonymous_id}",
                    "at": as_utc(row.occurred_at),
                    "channel": row.channel,
                }
                for row in session.scalars(
                    select(Touchpoint).where(
                        Touchpoint.workspace_id == workspace_id,
                        Touchpoint.kind.in_(("click", "utm", "referrer")),
                        Touchpoint.is_bot.is_(False),
                    )
                )
            ]
        )
        credits = pd.DataFrame(
            [
                {
                    "order_id": row.order_id,
                    "model": row.model,
                    "channel": row.channel,
                    "credit": Decimal(row.credit),
                    "revenue": Decimal(row.revenue),
                }
                for row in session.scalars(
                    select(AttributionCredit).where(AttributionCredit.workspace_id == workspace_id)
                )
            ]
        )
    return {"events": events, "orders": orders, "touchpoints": touchpoints, "credits": credits}


def _true_count(frame: pd.DataFrame, column: str) -> int:
    return int(frame[column].astype(bool).sum()) if len(frame) else 0


def _direct(raw: dict[str, pd.DataFrame], start: date, end: date) -> dict[str, Any]:
    """The overview's figures straight from the raw rows."""
    events = raw["events"].copy()
    events["day"] = events["at"].map(lambda moment: moment.date())
    events = events[(events["day"] >= start) & (events["day"] <= end)]
    events = events.sort_values(["visitor", "at"]).reset_index(drop=True)
    gap = events.groupby("visitor")["at"].diff()
    new_day = events.groupby("visitor")["day"].diff().map(lambda delta: delta != timedelta(0))
    starts = gap.isna() | (gap > timedelta(minutes=30)) | new_day
    events["session"] = starts.cumsum()
    sessions = events.groupby("session").agg(
        visitor=("visitor", "first"),
        start=("at", "min"),
        end=("at", "max"),
        viewed=("event", lambda values: (values == "Product Viewed").any()),
        added=("event", lambda values: (values == "Product Added").any()),
        checkout=("event", lambda values: (values == "Checkout Started").any()),
        completed=("event", lambda values: (values == "Order Completed").any()),
    )
    orders = raw["orders"]
    live = orders[orders["status"] != "cancelled"]

    def converted(row: Any) -> bool:
        if row.completed:
            return True
        placed = live[live["visitor"] == row.visitor]["at"]
        return bool(((placed >= row.start) & (placed <= row.end + timedelta(minutes=30))).any())

    sessions["converted"] = [converted(row) for row in sessions.itertuples()]
    checkouts = events[events["event"] == "Checkout Started"]
    abandoned = 0
    for row in checkouts.itertuples():
        placed = live[live["visitor"] == row.visitor]["at"]
        if not ((placed >= row.at) & (placed <= row.at + WINDOW)).any():
            abandoned += 1
    live = live.assign(day=live["at"].map(lambda moment: moment.date()))
    in_range = live[(live["day"] >= start) & (live["day"] <= end)]
    first_at = live.groupby("customer")["at"].min()
    first_orders = sum(1 for row in in_range.itertuples() if row.at == first_at[row.customer])
    net = sum(
        (max(row.total - row.refunded, Decimal(0)) for row in in_range.itertuples()), Decimal(0)
    )
    customers = set(in_range["customer"])
    new_customers = {c for c in customers if first_at[c].date() >= start}
    return {
        "sessions": len(sessions),
        "unique_visitors": events["visitor"].nunique(),
        "converted_sessions": _true_count(sessions, "converted"),
        "product_viewed": _true_count(sessions, "viewed"),
        "added_to_cart": _true_count(sessions, "added"),
        "checkout_started": _true_count(sessions, "checkout"),
        "checkouts_started": len(checkouts),
        "abandoned_checkouts": abandoned,
        "orders": len(in_range),
        "gross_revenue": sum(in_range["total"], Decimal(0)),
        "net_revenue": net,
        "refunded_orders": int((in_range["refunded"] > 0).sum()),
        "first_orders": first_orders,
        "customers": len(customers),
        "new_customers": len(new_customers),
    }


def _rolled_up(runtime: Runtime, workspace_id: uuid.UUID, start: date, end: date) -> dict[str, Any]:
    query = KpiQuery(start=start, end=end)
    with runtime.session_factory() as session:
        kpis = service.overview(session, workspace_id, query)
        steps = {
            step.step: step.sessions for step in service.funnel(session, workspace_id, query).steps
        }
    return {
        "sessions": kpis.sessions,
        "unique_visitors": kpis.unique_visitors,
        "converted_sessions": kpis.converted_sessions,
        "product_viewed": steps["product_viewed"],
        "added_to_cart": steps["added_to_cart"],
        "checkout_started": steps["checkout_started"],
        "checkouts_started": kpis.checkouts_started,
        "abandoned_checkouts": kpis.abandoned_checkouts,
        "orders": int(kpis.orders),
        "gross_revenue": kpis.gross_revenue,
        "net_revenue": kpis.net_revenue,
        "refunded_orders": int(kpis.refunded_orders),
        "first_orders": int(kpis.first_orders),
        "customers": kpis.customers,
        "new_customers": kpis.new_customers,
    }


def _assert_rollups_match(runtime: Runtime, workspace_id: uuid.UUID) -> dict[str, Any]:
    raw = _raw(runtime, workspace_id)
    first = FIRST_DAY.date()
    ranges = [(first, first + timedelta(days=DAYS))]
    ranges += [(first + timedelta(days=n), first + timedelta(days=n)) for n in range(DAYS + 1)]
    for start, end in ranges:
        assert _rolled_up(runtime, workspace_id, start, end) == _direct(raw, start, end), (
            start,
            end,
        )
    return _direct(raw, *ranges[0])


def _channel_revenue(runtime: Runtime, workspace_id: uuid.UUID, model: str) -> dict[str, Decimal]:
    query = KpiQuery(start=FIRST_DAY.date(), end=FIRST_DAY.date() + timedelta(days=DAYS))
    with runtime.session_factory() as session:
        result = service.breakdown(session, workspace_id, query, "channel", [model])
    return {
        row.key or "": row.models[model].revenue for row in result.rows if row.models[model].orders
    }


def _direct_channel_revenue(
    runtime: Runtime, workspace_id: uuid.UUID, model: str
) -> dict[str, Decimal]:
    raw = _raw(runtime, workspace_id)
    credits = raw["credits"]
    live = set(raw["orders"][raw["orders"]["status"] != "cancelled"]["id"])
    chosen = credits[(credits["model"] == model) & credits["order_id"].isin(live)]
    totals: dict[str, Decimal] = {}
    for row in chosen.itertuples():
        totals[row.channel] = totals.get(row.channel, Decimal(0)) + row.revenue
    return {channel: value.quantize(Decimal("0.0001")) for channel, value in totals.items()}


def test_rollups_equal_a_direct_computation_through_late_data_refunds_and_reattribution(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    traffic = storefront_traffic(FIRST_DAY, DAYS, visitors=40)
    send(client, workspace, traffic.messages)
    settle(runtime)
    before = _assert_rollups_match(runtime, workspace.id)
    assert before["orders"] == len(traffic.order_ids)
    assert (
        before["sessions"] > before["unique_visitors"] > 0
        or before["sessions"] == before["unique_visitors"]
    )

    # Late: an event between two visits of one visitor joins them into one session; a
    # duplicate (same messageId) changes nothing; a new day gets its first visitor.
    visitor = "anon-late"
    day_one = FIRST_DAY + timedelta(hours=10)
    send(
        client,
        workspace,
        [
            message("page", visitor, day_one, "desktop", name="Home"),
            message("page", visitor, day_one + timedelta(minutes=50), "desktop", name="Home"),
        ],
    )
    settle(runtime)
    split = _assert_rollups_match(runtime, workspace.id)
    late = message("page", visitor, day_one + timedelta(minutes=25), "desktop", name="Home")
    send(client, workspace, [late, late])
    settle(runtime)
    joined = _assert_rollups_match(runtime, workspace.id)
    assert joined["sessions"] == split["sessions"] - 1

    # An order just after midnight converts the session that began before it, on the day
    # before: that day is rolled up again too.
    night = FIRST_DAY + timedelta(days=1, hours=23, minutes=50)
    send(
        client,
        workspace,
        # Known from the start (no merge when the order comes, which would mark the day too).
        [
            message(
                "page", "anon-night", night, "mobile", name="Home", userId="night-owl@example.com"
            )
        ],
    )
    settle(runtime)
    send(
        client,
        workspace,
        [
            message(
                "track",
                "anon-night",
                night + timedelta(minutes=15),
                "mobile",
                userId="night-owl@example.com",
                event="Order Completed",
                properties={
                    "order_id": "night-1",
                    "total": 42,
                    "currency": "EUR",
                    "products": [{"product_id": "sku-1", "price": 42, "quantity": 1}],
                },
            ),
        ],
    )
    settle(runtime)
    _assert_rollups_match(runtime, workspace.id)

    # A refund arrives for an order placed days ago: net revenue falls by exactly that much.
    refunded_id = traffic.order_ids[0]
    send(
        client,
        workspace,
        [
            message(
                "track",
                "anon-refunds",
                FIRST_DAY + timedelta(days=DAYS, hours=12),
                "desktop",
                event="Order Refunded",
                properties={"order_id": refunded_id},
            )
        ],
    )
    settle(runtime)
    after_refund = _assert_rollups_match(runtime, workspace.id)
    assert after_refund["net_revenue"] < joined["net_revenue"]

    # Re-attribution under changed rules: rollups follow the new credits.
    for model in ("last_click", "linear"):
        assert _channel_revenue(runtime, workspace.id, model) == _direct_channel_revenue(
            runtime, workspace.id, model
        )
    response = client.post("/api/v1/attribution/recompute", headers=workspace.bearer)
    assert response.status_code == 200
    client.patch(
        "/api/v1/settings", json={"lookback_days": 1}, headers=workspace.bearer
    ).raise_for_status()
    client.post("/api/v1/attribution/recompute", headers=workspace.bearer).raise_for_status()
    settle(runtime)
    for model in ("last_click", "linear"):
        assert _channel_revenue(runtime, workspace.id, model) == _direct_channel_revenue(
            runtime, workspace.id, model
        )
    _assert_rollups_match(runtime, workspace.id)
