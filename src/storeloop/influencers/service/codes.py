"""Discount codes: unique per workspace whatever the case, owned by an influencer or campaign."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storeloop.influencers.repository import MarketingRepository
from storeloop.influencers.schemas import (
    DiscountCodeCreate,
    DiscountCodeOut,
    DiscountCodePage,
    DiscountCodeUpdate,
)
from storeloop.influencers.service.common import (
    CodeTaken,
    InvalidCode,
    OwnerRequired,
    changes_of,
    check_references,
    page_of,
    require,
)
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import DiscountCode

_DISCOUNT_CODE = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,62}[^\s\x00-\x1f\x7f])?$")


def _code_out(code: DiscountCode) -> DiscountCodeOut:
    return DiscountCodeOut(
        id=code.id,
        code=code.code,
        influencer_id=code.influencer_id,
        campaign_id=code.campaign_id,
        is_active=code.is_active,
        created_at=as_utc(code.created_at),
        updated_at=as_utc(code.updated_at),
    )


def discount_code_key(code: str) -> str:
    """How a discount code is matched: stripped and upper-cased (shops treat codes that way)."""
    return code.strip().upper()


def _check_owner(influencer_id: uuid.UUID | None, campaign_id: uuid.UUID | None) -> None:
    if influencer_id is None and campaign_id is None:
        raise OwnerRequired(
            "a discount code belongs to an influencer or a campaign: give influencer_id or "
            "campaign_id",
            field="influencer_id",
        )


def create_discount_code(
    session: Session, workspace_id: uuid.UUID, data: DiscountCodeCreate
) -> DiscountCodeOut:
    if not _DISCOUNT_CODE.match(data.code):
        raise InvalidCode("a discount code has 1 to 64 printable characters", field="code")
    _check_owner(data.influencer_id, data.campaign_id)
    repository = MarketingRepository(session, workspace_id)
    check_references(repository, influencer_id=data.influencer_id, campaign_id=data.campaign_id)
    key = discount_code_key(data.code)
    if repository.discount_code_by_key(key) is not None:
        raise CodeTaken(f"the discount code {data.code!r} already exists", field="code")
    now = utcnow()
    code = DiscountCode(
        id=new_id(),
        workspace_id=workspace_id,
        code=data.code,
        code_key=key,
        influencer_id=data.influencer_id,
        campaign_id=data.campaign_id,
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            repository.add(code)
    except IntegrityError:
        raise CodeTaken(f"the discount code {data.code!r} already exists", field="code") from None
    return _code_out(code)


def get_discount_code(
    session: Session, workspace_id: uuid.UUID, code_id: uuid.UUID
) -> DiscountCodeOut:
    code = require(
        MarketingRepository(session, workspace_id).get(DiscountCode, code_id),
        "discount code",
        code_id,
        "code_id",
    )
    return _code_out(code)


def list_discount_codes(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    code: str | None = None,
    is_active: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> DiscountCodePage:
    filters: list[Any] = []
    if influencer_id is not None:
        filters.append(DiscountCode.influencer_id == influencer_id)
    if campaign_id is not None:
        filters.append(DiscountCode.campaign_id == campaign_id)
    if code is not None:
        filters.append(DiscountCode.code_key == discount_code_key(code))
    if is_active is not None:
        filters.append(DiscountCode.is_active.is_(is_active))
    rows, next_cursor = page_of(
        MarketingRepository(session, workspace_id), DiscountCode, filters, limit, cursor
    )
    return DiscountCodePage(items=[_code_out(row) for row in rows], next_cursor=next_cursor)


def update_discount_code(
    session: Session, workspace_id: uuid.UUID, code_id: uuid.UUID, update: DiscountCodeUpdate
) -> DiscountCodeOut:
    changes = changes_of(update, not_null={"is_active"})
    repository = MarketingRepository(session, workspace_id)
    code = require(repository.get(DiscountCode, code_id), "discount code", code_id, "code_id")
    # Checked before the row changes: a flush of an unknown id would fail in the database.
    influencer_id = changes.get("influencer_id", code.influencer_id)
    campaign_id = changes.get("campaign_id", code.campaign_id)
    _check_owner(influencer_id, campaign_id)
    check_references(repository, influencer_id=influencer_id, campaign_id=campaign_id)
    for name in ("influencer_id", "campaign_id", "is_active"):
        if name in changes:
            setattr(code, name, changes[name])
    code.updated_at = utcnow()
    session.flush()
    return _code_out(code)
