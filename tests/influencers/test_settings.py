"""Store settings: defaults until the first write, validated domains and rules, sealed secrets."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Result, event, select
from sqlalchemy.orm import ORMExecuteState

from storeloop.db import session_scope
from storeloop.influencers import service
from storeloop.influencers.schemas import ChannelRule, StoreSettingsUpdate, StoreSettingsView
from storeloop.kit.crypto import row_aad
from storeloop.kit.urls import destination_allowed
from storeloop.models import StoreSettings
from storeloop.runtime import Runtime
from tests.factories.influencers import set_store_settings
from tests.factories.workspaces import WorkspaceKeys

DEFAULTS = {
    "allowed_domains": [],
    "lookback_days": 30,
    "time_decay_half_life_days": 7.0,
    "discount_code_precedence": True,
    "channel_rules": [],
    "abandonment_minutes": 60,
    "shopify_webhook_secret_set": False,
    "woocommerce_webhook_secret_set": False,
    "updated_at": None,
}


def _row(runtime: Runtime, keys: WorkspaceKeys) -> StoreSettings | None:
    with runtime.session_factory() as session:
        return session.scalars(
            select(StoreSettings).where(StoreSettings.workspace_id == keys.id)
        ).first()


def test_defaults_until_the_first_write(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    assert client.get("/api/v1/settings", headers=workspace.bearer).json() == DEFAULTS
    assert _row(runtime, workspace) is None
    with session_scope(runtime.session_factory) as session:
        assert service.get_store_settings(session, workspace.id) == StoreSettingsView(workspace.id)

    patched = client.patch(
        "/api/v1/settings",
        json={
            "allowed_domains": ["Shop.Example.COM.", "bücher.example", "shop.example.com"],
            "lookback_days": 14,
            "time_decay_half_life_days": 3.5,
            "discount_code_precedence": False,
            "channel_rules": [
                {"match": {"source": "newsletter", "medium": "email"}, "channel": "Email"},
                {"match": {"referrer_host": "linktr.ee"}, "channel": "influencer"},
            ],
        },
        headers=workspace.bearer,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["allowed_domains"] == ["shop.example.com", "xn--bcher-kva.example"]
    assert (body["lookback_days"], body["time_decay_half_life_days"]) == (14, 3.5)
    assert body["discount_code_precedence"] is False
    assert body["channel_rules"][0] == {
        "match": {
            "source": "newsletter",
            "medium": "email",
            "referrer_host": None,
            "campaign": None,
        },
        "channel": "Email",
    }
    assert body["updated_at"] is not None
    # A later PATCH changes only what it sends.
    again = client.patch("/api/v1/settings", json={"lookback_days": 60}, headers=workspace.bearer)
    assert again.json()["allowed_domains"] == ["shop.example.com", "xn--bcher-kva.example"]
    assert again.json()["lookback_days"] == 60
    with session_scope(runtime.session_factory) as session:
        view = service.get_store_settings(session, workspace.id)
    assert view.channel_rules == (
        ChannelRule(channel="Email", source="newsletter", medium="email"),
        ChannelRule(channel="Influencer", referrer_host="linktr.ee"),
    )
    assert view.lookback_days == 60
    assert destination_allowed("https://www.shop.example.com/", view.allowed_domains)


def test_invalid_settings_are_refused_and_change_nothing(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    set_store_settings(runtime, workspace.id, allowed_domains=["shop.example"], lookback_days=10)
    cases = [
        (
            {"allowed_domains": ["ok.example", "https://shop.example/path"]},
            "invalid_domain",
            "allowed_domains.1",
        ),
        ({"allowed_domains": ["shop example"]}, "invalid_domain", "allowed_domains.0"),
        ({"allowed_domains": ["192.168.0.1"]}, "invalid_domain", "allowed_domains.0"),
        ({"allowed_domains": ["-bad-.example"]}, "invalid_domain", "allowed_domains.0"),
        ({"allowed_domains": None}, "validation_failed", "allowed_domains"),
        ({"lookback_days": 0}, "validation_failed", "body.lookback_days"),
        ({"lookback_days": 366}, "validation_failed", "body.lookback_days"),
        ({"time_decay_half_life_days": 0}, "validation_failed", "body.time_decay_half_life_days"),
        (
            {"channel_rules": [{"match": {}, "channel": "X"}]},
            "validation_failed",
            "channel_rules.0.match",
        ),
        (
            {"channel_rules": [{"match": {"host": "x"}, "channel": "X"}]},
            "validation_failed",
            "body.channel_rules.0.match.host",
        ),
        (
            {"channel_rules": [{"match": {"source": "x"}, "channel": "Billboards"}]},
            "validation_failed",
            "channel_rules.0.channel",
        ),
        ({"shopify_webhook_secret": ""}, "validation_failed", "body.shopify_webhook_secret"),
    ]
    for payload, code, field in cases:
        response = client.patch("/api/v1/settings", json=payload, headers=workspace.bearer)
        assert response.status_code == 422, payload
        assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
            code,
            field,
        ), payload
    body = client.get("/api/v1/settings", headers=workspace.bearer).json()
    assert body["allowed_domains"] == ["shop.example"]
    assert body["lookback_days"] == 10
    assert body["channel_rules"] == []


def test_webhook_secrets_are_write_only_and_sealed(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    secret = "shpss_0123456789abcdef"
    response = client.patch(
        "/api/v1/settings",
        json={"shopify_webhook_secret": secret, "woocommerce_webhook_secret": "wc secret ✓"},
        headers=workspace.bearer,
    )
    assert response.status_code == 200
    assert response.json()["shopify_webhook_secret_set"] is True
    assert response.json()["woocommerce_webhook_secret_set"] is True
    assert secret not in response.text
    assert secret not in client.get("/api/v1/settings", headers=workspace.bearer).text

    row = _row(runtime, workspace)
    assert row is not None
    assert row.shopify_secret_sealed is not None
    assert secret.encode() not in row.shopify_secret_sealed
    cipher = runtime.keyring.cipher(workspace.id)
    assert (
        cipher.open(
            row.shopify_secret_sealed, row_aad("store_settings", workspace.id, "shopify_secret")
        )
        == secret.encode()
    )
    with session_scope(runtime.session_factory) as session:
        assert service.webhook_secret(session, cipher, workspace.id, "shopify") == secret.encode()
        assert (
            service.webhook_secret(session, cipher, workspace.id, "woocommerce")
            == "wc secret ✓".encode()
        )

    cleared = client.patch(
        "/api/v1/settings", json={"shopify_webhook_secret": None}, headers=workspace.bearer
    ).json()
    assert cleared["shopify_webhook_secret_set"] is False
    assert cleared["woocommerce_webhook_secret_set"] is True
    with session_scope(runtime.session_factory) as session:
        assert service.webhook_secret(session, cipher, workspace.id, "shopify") is None


def test_webhook_secret_of_a_workspace_without_settings(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    with session_scope(runtime.session_factory) as session:
        cipher = runtime.keyring.cipher(workspace.id)
        assert service.webhook_secret(session, cipher, workspace.id, "woocommerce") is None


def test_two_first_saves_at_the_same_moment_both_apply(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    cipher = runtime.keyring.cipher(workspace.id)
    first, second = runtime.session_factory(), runtime.session_factory()
    interleaved: list[bool] = []

    def first_save_commits_meanwhile(state: ORMExecuteState) -> Result[Any] | None:
        # The second save has just read that no settings row exists; the first one lands now.
        if interleaved or not state.is_select:
            return None
        seen = state.invoke_statement().freeze()
        service.update_store_settings(
            first, cipher, workspace.id, StoreSettingsUpdate(allowed_domains=["a.example"])
        )
        first.commit()
        interleaved.append(True)
        return seen()

    event.listen(second, "do_orm_execute", first_save_commits_meanwhile)
    try:
        view = service.update_store_settings(
            second, cipher, workspace.id, StoreSettingsUpdate(lookback_days=10)
        )
        second.commit()
    finally:
        first.close()
        second.close()
    assert interleaved == [True]
    assert (view.allowed_domains, view.lookback_days) == (("a.example",), 10)
    row = _row(runtime, workspace)
    assert row is not None
    assert (row.allowed_domains, row.lookback_days, row.time_decay_half_life_days) == (
        ["a.example"],
        10,
        7.0,
    )
