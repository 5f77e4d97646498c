"""Importing click history (``POST /api/v1/clicks/import``): clicks another tool recorded on a
store's tracked links, with the time they happened.

The redirect records "now"; an import brings past clicks in. Each one goes through the redirect's
rules: the velocity count (per link, IP range and user agent, over the clicks' own times), then
the user agent rules and the reduction of user agent and referrer (``clicks.prepare``), and is
stored by the same insert as the click writer's (``repository.insert_clicks``).
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from storeloop.db import begin_write
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.kit.tracking_params import LINK_CODE_PATTERN
from storeloop.tracking.bots import VelocityRule, user_agent_key
from storeloop.tracking.clicks import prepare
from storeloop.tracking.network import truncate_ip
from storeloop.tracking.repository import find_workspace_links, insert_clicks

MAX_CLICKS_PER_IMPORT = 1000
# The redirect keeps this much of a User-Agent and a Referer header.
MAX_USER_AGENT = 512
MAX_REFERRER = 2000


class UnknownLink(ValidationFailed):
    code = "unknown_link"


class ClickIn(BaseModel):
    """One recorded click: the link (its code or its id), when, and what the request carried."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    link_code: str | None = Field(
        default=None,
        max_length=64,
        pattern=f"^{LINK_CODE_PATTERN.pattern}$",
        description="the link's code (case-insensitive); give this or link_id",
    )
    link_id: uuid.UUID | None = Field(default=None, description="give this or link_code")
    clicked_at: AwareDatetime = Field(description="ISO 8601 with an offset, e.g. ...Z")
    user_agent: str | None = Field(default=None, max_length=MAX_USER_AGENT)
    ip: str | None = Field(
        default=None, max_length=64, description="the visitor's address; stored as /24 or /48"
    )
    referrer: str | None = Field(default=None, max_length=MAX_REFERRER)
    anonymous_id: str | None = Field(
        default=None,
        max_length=255,
        description="the visitor id the click's visit sent events with (sl_aid)",
    )

    @field_validator("user_agent", "referrer", "anonymous_id", "link_code", mode="after")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        if value is not None and "\x00" in value:
            raise ValueError("text cannot contain NUL characters")
        return value

    @field_validator("ip", mode="after")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("not an IPv4 or IPv6 address") from None
        return value


class ImportedClick(BaseModel):
    id: uuid.UUID = Field(description="the click id, as the redirect's sl_click would carry it")
    is_bot: bool
    bot_reason: str | None


class ClickImportResult(BaseModel):
    imported: int
    bots: int = Field(description="how many of them were classified as bots")
    clicks: list[ImportedClick] = Field(description="in the order they were sent")


def _field(index: int, name: str) -> str:
    # The same path FastAPI gives a field of the request body (``body.3.clicked_at``).
    return f"body.{index}.{name}"


def _click_id(clicked_at: datetime) -> uuid.UUID:
    """A UUIDv7 of the click's own millisecond: imported ids sort with the redirect's by time."""
    milliseconds = int(clicked_at.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        milliseconds << 80
        | 0x7 << 76
        | ((rand >> 62) & 0xFFF) << 64
        | 0b10 << 62
        | (rand & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def _resolve_links(
    session: Session, workspace_id: uuid.UUID, clicks: Sequence[ClickIn]
) -> list[uuid.UUID]:
    """The link id of every click, looked up in the caller's workspace only."""
    for index, click in enumerate(clicks):
        if (click.link_code is None) == (click.link_id is None):
            raise ValidationFailed(
                "give either link_code or link_id", field=_field(index, "link_code")
            )
    code_keys = {click.link_code.lower() for click in clicks if click.link_code is not None}
    link_ids = {click.link_id for click in clicks if click.link_id is not None}
    found = find_workspace_links(
        session.connection(), workspace_id, code_keys=code_keys, link_ids=link_ids
    )
    by_code = {code_key: link_id for link_id, code_key in found}
    known_ids = {link_id for link_id, _ in found}
    resolved: list[uuid.UUID] = []
    for index, click in enumerate(clicks):
        if click.link_code is not None:
            link_id = by_code.get(click.link_code.lower())
            if link_id is None:
                # Another workspace's code reads the same as one that does not exist.
                raise UnknownLink(
                    "no link with this code in this workspace", field=_field(index, "link_code")
                )
        else:
            assert click.link_id is not None
            if click.link_id not in known_ids:
                raise UnknownLink(
                    "no link with this id in this workspace", field=_field(index, "link_id")
                )
            link_id = click.link_id
        resolved.append(link_id)
    return resolved


def import_clicks(
    session: Session,
    workspace_id: uuid.UUID,
    clicks: Sequence[ClickIn],
    *,
    velocity_per_minute: int,
    max_age: timedelta,
    max_future: timedelta,
) -> ClickImportResult:
    """Classify and store ``clicks`` (all or none); flushes, never commits."""
    if len(clicks) > MAX_CLICKS_PER_IMPORT:
        raise ValidationFailed(f"at most {MAX_CLICKS_PER_IMPORT} clicks per request", field="body")
    now = utcnow()
    for index, click in enumerate(clicks):
        clicked_at = as_utc(click.clicked_at)
        if clicked_at > now + max_future:
            raise ValidationFailed(
                "clicked_at lies in the future", field=_field(index, "clicked_at")
            )
        if clicked_at < now - max_age:
            raise ValidationFailed(
                f"clicked_at is older than {max_age.days} days",
                field=_field(index, "clicked_at"),
            )
    # SQLite: take the write lock before reading, so the insert after the look-up cannot find
    # the snapshot outdated by another writer.
    begin_write(session)
    link_ids = _resolve_links(session, workspace_id, clicks)
    rows: list[dict[str, Any]] = []
    for click, link_id in zip(clicks, link_ids, strict=True):
        clicked_at = as_utc(click.clicked_at)
        rows.append(
            {
                "id": _click_id(clicked_at),
                "workspace_id": workspace_id,
                "link_id": link_id,
                "clicked_at": clicked_at,
                "ip_truncated": truncate_ip(click.ip),
                "user_agent": click.user_agent,
                "referrer": click.referrer,
                "anonymous_id": click.anonymous_id,
                "is_bot": False,
                "bot_reason": None,
            }
        )
    # The redirect counts velocity as clicks arrive; here they arrive in the order they happened,
    # counted on their own times. Then the user agent rules, which outrank velocity.
    velocity = VelocityRule(velocity_per_minute)
    for row in sorted(rows, key=lambda row: row["clicked_at"]):
        key = user_agent_key(row["user_agent"])
        if velocity.exceeded(
            row["link_id"], row["ip_truncated"], key, row["clicked_at"].timestamp()
        ):
            row["bot_reason"] = "velocity"
    for row in rows:
        prepare(row)
    insert_clicks(session.connection(), rows)
    imported = [
        ImportedClick(id=row["id"], is_bot=row["is_bot"], bot_reason=row["bot_reason"])
        for row in rows
    ]
    return ClickImportResult(
        imported=len(imported),
        bots=sum(1 for click in imported if click.is_bot),
        clicks=imported,
    )
