"""Influencers (leaderboard and one page each), campaigns and channels, under one or two
attribution models side by side."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from storeloop.analytics.schemas import Breakdown, BreakdownRow, GroupBy
from storeloop.dashboard import data
from storeloop.dashboard.csvfile import csv_download, csv_response
from storeloop.dashboard.filters import MODEL_LABELS, Filters
from storeloop.dashboard.pages.common import WITH_COMPARE, filter_options, table_of, wants_csv
from storeloop.dashboard.web import (
    FiltersDep,
    StaffDep,
    page_errors,
    read_session,
    render,
    runtime_of,
)
from storeloop.influencers.service import (
    campaign_names,
    get_influencer,
    list_campaigns,
    list_discount_codes,
    list_links,
    list_posts,
)

router = APIRouter(include_in_schema=False)

# Rows an influencer page lists per table; the CSV holds the same rows.
DETAIL_ROWS = 200
POST_COLUMNS = (
    "id",
    "platform",
    "kind",
    "url",
    "posted_at",
    "campaign",
    "reach",
    "views",
    "likes",
    "comments",
)
CODE_COLUMNS = ("id", "code", "campaign", "is_active", "created_at")
CREDITED_COLUMNS = ("order_id", "placed_at", "credit", "revenue", "currency")
GROUP_TITLES: dict[str, str] = {
    "influencer": "Influencer",
    "campaign": "Campaign",
    "channel": "Channel",
}


def leaderboard_rows(result: Breakdown) -> list[BreakdownRow]:
    """Named groups first (by the first model's revenue, as analytics sorts them), then the
    row of everything no group got credit for."""
    return [row for row in result.rows if row.key is not None] + [
        row for row in result.rows if row.key is None
    ]


def _models_context(filters: Filters) -> list[tuple[str, str]]:
    return [(model, MODEL_LABELS.get(model, model)) for model in filters.models]


def _leaderboard(
    request: Request,
    staff: StaffDep,
    filters: Filters,
    group_by: GroupBy,
    template: str,
    title: str,
) -> Response:
    with read_session(request) as session, page_errors("report"):
        result = data.breakdown(session, staff.workspace_id, filters, group_by)
        if wants_csv(request):
            return csv_download(
                f"{group_by}s-{filters.start}-{filters.end}", data.breakdown_csv(result)
            )
        options = filter_options(session, staff.workspace_id, WITH_COMPARE)
    context: dict[str, Any] = {
        "filters": filters,
        "options": options,
        "title": title,
        "group_by": group_by,
        "group_title": GROUP_TITLES[group_by],
        "breakdown": result,
        "rows": leaderboard_rows(result),
        "models": _models_context(filters),
        "csv_href": filters.href(request.url.path, format="csv"),
        "has_influencers": bool(options.influencers),
        "has_campaigns": bool(options.campaigns),
    }
    return render(request, template, context, staff=staff)


@router.get("/dashboard/influencers")
def influencers_page(request: Request, staff: StaffDep, filters: FiltersDep) -> Response:
    return _leaderboard(request, staff, filters, "influencer", "influencers.html", "Influencers")


@router.get("/dashboard/campaigns")
def campaigns_page(request: Request, staff: StaffDep, filters: FiltersDep) -> Response:
    return _leaderboard(request, staff, filters, "campaign", "campaigns.html", "Campaigns")


@router.get("/dashboard/channels")
def channels_page(request: Request, staff: StaffDep, filters: FiltersDep) -> Response:
    return _leaderboard(request, staff, filters, "channel", "channels.html", "Channels")


@router.get("/dashboard/influencers/{influencer_id}")
def influencer_page(
    request: Request, staff: StaffDep, filters: FiltersDep, influencer_id: uuid.UUID
) -> Response:
    runtime = runtime_of(request)
    base_url = runtime.settings.tracking_base_url or str(request.base_url)
    workspace_id = staff.workspace_id
    with read_session(request) as session, page_errors("influencer"):
        influencer = get_influencer(
            session, runtime.keyring.cipher(workspace_id), workspace_id, influencer_id
        )
        figures, row = data.influencer_figures(session, workspace_id, filters, influencer_id)
        link_figures = data.influencer_links(session, workspace_id, filters, influencer_id)
        posts = list_posts(
            session, workspace_id, influencer_id=influencer_id, limit=DETAIL_ROWS
        ).items
        links = list_links(
            session,
            workspace_id,
            base_url=base_url,
            influencer_id=influencer_id,
            limit=DETAIL_ROWS,
        ).items
        codes = list_discount_codes(
            session, workspace_id, influencer_id=influencer_id, limit=DETAIL_ROWS
        ).items
        campaigns = list_campaigns(
            session, workspace_id, influencer_id=influencer_id, limit=DETAIL_ROWS
        ).items
        credited = data.credited_orders(
            session, workspace_id, filters, influencer_id=influencer_id, limit=DETAIL_ROWS
        )
        names = campaign_names(
            session,
            workspace_id,
            {post.campaign_id for post in posts if post.campaign_id}
            | {code.campaign_id for code in codes if code.campaign_id}
            | {campaign.id for campaign in campaigns},
        )
        options = filter_options(session, workspace_id, WITH_COMPARE)
    link_rows = [(link, link_figures.get(str(link.id))) for link in links]
    if wants_csv(request):
        table = table_of(request, {"figures", "posts", "links", "codes", "orders"}, "figures")
        name = f"influencer-{influencer.id}-{table}-{filters.start}-{filters.end}"
        if table == "posts":
            return csv_response(
                name,
                POST_COLUMNS,
                [
                    [
                        post.id,
                        post.platform,
                        post.kind,
                        post.url,
                        post.posted_at,
                        names.get(post.campaign_id) if post.campaign_id else None,
                        post.reach,
                        post.views,
                        post.likes,
                        post.comments,
                    ]
                    for post in posts
                ],
            )
        if table == "links":
            header = ["id", "code", "short_url", "destination_url", "is_active", "clicks"]
            header += ["bot_clicks"] + [f"{model}_orders" for model in filters.models]
            return csv_response(
                name,
                header,
                [
                    [
                        link.id,
                        link.code,
                        link.short_url,
                        link.destination_url,
                        link.is_active,
                        figure.clicks if figure else 0,
                        figure.bot_clicks if figure else 0,
                        *[figure.models[model].orders if figure else 0 for model in filters.models],
                    ]
                    for link, figure in link_rows
                ],
            )
        if table == "codes":
            return csv_response(
                name,
                CODE_COLUMNS,
                [
                    [
                        code.id,
                        code.code,
                        names.get(code.campaign_id) if code.campaign_id else None,
                        code.is_active,
                        code.created_at,
                    ]
                    for code in codes
                ],
            )
        if table == "orders":
            return csv_response(
                name,
                CREDITED_COLUMNS,
                [
                    [item.order_id, item.placed_at, item.credit, item.revenue, item.currency]
                    for item in credited
                ],
            )
        return csv_download(
            name,
            data.breakdown_csv(figures.model_copy(update={"rows": [row] if row else []})),
        )
    return render(
        request,
        "influencer.html",
        {
            "filters": filters,
            "options": options,
            "influencer": influencer,
            "row": row,
            "currency": figures.currency,
            "models": _models_context(filters),
            "posts": posts,
            "link_rows": link_rows,
            "codes": codes,
            "campaigns": campaigns,
            "campaign_names": names,
            "credited": credited,
            "csv": {
                table: filters.href(request.url.path, format="csv", table=table)
                for table in ("figures", "posts", "links", "codes", "orders")
            },
        },
        staff=staff,
    )
