"""Errors, paging, PATCH handling and checks shared by the influencer services."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from storeloop.attribution.channels import CHANNELS
from storeloop.influencers.repository import MarketingRepository
from storeloop.kit.errors import Conflict, NotFound, StoreloopError, ValidationFailed
from storeloop.kit.pagination import check_limit, decode_cursor, encode_cursor
from storeloop.kit.timeutil import as_utc
from storeloop.models import (
    Campaign,
    DiscountCode,
    Influencer,
    Link,
    Post,
)

MAX_IMPORT_BYTES = 10 * 1024 * 1024
PLATFORM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")


# -- errors -----------------------------------------------------------------------------------


class DestinationNotAllowed(ValidationFailed):
    code = "destination_not_allowed"


class CodeTaken(Conflict):
    code = "code_taken"


class PostExists(Conflict):
    code = "post_exists"


class UnknownReference(ValidationFailed):
    code = "unknown_reference"


class InfluencerNotInCampaign(ValidationFailed):
    code = "influencer_not_in_campaign"


class OwnerRequired(ValidationFailed):
    code = "owner_required"


class InvalidCode(ValidationFailed):
    code = "invalid_code"


class InvalidDomain(ValidationFailed):
    code = "invalid_domain"


class InvalidCsv(ValidationFailed):
    code = "invalid_csv"


class UnsupportedMediaType(StoreloopError):
    status_code = 415
    code = "unsupported_media_type"


# -- shared helpers ---------------------------------------------------------------------------


Row = TypeVar("Row", Influencer, Campaign, Link, DiscountCode, Post)


def page_of(
    repository: MarketingRepository,
    model: type[Row],
    filters: list[Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    check_limit(limit)
    rows = repository.page(model, filters=filters, limit=limit + 1, after=decode_cursor(cursor))
    items = list(rows[:limit])
    next_cursor = (
        encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
    )
    return items, next_cursor


def changes_of(update: BaseModel, not_null: Collection[str]) -> dict[str, Any]:
    """The fields a PATCH body sent; null is refused for columns that cannot be empty."""
    values: dict[str, Any] = {}
    for name in sorted(update.model_fields_set):
        value = getattr(update, name)
        if value is None and name in not_null:
            raise ValidationFailed(f"{name} cannot be null", field=name)
        values[name] = value
    return values


def require(row: Row | None, what: str, row_id: uuid.UUID, field: str) -> Row:
    if row is None:
        raise NotFound(f"no {what} {row_id} in this workspace", field=field)
    return row


def check_references(
    repository: MarketingRepository,
    *,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    post_id: uuid.UUID | None = None,
) -> None:
    """Referenced rows must exist in the caller's workspace; an influencer given together with a
    campaign must take part in it."""
    for model, row_id, field in (
        (Influencer, influencer_id, "influencer_id"),
        (Campaign, campaign_id, "campaign_id"),
        (Post, post_id, "post_id"),
    ):
        if row_id is not None and not repository.existing_ids(model, [row_id]):
            raise UnknownReference(
                f"no {field.removesuffix('_id')} {row_id} in this workspace", field=field
            )
    if (
        influencer_id is not None
        and campaign_id is not None
        and not repository.is_in_campaign(campaign_id, influencer_id)
    ):
        raise InfluencerNotInCampaign(
            "the influencer is not part of this campaign (add them to its influencer_ids)",
            field="influencer_id",
        )


def aware(value: datetime | None) -> datetime | None:
    """Times without an offset are taken as UTC."""
    return as_utc(value) if value is not None else None


def channel_name(value: str, field: str) -> str:
    """One of the channel groups attribution reports on, spelt as attribution spells it."""
    for channel in CHANNELS:
        if value.strip().lower() == channel.lower():
            return channel
    raise ValidationFailed(f"channel must be one of: {', '.join(CHANNELS)}", field=field)
