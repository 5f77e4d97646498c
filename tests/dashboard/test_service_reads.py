"""The small service reads added for the dashboard, each scoped to its workspace: names of
influencers and campaigns, orders credited to one, new orders since a moment, any event yet."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from storeloop.attribution.service import credited_orders
from storeloop.identity.service import has_events
from storeloop.influencers.service import campaign_names, influencer_names
from storeloop.orders.service import orders_created_after
from storeloop.runtime import Runtime
from tests.factories.dashboard import Store, make_store
from tests.factories.orders import make_order
from tests.factories.workspaces import WorkspaceKeys


def test_reads_see_only_their_workspace(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
) -> None:
    store: Store = make_store(client, runtime, workspace)
    maya, noor, campaign = (
        uuid.UUID(value) for value in (store.maya_id, store.noor_id, store.campaign_id)
    )
    with runtime.session_factory() as session:
        assert influencer_names(session, workspace.id) == {maya: "Maya", noor: "Noor"}
        assert influencer_names(session, workspace.id, {maya, uuid.uuid4()}) == {maya: "Maya"}
        assert influencer_names(session, other_workspace.id, {maya, noor}) == {}
        assert influencer_names(session, other_workspace.id) == {}
        assert campaign_names(session, workspace.id) == {campaign: "Autumn edit"}
        assert campaign_names(session, other_workspace.id, {campaign}) == {}

        credited = credited_orders(session, workspace.id, model="linear", influencer_id=maya)
        assert [
            (str(item.order_id), item.credit, item.revenue, item.currency) for item in credited
        ] == [
            (store.code_order_id, Decimal("1.000000000000"), Decimal("80.0000"), "EUR"),
            (store.first_order_id, Decimal("1.000000000000"), Decimal("120.0000"), "EUR"),
        ]
        assert (
            credited_orders(session, workspace.id, model="linear", campaign_id=campaign) == credited
        )
        assert (
            credited_orders(session, other_workspace.id, model="linear", influencer_id=maya) == []
        )
        assert credited_orders(session, workspace.id, model="linear", influencer_id=noor) == []
        later = datetime.now(UTC) + timedelta(days=1)
        assert (
            credited_orders(
                session, workspace.id, model="linear", influencer_id=maya, date_from=later
            )
            == []
        )

        assert has_events(session, workspace.id) is True
        assert has_events(session, other_workspace.id) is False


def test_new_orders_are_read_after_a_moment_oldest_first(
    runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    now = datetime.now(UTC)
    first = make_order(runtime, workspace.id, "N-1", total="10.00", placed_at=now)
    second = make_order(runtime, workspace.id, "N-2", total="20.00", placed_at=now)
    make_order(runtime, other_workspace.id, "N-3", total="30.00", placed_at=now)
    # Placed long ago but stored now (an import): not news.
    make_order(runtime, workspace.id, "N-old", total="40.00", placed_at=now - timedelta(days=30))
    with runtime.session_factory() as session:
        notices = orders_created_after(session, workspace.id, before)
        assert [(n.id, n.total, n.currency, n.source) for n in notices] == [
            (first, Decimal("10.0000"), "EUR", "shopify"),
            (second, Decimal("20.0000"), "EUR", "shopify"),
        ]
        assert orders_created_after(session, workspace.id, notices[0].created_at) == notices[1:]
        assert orders_created_after(session, workspace.id, before, limit=1) == notices[:1]
        assert orders_created_after(session, workspace.id, datetime.now(UTC)) == []
