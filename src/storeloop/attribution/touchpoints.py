"""Touchpoints: every marketing contact of a customer, derived from events and from orders.

A derivation handler (registered in runtime.py after the orders handler) reads tracked-link
clicks, UTM tags, click ids, external referrers and coupon events; orders add their own discount
codes, recorded marketing fields, landing page and referrer when they are attributed. Dedupe keys
are deterministic, so deriving twice stores nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from storeloop.analytics.repository import mark_days, rolled_up_days
from storeloop.attribution.channels import (
    CLICK_ID_PARAMETERS,
    DIRECT,
    ORGANIC_SEARCH,
    ORGANIC_SOCIAL,
    PAID_SEARCH,
    PAID_SOCIAL,
    REFERRAL,
    ChannelInput,
    ChannelRule,
    classify,
    in_app_browser,
    parse_channel_rules,
    query_parameters,
    url_host,
)
from storeloop.attribution.repository import AttributionRepository
from storeloop.derivation import StoredEvent
from storeloop.influencers.service import discount_code_key, get_store_settings
from storeloop.kit.crypto import WorkspaceCipher
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc
from storeloop.kit.tracking_params import CLICK_ID_PARAMETER
from storeloop.models import Campaign, Click, DiscountCode, Link, Order

logger = logging.getLogger(__name__)

COUPON_TOUCH_EVENTS = frozenset({"Coupon Applied", "Coupon Entered"})
# Events a visitor lands with; a track event is an action on a page already counted.
VIEW_EVENTS = frozenset({"page", "screen"})
# Touchpoint kinds built from a landing: their click ids and user agent are not stored.
LANDING_KINDS = frozenset({"utm", "referrer", "shop_landing", "shop_referrer"})


def _text(value: Any, limit: int = 255) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:limit]
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def channel_rules_of(session: Session, workspace_id: uuid.UUID) -> list[ChannelRule]:
    """The workspace's channel override rules, read through the store settings service."""
    settings = get_store_settings(session, workspace_id)
    raw = [
        {
            "match": {
                name: value
                for name in ("source", "medium", "referrer_host", "campaign")
                if (value := getattr(rule, name)) is not None
            },
            "channel": rule.channel,
        }
        for rule in settings.channel_rules
    ]
    try:
        return parse_channel_rules(raw)
    except ValidationFailed:
        # Rules are validated when saved; a stored bad rule must not stop derivation.
        logger.warning(
            "workspace %s has invalid channel rules; using the default grouping", workspace_id
        )
        return []


class _Builder:
    """Builds touchpoint rows for one workspace, looking up links, campaigns and codes once."""

    def __init__(self, repository: AttributionRepository, rules: Sequence[ChannelRule]) -> None:
        self.repository = repository
        self.rules = list(rules)
        self._campaigns: dict[uuid.UUID, Campaign] | None = None

    def campaign(self, campaign_id: uuid.UUID | None) -> Campaign | None:
        if campaign_id is None:
            return None
        if self._campaigns is None:
            self._campaigns = self.repository.campaigns()
        return self._campaigns.get(campaign_id)

    def row(
        self,
        *,
        dedupe_key: str,
        kind: str,
        occurred_at: datetime,
        profile_id: uuid.UUID | None,
        anonymous_id: str | None,
        contact: ChannelInput,
        influencer_id: uuid.UUID | None = None,
        campaign_id: uuid.UUID | None = None,
        link_id: uuid.UUID | None = None,
        post_id: uuid.UUID | None = None,
        click_id: uuid.UUID | None = None,
        discount_code_id: uuid.UUID | None = None,
        order_id: uuid.UUID | None = None,
        is_bot: bool = False,
    ) -> dict[str, Any]:
        return {
            "id": new_id(),
            "dedupe_key": dedupe_key[:255],
            "profile_id": profile_id,
            "anonymous_id": anonymous_id,
            "occurred_at": as_utc(occurred_at),
            "kind": kind,
            "channel": classify(contact, self.rules),
            "source": contact.source,
            "medium": contact.medium,
            "campaign_name": contact.campaign,
            "referrer_host": contact.referrer_host,
            "influencer_id": influencer_id,
            "campaign_id": campaign_id,
            "link_id": link_id,
            "post_id": post_id,
            "click_id": click_id,
            "discount_code_id": discount_code_id,
            "order_id": order_id,
            "is_bot": is_bot,
        }

    def click_row(
        self,
        click: Click,
        link: Link | None,
        profile_id: uuid.UUID | None,
        anonymous_id: str | None,
        order_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        campaign = self.campaign(link.campaign_id if link else None)
        utm = link.utm if link and isinstance(link.utm, dict) else {}
        contact = ChannelInput(
            source=_text(utm.get("utm_source")) or (campaign.utm_source if campaign else None),
            medium=_text(utm.get("utm_medium")) or (campaign.utm_medium if campaign else None),
            campaign=_text(utm.get("utm_campaign"))
            or (campaign.utm_campaign if campaign else None),
            referrer_host=url_host(click.referrer),
            user_agent=click.user_agent,
            has_influencer=link is not None and link.influencer_id is not None,
            campaign_channel=campaign.channel if campaign else None,
        )
        return self.row(
            dedupe_key=f"click:{click.id}",
            kind="click",
            occurred_at=click.clicked_at,
            profile_id=profile_id,
            anonymous_id=anonymous_id or click.anonymous_id,
            contact=contact,
            influencer_id=link.influencer_id if link else None,
            campaign_id=link.campaign_id if link else None,
            link_id=click.link_id,
            post_id=link.post_id if link else None,
            click_id=click.id,
            order_id=order_id,
            is_bot=click.is_bot,
        )

    def code_row(
        self,
        code: DiscountCode,
        dedupe_key: str,
        occurred_at: datetime,
        profile_id: uuid.UUID | None,
        anonymous_id: str | None,
        order_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        campaign = self.campaign(code.campaign_id)
        contact = ChannelInput(
            source=campaign.utm_source if campaign else None,
            medium=campaign.utm_medium if campaign else None,
            campaign=campaign.utm_campaign if campaign else None,
            has_influencer=code.influencer_id is not None,
            campaign_channel=campaign.channel if campaign else "Affiliate",
        )
        return self.row(
            dedupe_key=dedupe_key,
            kind="discount_code",
            occurred_at=occurred_at,
            profile_id=profile_id,
            anonymous_id=anonymous_id,
            contact=contact,
            influencer_id=code.influencer_id,
            campaign_id=code.campaign_id,
            discount_code_id=code.id,
            order_id=order_id,
        )


def _landing_contact(
    campaign_fields: Mapping[str, Any],
    page_url: str | None,
    referrer: str | None,
    user_agent: str | None,
    *,
    is_view: bool = False,
) -> tuple[ChannelInput, str] | None:
    """The contact a landing carries (UTM tags, ad click ids, external referrer), or None for
    internal navigation; the second item is the touchpoint kind (utm or referrer).

    The user agent counts only for a page or screen view without any referrer: social apps'
    in-app browsers mostly send none, so there the app is the referrer. A view with a referrer
    (even an internal one) or a track event inside an in-app browser is no new social contact.
    """
    parameters = query_parameters(page_url)
    source = _text(campaign_fields.get("source")) or _text(parameters.get("utm_source"))
    medium = _text(campaign_fields.get("medium")) or _text(parameters.get("utm_medium"))
    name = _text(campaign_fields.get("name")) or _text(parameters.get("utm_campaign"))
    click_ids = frozenset(key for key in parameters if key in CLICK_ID_PARAMETERS)
    page_host = url_host(page_url)
    referrer_host = url_host(referrer)
    external_referrer = referrer_host if referrer_host and referrer_host != page_host else None
    app_user_agent = user_agent if is_view and not referrer and in_app_browser(user_agent) else None
    contact = ChannelInput(
        source=source,
        medium=medium,
        campaign=name,
        referrer_host=external_referrer,
        user_agent=app_user_agent,
        click_ids=click_ids,
    )
    if source or medium or name or click_ids:
        return contact, "utm"
    if external_referrer or app_user_agent:
        return contact, "referrer"
    return None


def derive_touchpoints(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    events: Sequence[StoredEvent],
) -> None:
    """Derivation handler: touchpoints from one workspace's page, screen and track events."""
    del cipher  # payloads arrive opened; touchpoints hold no personal data
    repository = AttributionRepository(session, workspace_id)
    builder = _Builder(repository, channel_rules_of(session, workspace_id))
    click_refs: dict[uuid.UUID, StoredEvent] = {}
    code_refs: list[tuple[str, StoredEvent]] = []
    landings: list[StoredEvent] = []
    for event in events:
        if event.type not in ("page", "screen", "track"):
            continue
        context = event.document.get("context")
        context = context if isinstance(context, dict) else {}
        if event.type == "track" and event.event in COUPON_TOUCH_EVENTS:
            properties = event.document.get("properties")
            code = _text(properties.get("coupon")) if isinstance(properties, dict) else None
            if code:
                code_refs.append((discount_code_key(code), event))
        storeloop = context.get("storeloop")
        click_id = _uuid(storeloop.get("click_id")) if isinstance(storeloop, dict) else None
        if click_id is None:
            page = context.get("page")
            url = page.get("url") if isinstance(page, dict) else None
            click_id = _uuid(
                query_parameters(url if isinstance(url, str) else None).get(CLICK_ID_PARAMETER)
            )
        if click_id is not None:
            click_refs[click_id] = event
        landings.append(event)

    rows: list[dict[str, Any]] = []
    clicks = repository.clicks(click_refs.keys())
    links = repository.links({click.link_id for click in clicks.values()})
    clicked_events: set[uuid.UUID] = set()
    for click_id, event in click_refs.items():
        click = clicks.get(click_id)
        if click is None:
            continue  # unknown or another workspace's click: the UTM tags still count below
        clicked_events.add(event.id)
        rows.append(
            builder.click_row(click, links.get(click.link_id), event.profile_id, event.anonymous_id)
        )
    for event in landings:
        if event.id in clicked_events:
            continue
        context = _object(event.document.get("context"))
        page = _object(context.get("page"))
        campaign = _object(context.get("campaign"))
        url = _text(page.get("url"), 2000)
        search = _text(page.get("search"), 2000)
        if search and (not url or "?" not in url):
            url = (url or "") + (search if search.startswith("?") else "?" + search)
        referrer = _text(page.get("referrer"), 2000)
        user_agent = _text(context.get("userAgent"), 512)
        landing = _landing_contact(
            campaign, url, referrer, user_agent, is_view=event.type in VIEW_EVENTS
        )
        if landing is None:
            continue
        contact, kind = landing
        rows.append(
            builder.row(
                dedupe_key=f"event:{event.id}",
                kind=kind,
                occurred_at=event.timestamp,
                profile_id=event.profile_id,
                anonymous_id=event.anonymous_id,
                contact=contact,
            )
        )
    codes = repository.discount_codes({key for key, _ in code_refs})
    for key, event in code_refs:
        found = codes.get(key)
        if found is None:
            continue
        rows.append(
            builder.code_row(
                found,
                f"event:{event.id}:code",
                event.timestamp,
                event.profile_id,
                event.anonymous_id,
            )
        )
    repository.insert_touchpoints(rows)


class OrderTouchpoints:
    """Stores the touchpoints orders carry themselves: their known discount codes, the click id,
    UTM tags, landing page and referrer the shop recorded. One per workspace and batch: the
    codes, clicks and links of the whole batch are read in a few queries (``prepare``)."""

    def __init__(self, repository: AttributionRepository, rules: Sequence[ChannelRule]) -> None:
        self.repository = repository
        self.builder = _Builder(repository, rules)
        self._codes: dict[str, DiscountCode] = {}
        self._clicks: dict[uuid.UUID, Click] = {}
        self._links: dict[uuid.UUID, Link] = {}
        self._existing: dict[uuid.UUID, dict[str, uuid.UUID]] = {}

    def prepare(self, orders: Sequence[Order]) -> None:
        code_keys: set[str] = set()
        click_ids: set[uuid.UUID] = set()
        for order in orders:
            code_keys.update(_code_keys(order))
            click_id = _order_click_id(order)
            if click_id is not None:
                click_ids.add(click_id)
        self._codes = self.repository.discount_codes(code_keys)
        self._clicks = self.repository.clicks(click_ids)
        self._links = self.repository.links({click.link_id for click in self._clicks.values()})
        self._existing = self.repository.order_touchpoint_ids([order.id for order in orders])

    def store(self, orders: Sequence[Order]) -> None:
        """Replace the touchpoints of ``orders``: what an order no longer carries is removed and
        a changed field is stored anew (same id for the same dedupe key, so credits stay put)."""
        rows: list[dict[str, Any]] = []
        for order in orders:
            existing = self._existing.get(order.id, {})
            for row in self._rows_of(order):
                row["id"] = existing.get(row["dedupe_key"], row["id"])
                rows.append(row)
        self.repository.delete_order_touchpoints([order.id for order in orders])
        self.repository.insert_touchpoints(rows)

    def _rows_of(self, order: Order) -> list[dict[str, Any]]:
        builder = self.builder
        placed_at = as_utc(order.placed_at)
        marketing = order.marketing if isinstance(order.marketing, dict) else {}
        rows: list[dict[str, Any]] = []
        for key in _code_keys(order):
            code = self._codes.get(key)
            if code is not None:
                rows.append(
                    builder.code_row(
                        code,
                        f"order:{order.id}:code:{key}",
                        placed_at,
                        order.profile_id,
                        order.anonymous_id,
                        order_id=order.id,
                    )
                )
        click_id = _order_click_id(order)
        click = self._clicks.get(click_id) if click_id else None
        if click is not None:
            link = self._links.get(click.link_id)
            rows.append(
                builder.click_row(click, link, order.profile_id, order.anonymous_id, order.id)
            )
            return rows
        fields = {
            "source": marketing.get("utm_source"),
            "medium": marketing.get("utm_medium"),
            "name": marketing.get("utm_campaign"),
        }
        landing = _landing_contact(fields, *_order_landing(order), None)
        if landing is not None:
            contact, kind = landing
            rows.append(
                builder.row(
                    dedupe_key=f"order:{order.id}:landing",
                    kind="shop_landing" if kind == "utm" else "shop_referrer",
                    occurred_at=placed_at,
                    profile_id=order.profile_id,
                    anonymous_id=order.anonymous_id,
                    contact=contact,
                    order_id=order.id,
                )
            )
        return rows


def _code_keys(order: Order) -> list[str]:
    keys = {discount_code_key(code) for code in order.discount_codes or [] if isinstance(code, str)}
    return sorted(keys - {""})


def _order_landing(order: Order) -> tuple[str | None, str | None]:
    marketing = order.marketing if isinstance(order.marketing, dict) else {}
    landing_page = _text(marketing.get("landing_page"), 2000) or order.landing_page
    referrer = _text(marketing.get("referrer"), 2000) or order.referrer
    return landing_page, referrer


def _order_click_id(order: Order) -> uuid.UUID | None:
    marketing = order.marketing if isinstance(order.marketing, dict) else {}
    landing_page, _ = _order_landing(order)
    return _uuid(marketing.get("click_id")) or _uuid(
        query_parameters(landing_page).get(CLICK_ID_PARAMETER)
    )


# --- reclassification under the current rules ----------------------------------------------

# Channels a landing's unstored inputs (ad click ids, an in-app browser's user agent) can decide.
_UNSTORED_SIGNAL_CHANNELS = frozenset({PAID_SEARCH, PAID_SOCIAL, ORGANIC_SOCIAL})
# What the stored inputs of a landing give when only such an unstored input decided.
_OVERRIDABLE_DEFAULTS = frozenset({ORGANIC_SOCIAL, ORGANIC_SEARCH, REFERRAL, DIRECT})


@dataclass(frozen=True, slots=True)
class StoredContact:
    """The classification inputs a touchpoint row keeps (plus its current channel)."""

    id: uuid.UUID
    kind: str
    channel: str
    source: str | None
    medium: str | None
    campaign_name: str | None
    referrer_host: str | None
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    click_id: uuid.UUID | None


def reclassified_channel(
    stored: StoredContact,
    rules: Sequence[ChannelRule],
    campaign_channels: Mapping[uuid.UUID, str],
    click_user_agents: Mapping[uuid.UUID, str | None],
) -> str:
    """The channel of a stored touchpoint under ``rules``, from the columns it keeps.

    A landing's ad click ids and in-app browser user agent are not stored; when the stored
    channel is one they decide and nothing stored says otherwise, it is kept (see
    docs/attribution.md, "Changing channel rules")."""
    campaign_channel = campaign_channels.get(stored.campaign_id) if stored.campaign_id else None
    if stored.kind == "discount_code" and campaign_channel is None:
        campaign_channel = "Affiliate"
    contact = ChannelInput(
        source=stored.source,
        medium=stored.medium,
        campaign=stored.campaign_name,
        referrer_host=stored.referrer_host,
        user_agent=click_user_agents.get(stored.click_id) if stored.click_id else None,
        has_influencer=stored.influencer_id is not None,
        campaign_channel=campaign_channel,
    )
    for rule in rules:
        if rule.matches(contact):
            return rule.channel
    channel = classify(contact)
    if (
        stored.kind in LANDING_KINDS
        and stored.channel in _UNSTORED_SIGNAL_CHANNELS
        and channel in _OVERRIDABLE_DEFAULTS
    ):
        return stored.channel
    return channel


def reclassify_touchpoints(session: Session, workspace_id: uuid.UUID) -> int:
    """Set every touchpoint's channel to what the current rules give; returns how many
    changed."""
    repository = AttributionRepository(session, workspace_id)
    rules = channel_rules_of(session, workspace_id)
    stored = [StoredContact(*row) for row in repository.touchpoint_contacts()]
    campaign_channels = {
        campaign_id: campaign.channel
        for campaign_id, campaign in repository.campaigns(
            {row.campaign_id for row in stored if row.campaign_id is not None}
        ).items()
    }
    click_user_agents = {
        click_id: click.user_agent
        for click_id, click in repository.clicks(
            {row.click_id for row in stored if row.kind == "click" and row.click_id is not None}
        ).items()
    }
    changes = {
        row.id: channel
        for row in stored
        if (channel := reclassified_channel(row, rules, campaign_channels, click_user_agents))
        != row.channel
    }
    repository.set_touchpoint_channels(changes)
    if changes:
        # Sessions take their landing's channel: every rolled-up day is counted again.
        mark_days(session, workspace_id, rolled_up_days(session, workspace_id))
    return len(changes)
