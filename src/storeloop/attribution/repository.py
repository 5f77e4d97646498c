"""Every query of attribution, scoped to one workspace here and nowhere else."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import String, Table, bindparam, delete, func, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storeloop.analytics.repository import LANDING_SLACK, mark_days
from storeloop.kit.timeutil import as_utc
from storeloop.models import (
    AttributionCredit,
    Campaign,
    CampaignInfluencer,
    Click,
    DiscountCode,
    Influencer,
    Link,
    Order,
    Post,
    Profile,
    Touchpoint,
    Workspace,
)

_T = TypeVar("_T")
_TOUCHPOINTS = cast(Table, Touchpoint.__table__)
_CREDITS = cast(Table, AttributionCredit.__table__)
_ORDERS = cast(Table, Order.__table__)
_CHUNK = 500
# How far a merged_into chain is followed (the identity service keeps chains short).
_MAX_REDIRECTS = 64


def _chunks(items: Iterable[_T], size: int = _CHUNK) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stale_orders(
    session: Session, limit: int, workspace_id: uuid.UUID | None = None
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(workspace_id, order_id) of orders waiting for attribution, across workspaces unless
    ``workspace_id`` is given: the follow-up job works for every workspace and scopes each one
    through AttributionRepository.

    On PostgreSQL the rows are locked until the job's commit and rows another worker holds are
    skipped, so concurrent workers never attribute the same orders twice."""
    query = select(Order.workspace_id, Order.id).where(Order.attribution_stale.is_(True))
    if workspace_id is not None:
        query = query.where(Order.workspace_id == workspace_id)
    query = query.order_by(Order.workspace_id, Order.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Order)
    return [(row[0], row[1]) for row in session.execute(query)]


class JourneyData(NamedTuple):
    """What the data-driven models learn from, in brief: counts and latest ids and times of the
    workspace's touchpoints, orders and merged profiles; ``rows`` is the three counts' sum."""

    fingerprint: tuple[Any, ...]
    rows: int


class AttributionRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # --- settings, marketing objects -------------------------------------------------------

    def clicks(self, click_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Click]:
        found: dict[uuid.UUID, Click] = {}
        for chunk in _chunks(click_ids):
            for click in self.session.scalars(
                select(Click).where(Click.workspace_id == self.workspace_id, Click.id.in_(chunk))
            ):
                found[click.id] = click
        return found

    def links(self, link_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Link]:
        found: dict[uuid.UUID, Link] = {}
        for chunk in _chunks(link_ids):
            for link in self.session.scalars(
                select(Link).where(Link.workspace_id == self.workspace_id, Link.id.in_(chunk))
            ):
                found[link.id] = link
        return found

    def campaigns(
        self, campaign_ids: Collection[uuid.UUID] | None = None
    ) -> dict[uuid.UUID, Campaign]:
        query = select(Campaign).where(Campaign.workspace_id == self.workspace_id)
        if campaign_ids is not None:
            if not campaign_ids:
                return {}
            query = query.where(Campaign.id.in_(list(campaign_ids)))
        return {campaign.id: campaign for campaign in self.session.scalars(query)}

    def discount_codes(self, code_keys: Collection[str]) -> dict[str, DiscountCode]:
        if not code_keys:
            return {}
        return {
            code.code_key: code
            for code in self.session.scalars(
                select(DiscountCode).where(
                    DiscountCode.workspace_id == self.workspace_id,
                    DiscountCode.code_key.in_(list(code_keys)),
                )
            )
        }

    def campaign_influencers(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = self.session.execute(
            select(CampaignInfluencer.campaign_id, CampaignInfluencer.influencer_id).where(
                CampaignInfluencer.workspace_id == self.workspace_id
            )
        )
        return [(row[0], row[1]) for row in rows]

    def influencer_names(self) -> dict[uuid.UUID, str]:
        rows = self.session.execute(
            select(Influencer.id, Influencer.name).where(
                Influencer.workspace_id == self.workspace_id
            )
        )
        return {row[0]: row[1] for row in rows}

    def posts(self) -> list[Post]:
        return list(
            self.session.scalars(select(Post).where(Post.workspace_id == self.workspace_id))
        )

    # --- touchpoints --------------------------------------------------------------------------

    def insert_touchpoints(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert, skipping dedupe keys already stored (derivation may run twice)."""
        if not rows:
            return
        table = _TOUCHPOINTS
        values = [{**row, "workspace_id": self.workspace_id} for row in rows]
        statement: sqlite.Insert | postgresql.Insert
        if self.session.get_bind().dialect.name == "postgresql":
            statement = postgresql.insert(table)
        else:
            statement = sqlite.insert(table)
        # One cached statement run for every row (executemany), not a multi-VALUES statement
        # compiled anew for every chunk: compiling was a fifth of the worker's time.
        self.session.execute(
            statement.on_conflict_do_nothing(index_elements=["workspace_id", "dedupe_key"]),
            values,
        )
        # A landing decides its sessions' channel: their days are rolled up again (ADR 0008),
        # the next day too when a click just before midnight lands a session just after it.
        days: set[date] = set()
        for row in rows:
            moment = as_utc(row["occurred_at"])
            days.update({moment.date(), (moment + LANDING_SLACK).date()})
        mark_days(self.session, self.workspace_id, days)

    def touchpoints_of(
        self, profile_ids: Collection[uuid.UUID], anonymous_ids: Collection[str]
    ) -> list[Touchpoint]:
        """The touchpoints of any of the profiles or anonymous ids (a batch of orders' worth)."""
        found: dict[uuid.UUID, Touchpoint] = {}
        for chunk in _chunks(profile_ids):
            for touchpoint in self.session.scalars(
                select(Touchpoint).where(
                    Touchpoint.workspace_id == self.workspace_id,
                    Touchpoint.profile_id.in_(chunk),
                )
            ):
                found[touchpoint.id] = touchpoint
        for anonymous_chunk in _chunks(sorted(set(anonymous_ids) - {""})):
            for touchpoint in self.session.scalars(
                select(Touchpoint).where(
                    Touchpoint.workspace_id == self.workspace_id,
                    Touchpoint.anonymous_id.in_(anonymous_chunk),
                )
            ):
                found[touchpoint.id] = touchpoint
        return sorted(found.values(), key=lambda row: (row.occurred_at, row.dedupe_key))

    def order_touchpoint_ids(
        self, order_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, uuid.UUID]]:
        """order id -> {dedupe key: touchpoint id} of the touchpoints taken from each order."""
        found: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
        columns = _TOUCHPOINTS.c
        for chunk in _chunks(order_ids):
            for order_id, dedupe_key, touchpoint_id in self.session.execute(
                select(columns.order_id, columns.dedupe_key, columns.id).where(
                    columns.workspace_id == self.workspace_id, columns.order_id.in_(chunk)
                )
            ):
                found.setdefault(order_id, {})[dedupe_key] = touchpoint_id
        return found

    def delete_order_touchpoints(self, order_ids: Collection[uuid.UUID]) -> None:
        columns = _TOUCHPOINTS.c
        for chunk in _chunks(order_ids):
            self.session.execute(
                delete(_TOUCHPOINTS).where(
                    columns.workspace_id == self.workspace_id, columns.order_id.in_(chunk)
                )
            )

    def touchpoint_contacts(
        self,
    ) -> list[
        tuple[
            uuid.UUID,
            str,
            str,
            str | None,
            str | None,
            str | None,
            str | None,
            uuid.UUID | None,
            uuid.UUID | None,
            uuid.UUID | None,
        ]
    ]:
        """(id, kind, channel, source, medium, campaign_name, referrer_host, influencer_id,
        campaign_id, click_id) of every touchpoint: what reclassification reads."""
        columns = _TOUCHPOINTS.c
        rows = self.session.execute(
            select(
                columns.id,
                columns.kind,
                columns.channel,
                columns.source,
                columns.medium,
                columns.campaign_name,
                columns.referrer_host,
                columns.influencer_id,
                columns.campaign_id,
                columns.click_id,
            )
            .where(columns.workspace_id == self.workspace_id)
            .order_by(columns.id)
        )
        return [
            (row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9])
            for row in rows
        ]

    def set_touchpoint_channels(self, channels: Mapping[uuid.UUID, str]) -> None:
        """Give these touchpoints other channels, and bump the workspace's channels revision."""
        if not channels:
            return
        columns = _TOUCHPOINTS.c
        self.session.execute(
            update(_TOUCHPOINTS)
            .where(columns.workspace_id == self.workspace_id, columns.id == bindparam("b_id"))
            .values(channel=bindparam("b_channel")),
            [{"b_id": key, "b_channel": value} for key, value in sorted(channels.items())],
        )
        self.session.execute(
            update(Workspace)
            .where(Workspace.id == self.workspace_id)
            .values(channels_revision=Workspace.channels_revision + 1)
            .execution_options(synchronize_session=False)
        )

    def journey_touchpoints(
        self,
    ) -> list[tuple[uuid.UUID, str, str, datetime, str, uuid.UUID | None, str | None]]:
        """The columns the data-driven models need of every human touchpoint (Core rows: this
        reads the whole workspace, ORM objects would cost several times more)."""
        columns = _TOUCHPOINTS.c
        rows = self.session.execute(
            select(
                columns.id,
                columns.dedupe_key,
                columns.channel,
                columns.occurred_at,
                columns.kind,
                columns.profile_id,
                columns.anonymous_id,
            ).where(columns.workspace_id == self.workspace_id, columns.is_bot.is_(False))
        )
        return [(row[0], row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows]

    def fingerprint(self) -> JourneyData:
        """Changes when touchpoints, orders or profile merges are added: learned weights are
        reused while it stays the same (ids are UUIDv7, so a new row moves the maximum)."""
        touchpoints = self.session.execute(
            select(func.count(), func.max(cast_(Touchpoint.id, String))).where(
                Touchpoint.workspace_id == self.workspace_id
            )
        ).one()
        orders = self.session.execute(
            select(
                func.count(), func.max(cast_(Order.id, String)), func.max(Order.updated_at)
            ).where(Order.workspace_id == self.workspace_id)
        ).one()
        merges = self.session.execute(
            select(func.count(), func.max(Profile.updated_at)).where(
                Profile.workspace_id == self.workspace_id, Profile.merged_into.is_not(None)
            )
        ).one()
        return JourneyData((*touchpoints, *orders, *merges), touchpoints[0] + orders[0] + merges[0])

    def channels_revision(self) -> int:
        """How many recomputes changed a touchpoint's channel."""
        revision = self.session.scalar(
            select(Workspace.channels_revision).where(Workspace.id == self.workspace_id)
        )
        return int(revision or 0)

    # --- profiles -----------------------------------------------------------------------------

    def merged_profiles(self) -> dict[uuid.UUID, uuid.UUID]:
        """merged id -> the id it was folded into, for the whole workspace."""
        rows = self.session.execute(
            select(Profile.id, Profile.merged_into).where(
                Profile.workspace_id == self.workspace_id, Profile.merged_into.is_not(None)
            )
        )
        return {row[0]: row[1] for row in rows if row[1] is not None}

    def profile_family(self, profile_id: uuid.UUID) -> set[uuid.UUID]:
        """The live profile behind ``profile_id`` and every profile folded into it."""
        return self.profile_families([profile_id])[profile_id]

    def profile_families(
        self, profile_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, set[uuid.UUID]]:
        """``profile_family`` of many profiles: one query per level of merging, not per
        profile."""
        parent: dict[uuid.UUID, uuid.UUID | None] = {}
        frontier = set(profile_ids)
        for _ in range(_MAX_REDIRECTS):
            if not frontier:
                break
            following: set[uuid.UUID] = set()
            for chunk in _chunks(sorted(frontier)):
                for profile_id, into in self.session.execute(
                    select(Profile.id, Profile.merged_into).where(
                        Profile.workspace_id == self.workspace_id, Profile.id.in_(chunk)
                    )
                ):
                    parent[profile_id] = into
                    if into is not None:
                        following.add(into)
            for profile_id in frontier:
                parent.setdefault(profile_id, None)
            frontier = following - parent.keys()

        def live(profile_id: uuid.UUID) -> uuid.UUID:
            current = profile_id
            for _ in range(_MAX_REDIRECTS):
                into = parent.get(current)
                if into is None:
                    break
                current = into
            return current

        roots = {profile_id: live(profile_id) for profile_id in profile_ids}
        children: dict[uuid.UUID, set[uuid.UUID]] = {}
        seen = set(roots.values())
        frontier = set(seen)
        for _ in range(_MAX_REDIRECTS):
            if not frontier:
                break
            found: set[uuid.UUID] = set()
            for chunk in _chunks(sorted(frontier)):
                for profile_id, into in self.session.execute(
                    select(Profile.id, Profile.merged_into).where(
                        Profile.workspace_id == self.workspace_id,
                        Profile.merged_into.in_(chunk),
                    )
                ):
                    if into is not None:
                        children.setdefault(into, set()).add(profile_id)
                        found.add(profile_id)
            frontier = found - seen
            seen |= found

        def descendants(root: uuid.UUID) -> set[uuid.UUID]:
            family = {root}
            pending = [root]
            while pending:
                for child in children.get(pending.pop(), ()):
                    if child not in family:
                        family.add(child)
                        pending.append(child)
            return family

        by_root = {root: descendants(root) for root in set(roots.values())}
        return {profile_id: by_root[root] | {profile_id} for profile_id, root in roots.items()}

    # --- orders and credits -------------------------------------------------------------------

    def order(self, order_id: uuid.UUID) -> Order | None:
        return self.session.scalar(
            select(Order).where(Order.workspace_id == self.workspace_id, Order.id == order_id)
        )

    def orders(self, order_ids: Collection[uuid.UUID]) -> list[Order]:
        found: list[Order] = []
        for chunk in _chunks(order_ids):
            found.extend(
                self.session.scalars(
                    select(Order).where(
                        Order.workspace_id == self.workspace_id, Order.id.in_(chunk)
                    )
                )
            )
        return sorted(found, key=lambda order: order.id)

    def journey_orders(self) -> list[tuple[uuid.UUID, uuid.UUID | None, str | None, datetime]]:
        """(id, profile_id, anonymous_id, placed_at) of every order, for the data-driven models."""
        rows = self.session.execute(
            select(Order.id, Order.profile_id, Order.anonymous_id, Order.placed_at)
            .where(Order.workspace_id == self.workspace_id)
            .order_by(Order.id)
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def replace_credits_of(
        self, rows_by_order: Mapping[uuid.UUID, Sequence[dict[str, Any]]]
    ) -> None:
        """Replace the credits of many orders: one delete and one insert per chunk."""
        for chunk in _chunks(sorted(rows_by_order), 200):
            self.session.execute(
                delete(AttributionCredit).where(
                    AttributionCredit.workspace_id == self.workspace_id,
                    AttributionCredit.order_id.in_(chunk),
                )
            )
            rows = [
                {**row, "workspace_id": self.workspace_id, "order_id": order_id}
                for order_id in chunk
                for row in rows_by_order[order_id]
            ]
            if rows:
                self.session.execute(_CREDITS.insert(), rows)

    def delete_credits_of(self, order_ids: Collection[uuid.UUID]) -> None:
        for chunk in _chunks(order_ids):
            self.session.execute(
                delete(AttributionCredit).where(
                    AttributionCredit.workspace_id == self.workspace_id,
                    AttributionCredit.order_id.in_(chunk),
                )
            )

    def mark_all_attributed(
        self, versions: Sequence[tuple[uuid.UUID, datetime]], attributed_at: datetime | None
    ) -> int:
        """Clear the stale flag of orders still at the ``updated_at`` they were read with: an
        order changed meanwhile (a refund arriving) stays stale and is attributed again.
        Returns how many flags were cleared."""
        if not versions:
            return 0
        columns = _ORDERS.c
        # Both drivers sum an executemany's rowcount (supports_sane_multi_rowcount).
        result = self.session.execute(
            update(_ORDERS)
            .where(
                columns.workspace_id == self.workspace_id,
                columns.id == bindparam("b_id"),
                columns.updated_at == bindparam("b_updated_at"),
                columns.attribution_stale.is_(True),
            )
            .values(attribution_stale=False, attributed_at=attributed_at),
            [{"b_id": order_id, "b_updated_at": updated_at} for order_id, updated_at in versions],
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def mark_all_stale(self) -> int:
        result = self.session.execute(
            update(Order)
            .where(Order.workspace_id == self.workspace_id)
            .values(attribution_stale=True)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def mark_profile_orders_stale(self, profile_ids: Collection[uuid.UUID]) -> int:
        """Mark the orders of these profiles for re-attribution; returns how many."""
        marked = 0
        for chunk in _chunks(profile_ids):
            result = self.session.execute(
                update(Order)
                .where(Order.workspace_id == self.workspace_id, Order.profile_id.in_(chunk))
                .values(attribution_stale=True)
                .execution_options(synchronize_session=False)
            )
            marked += int(getattr(result, "rowcount", 0) or 0)
        return marked

    def credits(self, order_id: uuid.UUID) -> list[AttributionCredit]:
        return list(
            self.session.scalars(
                select(AttributionCredit)
                .where(
                    AttributionCredit.workspace_id == self.workspace_id,
                    AttributionCredit.order_id == order_id,
                )
                .order_by(AttributionCredit.model, AttributionCredit.position)
            )
        )

    def credit_totals(
        self, group_by: str, model: str, date_from: datetime | None, date_to: datetime | None
    ) -> list[tuple[Any, str, Decimal, Decimal]]:
        """(group key, currency, sum of credit, sum of revenue) per group."""
        column = {
            "influencer": AttributionCredit.influencer_id,
            "campaign": AttributionCredit.campaign_id,
            "channel": AttributionCredit.channel,
            "post": AttributionCredit.post_id,
        }[group_by]
        query = (
            select(
                column,
                AttributionCredit.currency,
                func.sum(AttributionCredit.credit),
                func.sum(AttributionCredit.revenue),
            )
            .where(
                AttributionCredit.workspace_id == self.workspace_id,
                AttributionCredit.model == model,
            )
            .group_by(column, AttributionCredit.currency)
        )
        if date_from is not None:
            query = query.where(AttributionCredit.placed_at >= date_from)
        if date_to is not None:
            query = query.where(AttributionCredit.placed_at < date_to)
        return [
            (row[0], row[1], Decimal(str(row[2] or 0)), Decimal(str(row[3] or 0)))
            for row in self.session.execute(query)
        ]

    def credited_orders(
        self,
        *,
        model: str,
        influencer_id: uuid.UUID | None,
        campaign_id: uuid.UUID | None,
        date_from: datetime | None,
        date_to: datetime | None,
        limit: int,
    ) -> list[tuple[uuid.UUID, datetime, str, Decimal, Decimal]]:
        """(order id, placed at, currency, credit, revenue) of the orders credited, in part, to
        this influencer and/or campaign under ``model``, most recently placed first."""
        query = (
            select(
                AttributionCredit.order_id,
                AttributionCredit.placed_at,
                AttributionCredit.currency,
                func.sum(AttributionCredit.credit),
                func.sum(AttributionCredit.revenue),
            )
            .where(
                AttributionCredit.workspace_id == self.workspace_id,
                AttributionCredit.model == model,
            )
            .group_by(
                AttributionCredit.order_id, AttributionCredit.placed_at, AttributionCredit.currency
            )
            .order_by(AttributionCredit.placed_at.desc(), AttributionCredit.order_id.desc())
            .limit(limit)
        )
        if influencer_id is not None:
            query = query.where(AttributionCredit.influencer_id == influencer_id)
        if campaign_id is not None:
            query = query.where(AttributionCredit.campaign_id == campaign_id)
        if date_from is not None:
            query = query.where(AttributionCredit.placed_at >= date_from)
        if date_to is not None:
            query = query.where(AttributionCredit.placed_at < date_to)
        return [
            (row[0], row[1], row[2], Decimal(str(row[3] or 0)), Decimal(str(row[4] or 0)))
            for row in self.session.execute(query)
        ]
