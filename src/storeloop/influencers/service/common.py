"""Errors, pagination cursors, PATCH handling and checks shared by the influencer services."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel

from storeloop.attribution.channels import CHANNELS
from storeloop.influencers.repository import MarketingRepository
from storeloop.kit.errors import Conflict, NotFound, StoreloopError, ValidationFailed
from storeloop.kit.timeutil import as_utc
from storeloop.models import (
    Campaign,
    DiscountCode,
    Influencer,
    Link,
    Post,
)

MAX_PAGE_SIZE = 200
MAX_IMPORT_BYTES = 10 * 1024 * 1024
PLATFORM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


class PayloadTooLarge(StoreloopError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(StoreloopError):
    status_code = 415
    code = "unsupported_media_type"


# -- shared helpers ---------------------------------------------------------------------------


def _encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    micros = (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(orjson.dumps([micros, str(row_id)])).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, row_id = orjson.loads(raw)
        return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(row_id)
    except (OverflowError, ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed("not a valid cursor", field="cursor") from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")


Row = TypeVar("Row", Influencer, Campaign, Link, DiscountCode, Post)


def page_of(
    repository: MarketingRepository,
    model: type[Row],
    filters: list[Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    _check_limit(limit)
    rows = repository.page(model, filters=filters, limit=limit + 1, after=_decode_cursor(cursor))
    items = list(rows[:limit])
    next_cursor = (
        _encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
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


def web_url(url: str) -> tuple[str, str] | None:
    """(normalised url, lower-case ASCII host) of an absolute http(s) URL, or None."""
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return url, ascii_host


def channel_name(value: str, field: str) -> str:
    """One of the channel groups attribution reports on, spelt as attribution spells it."""
    for channel in CHANNELS:
        if value.strip().lower() == channel.lower():
            return channel
    raise ValidationFailed(f"channel must be one of: {', '.join(CHANNELS)}", field=field)
