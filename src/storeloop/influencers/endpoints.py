"""Management API for influencers, campaigns, tracked links, discount codes, posts and the store
settings. Nothing here is deleted: rows orders point at are archived or disabled instead."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from storeloop.dependencies import CallerDep, KeyringDep, RuntimeDep, SessionDep
from storeloop.influencers import service
from storeloop.influencers.schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignPage,
    CampaignUpdate,
    DiscountCodeCreate,
    DiscountCodeOut,
    DiscountCodePage,
    DiscountCodeUpdate,
    InfluencerCreate,
    InfluencerDetail,
    InfluencerPage,
    InfluencerSearch,
    InfluencerUpdate,
    LinkCreate,
    LinkOut,
    LinkPage,
    LinkUpdate,
    PostCreate,
    PostImportResult,
    PostOut,
    PostPage,
    PostUpdate,
    Status,
    StoreSettingsOut,
    StoreSettingsUpdate,
)
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.http import read_limited_body

router = APIRouter(prefix="/api/v1")

Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")]
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


def _base_url(request: Request, runtime: RuntimeDep) -> str:
    """Where /r/{code} is served: the configured tracking base URL, else this request's host."""
    return runtime.settings.tracking_base_url or str(request.base_url)


BaseUrl = Annotated[str, Depends(_base_url)]


# -- influencers ------------------------------------------------------------------------------


@router.post("/influencers", response_model=InfluencerDetail, status_code=201, tags=["influencers"])
def create_influencer(
    payload: InfluencerCreate, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> InfluencerDetail:
    return service.create_influencer(
        session, keyring.cipher(caller.workspace_id), caller.workspace_id, payload
    )


@router.get("/influencers", response_model=InfluencerPage, tags=["influencers"])
def list_influencers(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
    status: Status | None = None,
    name: Annotated[
        str | None, Query(max_length=200, pattern=_NO_NUL, description="part of the name")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> InfluencerPage:
    """Newest first, without contact data (GET one influencer for that). To find one by email
    address, POST /influencers/search: personal data stays out of URLs."""
    if "email" in request.query_params:
        # Ignoring it would answer with every influencer, as if they all matched.
        raise ValidationFailed(
            "email addresses do not go in URLs: POST them to /api/v1/influencers/search",
            field="email",
        )
    return service.list_influencers(
        session,
        keyring.cipher(caller.workspace_id),
        caller.workspace_id,
        status=status,
        name=name,
        limit=limit,
        cursor=cursor,
    )


@router.post("/influencers/search", response_model=InfluencerPage, tags=["influencers"])
def search_influencers(
    payload: InfluencerSearch, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> InfluencerPage:
    """Newest first, without contact data; ``email`` matches the whole address (any case)."""
    return service.list_influencers(
        session,
        keyring.cipher(caller.workspace_id),
        caller.workspace_id,
        status=payload.status,
        name=payload.name,
        email=payload.email,
        limit=payload.limit,
        cursor=payload.cursor,
    )


@router.get("/influencers/{influencer_id}", response_model=InfluencerDetail, tags=["influencers"])
def get_influencer(
    influencer_id: uuid.UUID, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> InfluencerDetail:
    return service.get_influencer(
        session, keyring.cipher(caller.workspace_id), caller.workspace_id, influencer_id
    )


@router.patch("/influencers/{influencer_id}", response_model=InfluencerDetail, tags=["influencers"])
def update_influencer(
    influencer_id: uuid.UUID,
    payload: InfluencerUpdate,
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
) -> InfluencerDetail:
    return service.update_influencer(
        session, keyring.cipher(caller.workspace_id), caller.workspace_id, influencer_id, payload
    )


@router.post(
    "/influencers/{influencer_id}/archive", response_model=InfluencerDetail, tags=["influencers"]
)
def archive_influencer(
    influencer_id: uuid.UUID, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> InfluencerDetail:
    """Archive instead of delete: orders and credits keep pointing at the influencer."""
    return service.update_influencer(
        session,
        keyring.cipher(caller.workspace_id),
        caller.workspace_id,
        influencer_id,
        InfluencerUpdate(status="archived"),
    )


# -- campaigns --------------------------------------------------------------------------------


@router.post("/campaigns", response_model=CampaignOut, status_code=201, tags=["campaigns"])
def create_campaign(payload: CampaignCreate, caller: CallerDep, session: SessionDep) -> CampaignOut:
    return service.create_campaign(session, caller.workspace_id, payload)


@router.get("/campaigns", response_model=CampaignPage, tags=["campaigns"])
def list_campaigns(
    caller: CallerDep,
    session: SessionDep,
    status: Status | None = None,
    influencer_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CampaignPage:
    return service.list_campaigns(
        session,
        caller.workspace_id,
        status=status,
        influencer_id=influencer_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
def get_campaign(campaign_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> CampaignOut:
    return service.get_campaign(session, caller.workspace_id, campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
def update_campaign(
    campaign_id: uuid.UUID, payload: CampaignUpdate, caller: CallerDep, session: SessionDep
) -> CampaignOut:
    return service.update_campaign(session, caller.workspace_id, campaign_id, payload)


@router.post("/campaigns/{campaign_id}/archive", response_model=CampaignOut, tags=["campaigns"])
def archive_campaign(campaign_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> CampaignOut:
    return service.update_campaign(
        session, caller.workspace_id, campaign_id, CampaignUpdate(status="archived")
    )


# -- tracked links ----------------------------------------------------------------------------


@router.post("/links", response_model=LinkOut, status_code=201, tags=["links"])
def create_link(
    payload: LinkCreate, caller: CallerDep, session: SessionDep, base_url: BaseUrl
) -> LinkOut:
    """A tracked link served at /r/{code}; its destination must be on an allowed domain."""
    return service.create_link(session, caller.workspace_id, payload, base_url=base_url)


@router.get("/links", response_model=LinkPage, tags=["links"])
def list_links(
    caller: CallerDep,
    session: SessionDep,
    base_url: BaseUrl,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    code: Annotated[
        str | None, Query(max_length=64, pattern=_NO_NUL, description="case-insensitive")
    ] = None,
    is_active: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LinkPage:
    return service.list_links(
        session,
        caller.workspace_id,
        base_url=base_url,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        code=code,
        is_active=is_active,
        limit=limit,
        cursor=cursor,
    )


@router.get("/links/{link_id}", response_model=LinkOut, tags=["links"])
def get_link(
    link_id: uuid.UUID, caller: CallerDep, session: SessionDep, base_url: BaseUrl
) -> LinkOut:
    return service.get_link(session, caller.workspace_id, link_id, base_url=base_url)


@router.patch("/links/{link_id}", response_model=LinkOut, tags=["links"])
def update_link(
    link_id: uuid.UUID,
    payload: LinkUpdate,
    caller: CallerDep,
    session: SessionDep,
    base_url: BaseUrl,
) -> LinkOut:
    return service.update_link(session, caller.workspace_id, link_id, payload, base_url=base_url)


@router.post("/links/{link_id}/disable", response_model=LinkOut, tags=["links"])
def disable_link(
    link_id: uuid.UUID, caller: CallerDep, session: SessionDep, base_url: BaseUrl
) -> LinkOut:
    """Stop redirecting through the link; its code stays reserved and its clicks stay."""
    return service.update_link(
        session, caller.workspace_id, link_id, LinkUpdate(is_active=False), base_url=base_url
    )


# -- discount codes ---------------------------------------------------------------------------


@router.post(
    "/discount-codes", response_model=DiscountCodeOut, status_code=201, tags=["discount codes"]
)
def create_discount_code(
    payload: DiscountCodeCreate, caller: CallerDep, session: SessionDep
) -> DiscountCodeOut:
    return service.create_discount_code(session, caller.workspace_id, payload)


@router.get("/discount-codes", response_model=DiscountCodePage, tags=["discount codes"])
def list_discount_codes(
    caller: CallerDep,
    session: SessionDep,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    code: Annotated[
        str | None, Query(max_length=64, pattern=_NO_NUL, description="case-insensitive")
    ] = None,
    is_active: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DiscountCodePage:
    return service.list_discount_codes(
        session,
        caller.workspace_id,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        code=code,
        is_active=is_active,
        limit=limit,
        cursor=cursor,
    )


@router.get("/discount-codes/{code_id}", response_model=DiscountCodeOut, tags=["discount codes"])
def get_discount_code(
    code_id: uuid.UUID, caller: CallerDep, session: SessionDep
) -> DiscountCodeOut:
    return service.get_discount_code(session, caller.workspace_id, code_id)


@router.patch("/discount-codes/{code_id}", response_model=DiscountCodeOut, tags=["discount codes"])
def update_discount_code(
    code_id: uuid.UUID, payload: DiscountCodeUpdate, caller: CallerDep, session: SessionDep
) -> DiscountCodeOut:
    return service.update_discount_code(session, caller.workspace_id, code_id, payload)


@router.post(
    "/discount-codes/{code_id}/disable", response_model=DiscountCodeOut, tags=["discount codes"]
)
def disable_discount_code(
    code_id: uuid.UUID, caller: CallerDep, session: SessionDep
) -> DiscountCodeOut:
    return service.update_discount_code(
        session, caller.workspace_id, code_id, DiscountCodeUpdate(is_active=False)
    )


# -- posts ------------------------------------------------------------------------------------


@router.post("/posts", response_model=PostOut, status_code=201, tags=["posts"])
def create_post(payload: PostCreate, caller: CallerDep, session: SessionDep) -> PostOut:
    return service.create_post(session, caller.workspace_id, payload)


async def _csv_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _CSV_TYPES:
        raise service.UnsupportedMediaType(
            "send the CSV file as the body with Content-Type: text/csv", field="Content-Type"
        )
    return await read_limited_body(request, service.MAX_IMPORT_BYTES, "body")


@router.post(
    "/posts/import",
    response_model=PostImportResult,
    tags=["posts"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "platform,url,kind,posted_at,influencer,campaign,reach,views,"
                    "likes,comments\ninstagram,https://instagram.com/p/abc,reel,"
                    "2026-03-01T10:00:00Z,Ana,Spring drop,12000,30000,900,41\n",
                }
            },
        }
    },
)
def import_posts(
    caller: CallerDep, session: SessionDep, body: Annotated[bytes, Depends(_csv_body)]
) -> PostImportResult:
    """Create or update posts from CSV rows (matched on url); bad rows are listed, not fatal."""
    return service.import_posts(session, caller.workspace_id, service.decode_csv(body))


@router.get("/posts", response_model=PostPage, tags=["posts"])
def list_posts(
    caller: CallerDep,
    session: SessionDep,
    platform: Annotated[str | None, Query(max_length=32, pattern=_NO_NUL)] = None,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PostPage:
    return service.list_posts(
        session,
        caller.workspace_id,
        platform=platform,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/posts/{post_id}", response_model=PostOut, tags=["posts"])
def get_post(post_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> PostOut:
    return service.get_post(session, caller.workspace_id, post_id)


@router.patch("/posts/{post_id}", response_model=PostOut, tags=["posts"])
def update_post(
    post_id: uuid.UUID, payload: PostUpdate, caller: CallerDep, session: SessionDep
) -> PostOut:
    return service.update_post(session, caller.workspace_id, post_id, payload)


# -- store settings ---------------------------------------------------------------------------


@router.get("/settings", response_model=StoreSettingsOut, tags=["settings"])
def get_settings(caller: CallerDep, session: SessionDep) -> StoreSettingsOut:
    """Tracking and attribution settings; the defaults until the first PATCH."""
    return service.settings_out(service.get_store_settings(session, caller.workspace_id))


@router.patch("/settings", response_model=StoreSettingsOut, tags=["settings"])
def update_settings(
    payload: StoreSettingsUpdate, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> StoreSettingsOut:
    """Change the fields sent. Webhook secrets are write-only: responses say whether each is set."""
    view = service.update_store_settings(
        session, keyring.cipher(caller.workspace_id), caller.workspace_id, payload
    )
    return service.settings_out(view)
