"""What several pages share: the filter form's choices, CSV requests, date bounds, names."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from storeloop.analytics.schemas import DEVICES
from storeloop.attribution.channels import CHANNELS
from storeloop.attribution.models import MODELS
from storeloop.dashboard.filters import MODEL_LABELS, PRESET_LABELS
from storeloop.dashboard.web import PageInvalid
from storeloop.influencers.service import campaign_names, influencer_names


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """The choices the filter form offers; ``fields`` says which groups a page shows."""

    fields: frozenset[str]
    presets: list[tuple[str, str]]
    models: list[tuple[str, str]]
    channels: list[str]
    influencers: list[tuple[uuid.UUID, str]]
    campaigns: list[tuple[uuid.UUID, str]]
    devices: tuple[str, ...]


RANGE_ONLY: frozenset[str] = frozenset()
WITH_MARKETING = frozenset({"marketing", "models"})
WITH_COMPARE = frozenset({"marketing", "models", "compare"})


def filter_options(
    session: Session, workspace_id: uuid.UUID, fields: frozenset[str]
) -> FilterOptions:
    influencers: list[tuple[uuid.UUID, str]] = []
    campaigns: list[tuple[uuid.UUID, str]] = []
    if "marketing" in fields:
        influencers = list(influencer_names(session, workspace_id).items())
        campaigns = list(campaign_names(session, workspace_id).items())
    return FilterOptions(
        fields=fields,
        presets=list(PRESET_LABELS.items()),
        models=[(name, MODEL_LABELS.get(name, name)) for name in MODELS],
        channels=list(CHANNELS),
        influencers=influencers,
        campaigns=campaigns,
        devices=DEVICES,
    )


def wants_csv(request: Request) -> bool:
    return request.query_params.get("format") == "csv"


def table_of(request: Request, tables: Collection[str], default: str) -> str:
    """The ``table`` a CSV download asks for, among the page's tables."""
    table = request.query_params.get("table") or default
    if table not in tables:
        raise PageInvalid(
            [f"This page has no table “{table[:40]}”: use one of {', '.join(sorted(tables))}."],
            retry_path=request.url.path,
        )
    return table


def cursor_param(request: Request, name: str = "cursor") -> str | None:
    value = request.query_params.get(name)
    if value is not None and len(value) > 200:
        raise PageInvalid(["This page link is damaged: start again from the first page."])
    return value or None
