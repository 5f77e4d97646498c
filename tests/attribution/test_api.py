"""The attribution API: an order explained, the report (JSON and CSV), recompute, isolation."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from storeloop.attribution.touchpoints import derive_touchpoints
from storeloop.db import session_scope
from storeloop.models import AttributionCredit, Order
from storeloop.runtime import Runtime
from tests.attribution.test_service import attribute_all
from tests.factories.attribution import (
    add_campaign,
    add_click,
    add_influencer,
    add_link,
    add_order,
    add_post,
    add_touchpoint,
    days_before,
    stored_event,
)
from tests.factories.workspaces import WorkspaceKeys


def _scenario(runtime: Runtime, workspace_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Ana and Ben share a 150 EUR campaign (fee 100, seeding 20, boost 30); Ana's reel link
    sells one 200 EUR order (40 refunded); a 100 EUR order has no touchpoints; a third order
    is placed after the report's range."""
    with session_scope(runtime.session_factory) as session:
        ana = add_influencer(session, workspace_id, "Ana")
        ben = add_influencer(session, workspace_id, "Ben")
        campaign = add_campaign(
            session,
            workspace_id,
            "Spring",
            fee="100",
            seeding_cost="20",
            paid_boost_cost="30",
            influencers=[ana, ben],
        )
        reel = add_post(
            session, workspace_id, f"https://instagram.com/p/{uuid.uuid4().hex}", campaign
        )
        link = add_link(session, workspace_id, influencer=ana, campaign=campaign, post=reel)
        click = add_click(session, link, days_before(3), anonymous_id="buyer")
        bot = add_click(session, link, days_before(1), anonymous_id="buyer", is_bot=True)
        derive_touchpoints(
            session,
            workspace_id,
            runtime.keyring.cipher(workspace_id),
            [
                stored_event(
                    workspace_id,
                    {"type": "page", "context": {"storeloop": {"click_id": str(bot.id)}}},
                    timestamp=days_before(1),
                    anonymous_id="buyer",
                )
            ],
        )
        add_touchpoint(session, workspace_id, "Email", days_before(45), anonymous_id="buyer")
        add_touchpoint(session, workspace_id, "Direct", days_before(2), anonymous_id="buyer")
        sold = add_order(
            session,
            workspace_id,
            total="200",
            refunded_total="40",
            anonymous_id="buyer",
            marketing={"click_id": str(click.id)},
        )
        plain = add_order(session, workspace_id, total="100", anonymous_id="nobody")
        later = add_order(
            session, workspace_id, total="70", anonymous_id="nobody", placed_at=days_before(-40)
        )
        ids = {
            "ana": ana.id,
            "ben": ben.id,
            "campaign": campaign.id,
            "reel": reel.id,
            "sold": sold.id,
            "plain": plain.id,
            "later": later.id,
            "click": click.id,
        }
    attribute_all(runtime, workspace_id)
    return ids


def _excluded(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(t["kind"], t["channel"], t["excluded_reason"]) for t in body["excluded"]]


def test_order_attribution_is_explained(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ids = _scenario(runtime, workspace.id)
    response = client.get(f"/api/v1/orders/{ids['sold']}/attribution", headers=workspace.bearer)
    assert response.status_code == 200
    body = response.json()
    assert body["rule"] == "touchpoints"
    assert body["lookback_days"] == 30
    assert body["discount_code_precedence"] is True
    assert body["attribution_stale"] is False
    assert [(t["kind"], t["channel"], t["influencer_id"]) for t in body["considered"]] == [
        ("click", "Influencer", str(ids["ana"]))
    ]
    assert _excluded(body) == [
        ("utm", "Email", "outside_window"),
        ("click", "Influencer", "bot"),
        ("utm", "Direct", "direct_overridden"),
    ]
    by_model = {entry["model"]: entry["credits"] for entry in body["models"]}
    assert list(by_model) == [
        "last_click",
        "first_click",
        "linear",
        "time_decay",
        "position_based",
        "markov",
        "shapley",
    ]
    for credits in by_model.values():
        assert [(c["channel"], Decimal(c["credit"]), Decimal(c["revenue"])) for c in credits] == [
            ("Influencer", Decimal(1), Decimal(160))
        ]
        assert credits[0]["post_id"] == str(ids["reel"])

    plain = client.get(f"/api/v1/orders/{ids['plain']}/attribution", headers=workspace.bearer)
    assert plain.json()["rule"] == "no_touchpoints"
    assert plain.json()["considered"] == []


def test_another_workspace_cannot_read_or_recompute(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    ids = _scenario(runtime, workspace.id)
    response = client.get(
        f"/api/v1/orders/{ids['sold']}/attribution", headers=other_workspace.bearer
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["field"] == "order_id"
    report = client.get(
        "/api/v1/attribution/report?group_by=influencer", headers=other_workspace.bearer
    )
    assert report.status_code == 200
    assert report.json()["rows"] == []

    recompute = client.post("/api/v1/attribution/recompute", headers=other_workspace.bearer)
    assert recompute.json() == {"orders_marked": 0, "touchpoints_reclassified": 0}
    with runtime.session_factory() as session:
        stale = session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.workspace_id == workspace.id, Order.attribution_stale.is_(True))
        )
        assert stale == 0
    assert client.get(f"/api/v1/orders/{ids['sold']}/attribution").status_code == 401


def _rows(response_body: dict[str, Any]) -> dict[str | None, tuple[str | None, ...]]:
    return {
        row["key"]: (
            row["name"],
            row["orders"],
            row["attributed_revenue"],
            row["cost"],
            row["roi"],
            row["roas"],
            row["cost_per_order"],
        )
        for row in response_body["rows"]
    }


def _decimals(values: tuple[str | None, ...]) -> tuple[Any, ...]:
    return tuple(values[:1]) + tuple(None if v is None else Decimal(v) for v in values[1:])


def test_report_numbers_per_influencer_campaign_channel_and_post(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ids = _scenario(runtime, workspace.id)
    window = "&from=2026-05-01T00:00:00Z&to=2026-06-02T00:00:00Z"
    response = client.get(
        f"/api/v1/attribution/report?group_by=influencer&model=last_click{window}",
        headers=workspace.bearer,
    )
    assert response.status_code == 200
    rows = {key: _decimals(values) for key, values in _rows(response.json()).items()}
    # Ana: 1 order, 160 net, cost 150/2 = 75: ROI (160-75)/75, ROAS 160/75.
    assert rows == {
        str(ids["ana"]): ("Ana", 1, 160, 75, Decimal("1.1333"), Decimal("2.1333"), 75),
        str(ids["ben"]): ("Ben", 0, 0, 75, -1, 0, None),
        None: (None, 1, 100, 0, None, None, None),
    }
    channels = client.get(
        f"/api/v1/attribution/report?group_by=channel&model=linear{window}",
        headers=workspace.bearer,
    ).json()
    assert {key: _decimals(values) for key, values in _rows(channels).items()} == {
        "Influencer": ("Influencer", 1, 160, 150, Decimal("0.0667"), Decimal("1.0667"), 150),
        "Direct": ("Direct", 1, 100, 0, None, None, None),
    }
    campaigns = client.get(
        f"/api/v1/attribution/report?group_by=campaign&model=shapley{window}",
        headers=workspace.bearer,
    ).json()
    assert _decimals(_rows(campaigns)[str(ids["campaign"])]) == (
        "Spring",
        1,
        160,
        150,
        Decimal("0.0667"),
        Decimal("1.0667"),
        150,
    )
    posts = client.get(
        f"/api/v1/attribution/report?group_by=post&model=markov{window}", headers=workspace.bearer
    ).json()
    assert _decimals(_rows(posts)[str(ids["reel"])])[1:] == (
        1,
        160,
        150,
        Decimal("0.0667"),
        Decimal("1.0667"),
        150,
    )
    # Without a range the later order counts too (no touchpoints: Direct).
    everything = client.get(
        "/api/v1/attribution/report?group_by=channel&model=linear", headers=workspace.bearer
    ).json()
    assert _decimals(_rows(everything)["Direct"])[1:3] == (2, 170)

    exported = client.get(
        f"/api/v1/attribution/report?group_by=influencer&model=last_click&format=csv{window}",
        headers=workspace.bearer,
    )
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0] == [
        "key",
        "name",
        "currency",
        "orders",
        "attributed_revenue",
        "cost",
        "roi",
        "roas",
        "cost_per_order",
    ]
    assert len(table) == 4
    ana_line = next(line for line in table if line[0] == str(ids["ana"]))
    assert [ana_line[1], ana_line[2]] == ["Ana", "EUR"]
    assert [Decimal(v) for v in ana_line[3:]] == [
        1,
        160,
        75,
        Decimal("1.1333"),
        Decimal("2.1333"),
        75,
    ]


def test_report_rejects_bad_parameters(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    bad_model = client.get(
        "/api/v1/attribution/report?group_by=channel&model=magic", headers=workspace.bearer
    )
    assert bad_model.status_code == 422
    assert bad_model.json()["error"]["field"] == "model"
    bad_group = client.get("/api/v1/attribution/report?group_by=planet", headers=workspace.bearer)
    assert bad_group.status_code == 422
    assert bad_group.json()["error"]["field"] == "query.group_by"
    backwards = client.get(
        "/api/v1/attribution/report?from=2026-06-01T00:00:00Z&to=2026-05-01T00:00:00Z",
        headers=workspace.bearer,
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["field"] == "from"


def test_recompute_marks_orders_and_reattributes_the_same(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    _scenario(runtime, workspace.id)

    def credit_rows() -> list[tuple[Any, ...]]:
        with runtime.session_factory() as session:
            return [
                (row.order_id, row.model, row.position, row.channel, row.credit, row.revenue)
                for row in session.scalars(
                    select(AttributionCredit)
                    .where(AttributionCredit.workspace_id == workspace.id)
                    .order_by(
                        AttributionCredit.order_id,
                        AttributionCredit.model,
                        AttributionCredit.position,
                    )
                )
            ]

    before = credit_rows()
    assert len(before) == 21
    response = client.post("/api/v1/attribution/recompute", headers=workspace.bearer)
    assert response.json() == {"orders_marked": 3, "touchpoints_reclassified": 0}
    attribute_all(runtime, workspace.id)
    assert credit_rows() == before


def test_csv_report_quotes_cells_a_spreadsheet_would_run(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    names = ['=HYPERLINK("http://evil.example")', "+1+1", "-2", "@SUM(A1)", "\tTab", "\rCR"]
    with session_scope(runtime.session_factory) as session:
        campaign_ids = {
            add_campaign(session, workspace.id, name, fee="10").id: name for name in names
        }
        add_campaign(session, workspace.id, "Plain name", fee="10")
    exported = client.get(
        "/api/v1/attribution/report?group_by=campaign&model=last_click&format=csv",
        headers=workspace.bearer,
    )
    assert exported.status_code == 200
    table = list(csv.reader(io.StringIO(exported.text, newline="")))
    by_key = {line[0]: line for line in table[1:]}
    assert len(by_key) == 7
    for campaign_id, name in campaign_ids.items():
        # No revenue against a cost of 10: ROI -1 stays a number.
        assert by_key[str(campaign_id)][1:] == [
            "'" + name,
            "EUR",
            "0E-12",
            "0.0000",
            "10.0000",
            "-1.0000",
            "0.0000",
            "",
        ]
    assert [line[1] for line in table[1:] if line[1] == "Plain name"] == ["Plain name"]
