"""Every query of the influencer domain (influencers, campaigns, links, discount codes, posts and
store settings), scoped to one workspace in ``_scoped``.

The one deliberate exception is ``link_code_exists``: tracked-link codes are unique on the whole
instance (``/r/{code}`` carries no workspace), so availability is checked across workspaces.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storeloop.kit.pagination import older_than
from storeloop.models import (
    Campaign,
    CampaignInfluencer,
    DiscountCode,
    Influencer,
    Link,
    Post,
    StoreSettings,
)

_Row = TypeVar("_Row", Influencer, Campaign, Link, DiscountCode, Post)
_AnyModel = type[Influencer] | type[Campaign] | type[Link] | type[DiscountCode] | type[Post]
_CHUNK = 400


class MarketingRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def _scoped(self, model: type[_Row]) -> Select[_Row]:
        return select(model).where(model.workspace_id == self.workspace_id)

    def add(self, row: object) -> None:
        self.session.add(row)
        self.session.flush()

    def get(self, model: type[_Row], row_id: uuid.UUID) -> _Row | None:
        return self.session.scalars(self._scoped(model).where(model.id == row_id)).first()

    def existing_ids(self, model: _AnyModel, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        found: set[uuid.UUID] = set()
        wanted = list(ids)
        for start in range(0, len(wanted), _CHUNK):
            found.update(
                self.session.scalars(
                    select(model.id).where(
                        model.workspace_id == self.workspace_id,
                        model.id.in_(wanted[start : start + _CHUNK]),
                    )
                )
            )
        return found

    def page(
        self,
        model: type[_Row],
        *,
        filters: Sequence[Any] = (),
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> Sequence[_Row]:
        """Newest first by (created_at, id); ``after`` is the last row of the previous page."""
        query = self._scoped(model).where(*filters)
        if after is not None:
            query = query.where(older_than(model.created_at, model.id, after))
        return self.session.scalars(
            query.order_by(model.created_at.desc(), model.id.desc()).limit(limit)
        ).all()

    def names(
        self,
        model: type[Influencer] | type[Campaign],
        ids: Collection[uuid.UUID] | None,
        limit: int,
    ) -> dict[uuid.UUID, str]:
        """id -> name of these rows (all of them, by name, up to ``limit``, when ids is None)."""
        base = select(model.id, model.name).where(model.workspace_id == self.workspace_id)
        if ids is None:
            rows = self.session.execute(base.order_by(model.name, model.id).limit(limit))
            return {row_id: name for row_id, name in rows}  # noqa: C416
        found: dict[uuid.UUID, str] = {}
        wanted = sorted(ids)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = self.session.execute(base.where(model.id.in_(chunk)))
            found.update({row_id: name for row_id, name in rows})  # noqa: C416
        return found

    # -- influencers -----------------------------------------------------------------------

    def influencers_named(self, name: str) -> Sequence[Influencer]:
        return self.session.scalars(
            self._scoped(Influencer)
            .where(func.lower(Influencer.name) == name.lower())
            .order_by(Influencer.id)
            .limit(2)
        ).all()

    # -- campaigns -------------------------------------------------------------------------

    def campaigns_named(self, name: str) -> Sequence[Campaign]:
        return self.session.scalars(
            self._scoped(Campaign)
            .where(func.lower(Campaign.name) == name.lower())
            .order_by(Campaign.id)
            .limit(2)
        ).all()

    def influencer_ids_of(
        self, campaign_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        found: dict[uuid.UUID, list[uuid.UUID]] = {campaign_id: [] for campaign_id in campaign_ids}
        wanted = list(campaign_ids)
        for start in range(0, len(wanted), _CHUNK):
            rows = self.session.execute(
                select(CampaignInfluencer.campaign_id, CampaignInfluencer.influencer_id)
                .where(
                    CampaignInfluencer.workspace_id == self.workspace_id,
                    CampaignInfluencer.campaign_id.in_(wanted[start : start + _CHUNK]),
                )
                .order_by(CampaignInfluencer.influencer_id)
            )
            for campaign_id, influencer_id in rows:
                found[campaign_id].append(influencer_id)
        return found

    def campaign_ids_with_influencer(self, influencer_id: uuid.UUID) -> Select[uuid.UUID]:
        """A subquery for filtering campaigns by influencer."""
        return select(CampaignInfluencer.campaign_id).where(
            CampaignInfluencer.workspace_id == self.workspace_id,
            CampaignInfluencer.influencer_id == influencer_id,
        )

    def replace_campaign_influencers(
        self, campaign_id: uuid.UUID, influencer_ids: Sequence[uuid.UUID]
    ) -> None:
        self.session.execute(
            delete(CampaignInfluencer).where(
                CampaignInfluencer.workspace_id == self.workspace_id,
                CampaignInfluencer.campaign_id == campaign_id,
            )
        )
        self.session.add_all(
            CampaignInfluencer(
                campaign_id=campaign_id, influencer_id=influencer_id, workspace_id=self.workspace_id
            )
            for influencer_id in dict.fromkeys(influencer_ids)
        )
        self.session.flush()

    def is_in_campaign(self, campaign_id: uuid.UUID, influencer_id: uuid.UUID) -> bool:
        return (
            self.session.scalar(
                select(func.count()).where(
                    CampaignInfluencer.workspace_id == self.workspace_id,
                    CampaignInfluencer.campaign_id == campaign_id,
                    CampaignInfluencer.influencer_id == influencer_id,
                )
            )
            == 1
        )

    # -- links and discount codes ----------------------------------------------------------

    def link_code_exists(self, code_key: str) -> bool:
        """Across every workspace: the short URL's code names one link on the instance."""
        return self.session.scalar(select(Link.id).where(Link.code_key == code_key)) is not None

    def discount_code_by_key(self, code_key: str) -> DiscountCode | None:
        return self.session.scalars(
            self._scoped(DiscountCode).where(DiscountCode.code_key == code_key)
        ).first()

    # -- posts -----------------------------------------------------------------------------

    def posts_by_url(self, urls: Collection[str]) -> dict[str, Post]:
        found: dict[str, Post] = {}
        wanted = list(urls)
        for start in range(0, len(wanted), _CHUNK):
            for post in self.session.scalars(
                self._scoped(Post).where(Post.url.in_(wanted[start : start + _CHUNK]))
            ):
                found[post.url] = post
        return found

    # -- store settings --------------------------------------------------------------------

    def store_settings(self) -> StoreSettings | None:
        return self.session.get(StoreSettings, self.workspace_id)

    def create_store_settings_if_missing(self, **defaults: Any) -> StoreSettings:
        """The settings row, inserted from ``defaults`` unless it exists. An insert by another
        transaction a moment ago is not an error (ON CONFLICT DO NOTHING): its row is returned."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(
            insert(StoreSettings)
            .values(
                workspace_id=self.workspace_id, allowed_domains=[], channel_rules=[], **defaults
            )
            .on_conflict_do_nothing(index_elements=["workspace_id"])
        )
        row = self.session.get(StoreSettings, self.workspace_id, populate_existing=True)
        assert row is not None  # inserted now or by the transaction that won the race
        return row
