"""Store settings: the defaults, validated writes, sealed webhook secrets, allowed domains."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.orm import Session

from storeloop.analytics.repository import mark_days, rolled_up_days
from storeloop.attribution.channels import parse_channel_rules
from storeloop.influencers.repository import MarketingRepository
from storeloop.influencers.schemas import (
    ChannelMatch,
    ChannelRule,
    ChannelRuleIn,
    StoreSettingsOut,
    StoreSettingsUpdate,
    StoreSettingsView,
)
from storeloop.influencers.service.common import (
    InvalidDomain,
    changes_of,
    channel_name,
)
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.kit.urls import is_public_suffix, normalize_host
from storeloop.models import StoreSettings

WebhookProvider = Literal["shopify", "woocommerce"]
_SECRET_COLUMNS: dict[str, tuple[str, str]] = {
    "shopify": ("shopify_secret_sealed", "shopify_secret"),
    "woocommerce": ("woocommerce_secret_sealed", "woocommerce_secret"),
}


def _view(workspace_id: uuid.UUID, row: StoreSettings | None) -> StoreSettingsView:
    if row is None:
        return StoreSettingsView(workspace_id=workspace_id)
    return StoreSettingsView(
        workspace_id=workspace_id,
        allowed_domains=tuple(row.allowed_domains),
        lookback_days=row.lookback_days,
        time_decay_half_life_days=row.time_decay_half_life_days,
        discount_code_precedence=row.discount_code_precedence,
        channel_rules=tuple(
            ChannelRule(channel=rule["channel"], **rule["match"]) for rule in row.channel_rules
        ),
        abandonment_minutes=row.abandonment_minutes,
        has_shopify_secret=row.shopify_secret_sealed is not None,
        has_woocommerce_secret=row.woocommerce_secret_sealed is not None,
        updated_at=as_utc(row.updated_at),
    )


def get_store_settings(session: Session, workspace_id: uuid.UUID) -> StoreSettingsView:
    """The workspace's settings; the defaults when it never saved any."""
    return _view(workspace_id, MarketingRepository(session, workspace_id).store_settings())


def webhook_secret(
    session: Session, cipher: WorkspaceCipher, workspace_id: uuid.UUID, provider: WebhookProvider
) -> bytes | None:
    """The shop platform's webhook signing secret (UTF-8 bytes, as HMAC wants it), or None."""
    if provider not in _SECRET_COLUMNS:
        raise ValueError(f"unknown webhook provider {provider!r}")
    row = MarketingRepository(session, workspace_id).store_settings()
    if row is None:
        return None
    column, aad_column = _SECRET_COLUMNS[provider]
    sealed: bytes | None = getattr(row, column)
    if sealed is None:
        return None
    return cipher.open(sealed, row_aad("store_settings", workspace_id, aad_column))


def settings_out(view: StoreSettingsView) -> StoreSettingsOut:
    return StoreSettingsOut(
        allowed_domains=list(view.allowed_domains),
        lookback_days=view.lookback_days,
        time_decay_half_life_days=view.time_decay_half_life_days,
        discount_code_precedence=view.discount_code_precedence,
        channel_rules=[
            ChannelRuleIn(
                match=ChannelMatch(
                    source=rule.source,
                    medium=rule.medium,
                    referrer_host=rule.referrer_host,
                    campaign=rule.campaign,
                ),
                channel=rule.channel,
            )
            for rule in view.channel_rules
        ],
        abandonment_minutes=view.abandonment_minutes,
        shopify_webhook_secret_set=view.has_shopify_secret,
        woocommerce_webhook_secret_set=view.has_woocommerce_secret,
        updated_at=view.updated_at,
    )


def _domains(values: list[str]) -> list[str]:
    domains: list[str] = []
    for index, value in enumerate(values):
        domain = normalize_host(value)
        if domain is None:
            raise InvalidDomain(
                f"{value!r} is not a host name; give one like shop.example.com "
                "(no scheme, port or path)",
                field=f"allowed_domains.{index}",
            )
        if is_public_suffix(domain):
            # It would allow every site registered under it (com, co.uk, myshopify.com).
            raise InvalidDomain(
                f"{value!r} is a top-level domain or another public suffix; give the store's "
                "own domain, like shop.example.com",
                field=f"allowed_domains.{index}",
            )
        if domain not in domains:
            domains.append(domain)
    return domains


def _channel_rules(rules: list[ChannelRuleIn]) -> list[dict[str, Any]]:
    stored: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        match = rule.match.model_dump(exclude_none=True)
        if not match:
            raise ValidationFailed(
                "a channel rule needs at least one of source, medium, referrer_host, campaign",
                field=f"channel_rules.{index}.match",
            )
        channel = channel_name(rule.channel, f"channel_rules.{index}.channel")
        stored.append({"match": match, "channel": channel})
    # Attribution parses the stored rules again: refuse here anything it would refuse there.
    parse_channel_rules(stored)
    return stored


def update_store_settings(
    session: Session,
    cipher: WorkspaceCipher,
    workspace_id: uuid.UUID,
    update: StoreSettingsUpdate,
) -> StoreSettingsView:
    """Apply the fields sent; the row is created on the first write, from the defaults."""
    changes = changes_of(
        update,
        not_null={
            "allowed_domains",
            "lookback_days",
            "time_decay_half_life_days",
            "discount_code_precedence",
            "channel_rules",
            "abandonment_minutes",
        },
    )
    repository = MarketingRepository(session, workspace_id)
    row = repository.store_settings()
    if row is None:
        # Two first saves may race: the row is inserted unless it exists by now, then changed.
        defaults = StoreSettingsView(workspace_id=workspace_id)
        row = repository.create_store_settings_if_missing(
            lookback_days=defaults.lookback_days,
            time_decay_half_life_days=defaults.time_decay_half_life_days,
            discount_code_precedence=defaults.discount_code_precedence,
            updated_at=utcnow(),
        )
    if "allowed_domains" in changes:
        row.allowed_domains = _domains(changes["allowed_domains"])
    if "channel_rules" in changes:
        row.channel_rules = _channel_rules(update.channel_rules or [])
    window_changed = changes.get("abandonment_minutes", row.abandonment_minutes) != (
        row.abandonment_minutes
    )
    for name in (
        "lookback_days",
        "time_decay_half_life_days",
        "discount_code_precedence",
        "abandonment_minutes",
    ):
        if name in changes:
            setattr(row, name, changes[name])
    if window_changed:
        # Every rolled-up day's abandoned checkouts are counted again under the new window.
        mark_days(session, workspace_id, rolled_up_days(session, workspace_id))
    for provider, (column, aad_column) in _SECRET_COLUMNS.items():
        field = f"{provider}_webhook_secret"
        if field in changes:
            secret: str | None = changes[field]
            setattr(
                row,
                column,
                None
                if secret is None
                else cipher.seal(
                    secret.encode(), row_aad("store_settings", workspace_id, aad_column)
                ),
            )
    row.updated_at = utcnow()
    session.flush()
    return _view(workspace_id, row)
