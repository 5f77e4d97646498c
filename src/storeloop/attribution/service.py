"""Attribution: credits per order and model, the explanation of one order, and reports.

``attribute_stale_orders`` is a derivation follow-up: it re-attributes orders marked stale in
batches, one savepoint per workspace and per failing order, so a failing order or workspace is
logged (by id) and set aside instead of blocking the others. Data-driven weights are learned
per workspace over all journeys: converting (each order's considered touchpoints) and not
(customers with touchpoints and no order, over their last lookback window); see
``cached_weights`` for when they are learned again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from storeloop.analytics.marks import mark_order_days
from storeloop.attribution import models
from storeloop.attribution.channels import DIRECT
from storeloop.attribution.models import Journey, JourneySet, Touch
from storeloop.attribution.repository import AttributionRepository, stale_orders
from storeloop.attribution.schemas import (
    AttributionReport,
    CreditedOrder,
    CreditLine,
    ExplainedTouchpoint,
    ModelCredits,
    OrderAttribution,
    RecomputeResult,
    ReportRow,
)
from storeloop.attribution.touchpoints import (
    OrderTouchpoints,
    channel_rules_of,
    reclassify_touchpoints,
)
from storeloop.influencers.service import get_store_settings
from storeloop.kit.errors import NotFound, ValidationFailed
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import Campaign, Order, Touchpoint
from storeloop.workspaces.keyring import Keyring

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# Attributed revenue is money: the places every stored amount has.
REVENUE_QUANTUM = MONEY_QUANTUM
GROUPS = ("influencer", "campaign", "channel", "post")
DEFAULT_LOOKBACK_DAYS = 30
DEFAULT_HALF_LIFE_DAYS = 7.0
# The one status of an order that was cancelled, voided or failed (the orders domain maps its
# sources' statuses onto it): it earns no revenue for anyone.
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Rules:
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    code_precedence: bool = True


def workspace_rules(session: Session, workspace_id: uuid.UUID) -> Rules:
    settings = get_store_settings(session, workspace_id)
    return Rules(
        lookback_days=settings.lookback_days,
        half_life_days=settings.time_decay_half_life_days,
        code_precedence=settings.discount_code_precedence,
    )


def to_touch(row: Touchpoint) -> Touch:
    return Touch(
        id=row.id,
        key=row.dedupe_key,
        channel=row.channel,
        occurred_at=as_utc(row.occurred_at),
        kind=row.kind,
        is_bot=row.is_bot,
        order_id=row.order_id,
        discount_code_id=row.discount_code_id,
    )


def _journeys_of(
    repository: AttributionRepository, orders: Sequence[Order]
) -> dict[uuid.UUID, list[Touchpoint]]:
    """The candidate touchpoints of each order (its live profile, the profiles merged into it,
    its anonymous id), read for the whole batch in a few queries."""
    families = repository.profile_families(
        {order.profile_id for order in orders if order.profile_id is not None}
    )
    rows = repository.touchpoints_of(
        set().union(*families.values()) if families else set(),
        {order.anonymous_id for order in orders if order.anonymous_id},
    )
    by_profile: dict[uuid.UUID, list[Touchpoint]] = defaultdict(list)
    by_anonymous: dict[str, list[Touchpoint]] = defaultdict(list)
    for row in rows:
        if row.profile_id is not None:
            by_profile[row.profile_id].append(row)
        if row.anonymous_id:
            by_anonymous[row.anonymous_id].append(row)
    result: dict[uuid.UUID, list[Touchpoint]] = {}
    for order in orders:
        found: dict[uuid.UUID, Touchpoint] = {}
        for profile_id in families.get(order.profile_id, set()) if order.profile_id else set():
            for row in by_profile.get(profile_id, ()):
                found[row.id] = row
        for row in by_anonymous.get(order.anonymous_id or "", ()):
            found[row.id] = row
        result[order.id] = sorted(found.values(), key=lambda row: (row.occurred_at, row.dedupe_key))
    return result


def _journey_of(
    order: Order, rows: Sequence[Touchpoint], rules: Rules
) -> tuple[Journey, dict[uuid.UUID, Touchpoint]]:
    journey = models.select_journey(
        order.id,
        as_utc(order.placed_at),
        [to_touch(row) for row in rows],
        lookback_days=rules.lookback_days,
        code_precedence=rules.code_precedence,
    )
    return journey, {row.id: row for row in rows}


# --- data-driven weights ---------------------------------------------------------------------


def _canonical(merged: Mapping[uuid.UUID, uuid.UUID], profile_id: uuid.UUID) -> uuid.UUID:
    current = profile_id
    for _ in range(64):
        following = merged.get(current)
        if following is None:
            break
        current = following
    return current


Weights = dict[str, dict[str, float]]
# Learning reads every journey of the workspace, so while a store's data grows (touchpoints,
# orders and merges arriving with every derivation batch) the weights are not learned again for
# each batch: that cost grew with the data and made a long ingestion quadratic. Small workspaces
# (under LEARN_ALWAYS_BELOW rows) are learned again on any change. Larger ones once their rows
# changed by RELEARN_GROWTH (so the learnings of a growing store add up to a few learnings over
# all of it), or, for changes that move no count (a cancelled order, a bot flag), once the
# weights are WEIGHTS_MAX_AGE_SECONDS old and older than LEARNING_REST times the last learning
# took (so learning takes at most about a twentieth of the worker, however large the store).
# New channels (a recompute after new channel rules) or a new lookback are learned at once.
# Counting those rows is itself a scan of the workspace's indexes (22 ms per batch at 100,000
# events on SQLite): a large workspace's counts are taken again only FINGERPRINT_REST times
# what the last count took after it.
LEARN_ALWAYS_BELOW = 1_000
RELEARN_GROWTH = 0.25
WEIGHTS_MAX_AGE_SECONDS = 900.0
LEARNING_REST = 20
FINGERPRINT_REST = 20


@dataclass(frozen=True, slots=True)
class _Learned:
    fingerprint: tuple[Any, ...]
    # What must match for the weights to be reused while the data grows.
    basis: tuple[int, int]
    rows: int
    learned_at: float
    took: float
    weights: Weights

    def still_good(self, rows: int, now: float) -> bool:
        """Whether a large workspace, changed since, can keep these weights for now."""
        age = now - self.learned_at
        return (
            self.rows >= LEARN_ALWAYS_BELOW
            and abs(rows - self.rows) < self.rows * RELEARN_GROWTH
            and (age < WEIGHTS_MAX_AGE_SECONDS or age < self.took * LEARNING_REST)
        )


# workspace -> what was learned last, and (when, how long) its rows were last counted; both
# per process.
_weights_cache: dict[uuid.UUID, _Learned] = {}
_fingerprint_checks: dict[uuid.UUID, tuple[float, float]] = {}
_WEIGHTS_CACHE_SIZE = 256


def cached_weights(repository: AttributionRepository, rules: Rules) -> Weights:
    workspace_id = repository.workspace_id
    basis = (repository.channels_revision(), rules.lookback_days)
    cached = _weights_cache.get(workspace_id)
    started = time.monotonic()
    if cached is not None and cached.basis == basis and cached.rows >= LEARN_ALWAYS_BELOW:
        checked_at, took = _fingerprint_checks.get(workspace_id, (started, 0.0))
        if started - checked_at < took * FINGERPRINT_REST:
            return cached.weights
    fingerprint, rows = repository.fingerprint()
    counted = time.monotonic()
    if len(_weights_cache) >= _WEIGHTS_CACHE_SIZE:
        _weights_cache.clear()
        _fingerprint_checks.clear()
    _fingerprint_checks[workspace_id] = (counted, counted - started)
    if (
        cached is not None
        and cached.basis == basis
        and (cached.fingerprint == fingerprint or cached.still_good(rows, counted))
    ):
        return cached.weights
    weights = learn_weights(repository, rules)
    finished = time.monotonic()
    _weights_cache[workspace_id] = _Learned(
        fingerprint, basis, rows, finished, finished - counted, weights
    )
    return weights


def learn_weights(repository: AttributionRepository, rules: Rules) -> Weights:
    """Markov and Shapley channel weights over all journeys of the workspace.

    A customer is the live profile of a touchpoint (or its anonymous id when it has none).
    Converting journeys: each order's touchpoints as the order sees them (without discount-code
    precedence, which is a business rule rather than behaviour). Non-converting journeys: each
    customer none of whose touchpoints fed an order, over the lookback window before their last
    touchpoint.
    """
    merged = repository.merged_profiles()
    by_customer: dict[str, list[Touch]] = defaultdict(list)
    by_anonymous: dict[str, list[tuple[str, Touch]]] = defaultdict(list)
    for (
        touchpoint_id,
        key,
        channel,
        occurred_at,
        kind,
        profile_id,
        anonymous_id,
    ) in repository.journey_touchpoints():
        touch = Touch(touchpoint_id, key, channel, as_utc(occurred_at), kind)
        customer = (
            f"p:{_canonical(merged, profile_id)}" if profile_id is not None else f"a:{anonymous_id}"
        )
        by_customer[customer].append(touch)
        if anonymous_id:
            by_anonymous[anonymous_id].append((customer, touch))
    paths: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    used: set[str] = set()
    for order_id, profile_id, anonymous_id, placed_at in repository.journey_orders():
        seen: dict[uuid.UUID, Touch] = {}
        if profile_id is not None:
            customer = f"p:{_canonical(merged, profile_id)}"
            used.add(customer)
            for touch in by_customer.get(customer, ()):
                seen[touch.id] = touch
        if anonymous_id:
            for customer, touch in by_anonymous.get(anonymous_id, ()):
                used.add(customer)
                seen[touch.id] = touch
        journey = models.select_journey(
            order_id,
            as_utc(placed_at),
            list(seen.values()),
            lookback_days=rules.lookback_days,
            code_precedence=False,
        )
        if journey.considered:
            paths[tuple(touch.channel for touch in journey.considered)][0] += 1
    window = timedelta(days=rules.lookback_days)
    for customer in sorted(by_customer):
        if customer in used:
            continue
        touches = sorted(by_customer[customer], key=lambda touch: (touch.occurred_at, touch.key))
        last = touches[-1].occurred_at
        recent = [touch for touch in touches if touch.occurred_at >= last - window]
        marketing = [touch for touch in recent if touch.channel != DIRECT] or recent
        paths[tuple(touch.channel for touch in marketing)][1] += 1
    if not paths:
        return {model: {} for model in models.DATA_DRIVEN_MODELS}
    journeys = JourneySet.from_paths(
        [(list(path), counts[0], counts[1]) for path, counts in sorted(paths.items())]
    )
    return {model: models.channel_weights(journeys, model) for model in models.DATA_DRIVEN_MODELS}


# --- attributing orders --------------------------------------------------------------------


def credit_rows(
    order: Order,
    journey: Journey,
    rows_by_id: Mapping[uuid.UUID, Touchpoint],
    rules: Rules,
    weights: Mapping[str, Mapping[str, float]],
) -> list[dict[str, Any]]:
    """The AttributionCredit rows of one order for every model."""
    placed_at = as_utc(order.placed_at)
    if order.status == CANCELLED:
        net = Decimal(0)
    else:
        net = max(Decimal(order.total) - Decimal(order.refunded_total or 0), Decimal(0))
    result: list[dict[str, Any]] = []
    for model in models.MODELS:
        shares = models.order_credits(
            journey,
            model,
            placed_at,
            half_life_days=rules.half_life_days,
            channel_weights=weights.get(model),
        )
        revenues = models.exact_amounts(net, [share.credit for share in shares], REVENUE_QUANTUM)
        for position, (share, revenue) in enumerate(zip(shares, revenues, strict=True)):
            row = rows_by_id.get(share.touch.id) if share.touch else None
            result.append(
                {
                    "model": model,
                    "position": position,
                    "touchpoint_id": row.id if row else None,
                    "channel": share.channel,
                    "influencer_id": row.influencer_id if row else None,
                    "campaign_id": row.campaign_id if row else None,
                    "post_id": row.post_id if row else None,
                    "link_id": row.link_id if row else None,
                    "credit": share.credit,
                    "revenue": revenue,
                    "placed_at": placed_at,
                    "currency": order.currency,
                }
            )
    return result


def _store_touchpoints(
    session: Session, touchpoints: OrderTouchpoints, orders: Sequence[Order]
) -> set[uuid.UUID]:
    """Order touchpoints for every order in one savepoint; if that fails, once more per order
    in a savepoint of its own (a savepoint costs a round trip). Returns the orders that failed."""
    touchpoints.prepare(orders)
    try:
        with session.begin_nested():
            touchpoints.store(orders)
        return set()
    except Exception:
        logger.warning("order touchpoints failed for a batch of %d; one by one", len(orders))
    failed: set[uuid.UUID] = set()
    for order in orders:
        try:
            with session.begin_nested():
                touchpoints.store([order])
        except Exception:
            logger.exception("order touchpoints failed for order %s; set aside", order.id)
            failed.add(order.id)
    return failed


def _attribute_workspace(
    session: Session, workspace_id: uuid.UUID, order_ids: Sequence[uuid.UUID]
) -> int:
    """Attribute these orders of one workspace; returns how many stale flags were cleared."""
    repository = AttributionRepository(session, workspace_id)
    rules = workspace_rules(session, workspace_id)
    orders = repository.orders(order_ids)
    # Whatever the outcome, these orders' days are rolled up again (ADR 0008).
    mark_order_days(session, workspace_id, orders)
    versions = {order.id: (order.id, order.updated_at) for order in orders}
    touchpoints = OrderTouchpoints(repository, channel_rules_of(session, workspace_id))
    failed = _store_touchpoints(session, touchpoints, orders)
    weights = cached_weights(repository, rules)
    candidates = _journeys_of(repository, [order for order in orders if order.id not in failed])
    computed: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for order in orders:
        if order.id in failed:
            continue
        try:
            journey, rows_by_id = _journey_of(order, candidates[order.id], rules)
            computed[order.id] = credit_rows(order, journey, rows_by_id, rules, weights)
        except Exception:
            logger.exception("attributing order %s failed; set aside", order.id)
            failed.add(order.id)
    now = utcnow()
    cleared = 0
    try:
        with session.begin_nested():
            repository.replace_credits_of(computed)
            written = repository.mark_all_attributed(
                [versions[order_id] for order_id in computed], now
            )
        cleared += written
    except Exception:
        logger.warning("writing credits of %d orders failed; one by one", len(computed))
        for order_id, rows in computed.items():
            try:
                with session.begin_nested():
                    repository.replace_credits_of({order_id: rows})
                    written = repository.mark_all_attributed([versions[order_id]], now)
                cleared += written
            except Exception:
                logger.exception("writing credits of order %s failed; set aside", order_id)
                failed.add(order_id)
    # Never retried in a loop: a failed order keeps no credits (its old ones would be wrong)
    # until it is marked stale again.
    repository.delete_credits_of(sorted(failed))
    cleared += repository.mark_all_attributed(
        [versions[order_id] for order_id in sorted(failed)], None
    )
    return cleared


def _set_aside(session: Session, workspace_id: uuid.UUID, order_ids: Sequence[uuid.UUID]) -> int:
    """After a whole workspace failed: its orders lose their credits and their stale flag, so
    they cannot hold up the other workspaces' orders forever."""
    try:
        with session.begin_nested():
            repository = AttributionRepository(session, workspace_id)
            orders = repository.orders(order_ids)
            mark_order_days(session, workspace_id, orders)
            repository.delete_credits_of(order_ids)
            cleared = repository.mark_all_attributed(
                [(order.id, order.updated_at) for order in orders], None
            )
        return cleared
    except Exception:
        logger.exception("setting aside the orders of workspace %s failed", workspace_id)
        return 0


def attribute_stale_orders(
    session: Session, keyring: Keyring, workspace_id: uuid.UUID | None = None
) -> int:
    """Derivation follow-up: attribute up to BATCH_SIZE stale orders (of every workspace, or of
    ``workspace_id``); returns how many stale flags it cleared (attributed or set aside after
    failing). An order that changed meanwhile stays stale and is not counted, so the runner's
    drain() stops once a round clears nothing."""
    del keyring  # touchpoints and credits hold no sealed data
    pending = stale_orders(session, BATCH_SIZE, workspace_id)
    by_workspace: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for order_workspace_id, order_id in pending:
        by_workspace[order_workspace_id].append(order_id)
    cleared = 0
    for order_workspace_id, order_ids in by_workspace.items():
        try:
            with session.begin_nested():
                done = _attribute_workspace(session, order_workspace_id, order_ids)
        except Exception:
            logger.exception(
                "attributing %d orders of workspace %s failed; set aside",
                len(order_ids),
                order_workspace_id,
            )
            done = _set_aside(session, order_workspace_id, order_ids)
        cleared += done
    return cleared


def mark_all_stale(session: Session, workspace_id: uuid.UUID) -> int:
    return AttributionRepository(session, workspace_id).mark_all_stale()


def recompute(session: Session, workspace_id: uuid.UUID) -> RecomputeResult:
    """After a settings change: touchpoint channels follow the current channel rules, then every
    order is marked for re-attribution."""
    reclassified = reclassify_touchpoints(session, workspace_id)
    return RecomputeResult(
        orders_marked=mark_all_stale(session, workspace_id),
        touchpoints_reclassified=reclassified,
    )


def mark_profile_orders_stale(
    session: Session, workspace_id: uuid.UUID, profile_ids: Collection[uuid.UUID]
) -> int:
    """After a profile merge: mark for re-attribution the orders of these profiles and of every
    profile in their families (their journeys now gather each other's touchpoints). Returns how
    many orders were marked."""
    if not profile_ids:
        return 0
    repository = AttributionRepository(session, workspace_id)
    families = repository.profile_families(set(profile_ids))
    return repository.mark_profile_orders_stale(sorted(set().union(*families.values())))


# --- explanation -----------------------------------------------------------------------------


def _explained(row: Touchpoint, reason: str | None) -> ExplainedTouchpoint:
    return ExplainedTouchpoint(
        id=row.id,
        occurred_at=as_utc(row.occurred_at),
        kind=row.kind,
        channel=row.channel,
        source=row.source,
        medium=row.medium,
        campaign_name=row.campaign_name,
        referrer_host=row.referrer_host,
        influencer_id=row.influencer_id,
        campaign_id=row.campaign_id,
        link_id=row.link_id,
        post_id=row.post_id,
        discount_code_id=row.discount_code_id,
        is_bot=row.is_bot,
        excluded_reason=reason,
    )


def explain_order(
    session: Session, workspace_id: uuid.UUID, order_id: uuid.UUID
) -> OrderAttribution:
    repository = AttributionRepository(session, workspace_id)
    order = repository.order(order_id)
    if order is None:
        raise NotFound("no such order in this workspace", field="order_id")
    rules = workspace_rules(session, workspace_id)
    journey, rows_by_id = _journey_of(order, _journeys_of(repository, [order])[order.id], rules)
    credits: dict[str, list[CreditLine]] = defaultdict(list)
    for credit in repository.credits(order.id):
        credits[credit.model].append(
            CreditLine(
                touchpoint_id=credit.touchpoint_id,
                channel=credit.channel,
                influencer_id=credit.influencer_id,
                campaign_id=credit.campaign_id,
                post_id=credit.post_id,
                link_id=credit.link_id,
                credit=credit.credit,
                revenue=credit.revenue,
            )
        )
    return OrderAttribution(
        order_id=order.id,
        placed_at=as_utc(order.placed_at),
        currency=order.currency,
        total=order.total,
        refunded_total=order.refunded_total,
        attribution_stale=order.attribution_stale,
        attributed_at=as_utc(order.attributed_at) if order.attributed_at else None,
        lookback_days=rules.lookback_days,
        time_decay_half_life_days=rules.half_life_days,
        discount_code_precedence=rules.code_precedence,
        rule=journey.rule,
        considered=[_explained(rows_by_id[touch.id], None) for touch in journey.considered],
        excluded=[_explained(rows_by_id[touch.id], reason) for touch, reason in journey.excluded],
        models=[
            ModelCredits(model=model, credits=credits.get(model, [])) for model in models.MODELS
        ],
    )


# --- reports -------------------------------------------------------------------------------


def _campaign_cost(campaign: Campaign) -> Decimal:
    return (
        Decimal(campaign.fee) + Decimal(campaign.seeding_cost) + Decimal(campaign.paid_boost_cost)
    )


def _overlaps(campaign: Campaign, date_from: datetime | None, date_to: datetime | None) -> bool:
    starts = as_utc(campaign.starts_at) if campaign.starts_at else None
    ends = as_utc(campaign.ends_at) if campaign.ends_at else None
    if date_to is not None and starts is not None and starts >= date_to:
        return False
    return not (date_from is not None and ends is not None and ends < date_from)


def _costs(
    repository: AttributionRepository,
    group_by: str,
    date_from: datetime | None,
    date_to: datetime | None,
    filters: CostFilters | None = None,
) -> tuple[dict[tuple[Any, str], Decimal], dict[Any, str]]:
    """Cost per (group key, currency) of the campaigns running in the range, and group names.

    A campaign's cost is split evenly among its influencers (grouped by influencer) or posts
    (grouped by post). With filters, only the campaigns they select count, and only the share of
    the influencer or post filtered on."""
    filters = filters or CostFilters()
    members: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for campaign_id, influencer_id in repository.campaign_influencers():
        members[campaign_id].append(influencer_id)
    posts = repository.posts()
    posts_of: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for post in posts:
        if post.campaign_id is not None:
            posts_of[post.campaign_id].append(post.id)
    campaigns = [
        campaign
        for campaign in repository.campaigns().values()
        if _overlaps(campaign, date_from, date_to)
        and (filters.campaign_id is None or campaign.id == filters.campaign_id)
        and (filters.channel is None or campaign.channel == filters.channel)
        and (filters.influencer_id is None or filters.influencer_id in members[campaign.id])
        and (filters.post_id is None or filters.post_id in posts_of[campaign.id])
    ]

    def shares(campaign: Campaign, group: str) -> list[tuple[Any, Decimal]]:
        """(group key, share of the campaign's cost) under the filters."""
        cost = _campaign_cost(campaign)
        if filters.influencer_id is not None:
            cost /= len(members[campaign.id])
        if filters.post_id is not None:
            cost /= len(posts_of[campaign.id])
        if group == "campaign":
            return [(campaign.id, cost)]
        if group == "channel":
            return [(campaign.channel, cost)]
        if group == "influencer":
            if filters.influencer_id is not None:
                return [(filters.influencer_id, cost)]
            everyone = members.get(campaign.id, [])
            return [(influencer_id, cost / len(everyone)) for influencer_id in everyone]
        if filters.post_id is not None:
            return [(filters.post_id, cost)]
        campaign_posts = posts_of.get(campaign.id, [])
        return [(post_id, cost / len(campaign_posts)) for post_id in campaign_posts]

    costs: dict[tuple[Any, str], Decimal] = defaultdict(Decimal)
    names: dict[Any, str] = {}
    if group_by == "campaign":
        for campaign in repository.campaigns().values():
            names[campaign.id] = campaign.name
    elif group_by == "channel":
        for campaign in campaigns:
            names[campaign.channel] = campaign.channel
    elif group_by == "influencer":
        names.update(repository.influencer_names())
    else:
        for post in posts:
            names[post.id] = post.url
    for campaign in campaigns:
        for key, share in shares(campaign, group_by):
            costs[(key, campaign.currency)] += share
    return costs, names


@dataclass(frozen=True)
class CostFilters:
    """Which campaigns' costs count: those of a campaign, a channel, an influencer, a post."""

    campaign_id: uuid.UUID | None = None
    channel: str | None = None
    influencer_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None


def group_costs(
    session: Session,
    workspace_id: uuid.UUID,
    group_by: str,
    date_from: datetime | None,
    date_to: datetime | None,
    filters: CostFilters | None = None,
) -> tuple[dict[tuple[Any, str], Decimal], dict[Any, str]]:
    """Cost per (group key, currency) of the campaigns running in the range, and group names
    (influencer, campaign, channel or post)."""
    return _costs(
        AttributionRepository(session, workspace_id), group_by, date_from, date_to, filters
    )


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(REVENUE_QUANTUM)


def report(
    session: Session,
    workspace_id: uuid.UUID,
    group_by: str,
    model: str,
    date_from: datetime | None,
    date_to: datetime | None,
) -> AttributionReport:
    if group_by not in GROUPS:
        raise ValidationFailed(f"group_by is one of {', '.join(GROUPS)}", field="group_by")
    if model not in models.MODELS:
        raise ValidationFailed(f"model is one of {', '.join(models.MODELS)}", field="model")
    if date_from is not None and date_to is not None and date_from >= date_to:
        raise ValidationFailed("from must be before to", field="from")
    repository = AttributionRepository(session, workspace_id)
    totals = repository.credit_totals(group_by, model, date_from, date_to)
    costs, names = _costs(repository, group_by, date_from, date_to)
    keys = {(key, currency) for key, currency, _, _ in totals} | set(costs)
    by_key = {(key, currency): (orders, revenue) for key, currency, orders, revenue in totals}
    rows: list[ReportRow] = []
    for key, currency in sorted(keys, key=lambda item: (str(item[0]), item[1])):
        orders, revenue = by_key.get((key, currency), (Decimal(0), Decimal(0)))
        cost = costs.get((key, currency), Decimal(0)).quantize(REVENUE_QUANTUM)
        orders = orders.quantize(models.CREDIT_QUANTUM)
        revenue = revenue.quantize(REVENUE_QUANTUM)
        rows.append(
            ReportRow(
                key=None if key is None else str(key),
                name=names.get(key, str(key)) if key is not None else None,
                currency=currency,
                orders=orders,
                attributed_revenue=revenue,
                cost=cost,
                roi=_ratio(revenue - cost, cost),
                roas=_ratio(revenue, cost),
                cost_per_order=_ratio(cost, orders) if cost else None,
            )
        )
    return AttributionReport(
        group_by=group_by, model=model, date_from=date_from, date_to=date_to, rows=rows
    )


def credited_orders(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    model: str,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    limit: int = 50,
) -> list[CreditedOrder]:
    """The orders an influencer and/or campaign earned credit for under ``model`` (placed in
    [date_from, date_to)), most recent first, with the summed credit and revenue of each."""
    if model not in models.MODELS:
        raise ValidationFailed(f"model is one of {', '.join(models.MODELS)}", field="model")
    if influencer_id is None and campaign_id is None:
        raise ValidationFailed("name an influencer or a campaign", field="influencer_id")
    if not 1 <= limit <= 500:
        raise ValidationFailed("limit must be between 1 and 500", field="limit")
    rows = AttributionRepository(session, workspace_id).credited_orders(
        model=model,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
    )
    return [
        CreditedOrder(
            order_id=order_id,
            placed_at=as_utc(placed_at),
            currency=currency,
            credit=credit.quantize(models.CREDIT_QUANTUM),
            revenue=revenue.quantize(REVENUE_QUANTUM),
        )
        for order_id, placed_at, currency, credit, revenue in rows
    ]


REPORT_COLUMNS = (
    "key",
    "name",
    "currency",
    "orders",
    "attributed_revenue",
    "cost",
    "roi",
    "roas",
    "cost_per_order",
)


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A report value as a CSV cell; text a spreadsheet would run as a formula is quoted with a
    leading apostrophe. Numbers (ROI can be negative) are our own output and stay numbers."""
    if value is None:
        return ""
    if isinstance(value, Decimal | int | float):
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def report_csv_rows(result: AttributionReport) -> Sequence[Sequence[str]]:
    lines: list[list[str]] = [list(REPORT_COLUMNS)]
    for row in result.rows:
        values = row.model_dump()
        lines.append([csv_cell(values[column]) for column in REPORT_COLUMNS])
    return lines
