"""Attribution API: one order explained, the report per influencer/campaign/channel/post."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from storeloop.attribution import service
from storeloop.attribution.schemas import AttributionReport, OrderAttribution, RecomputeResult
from storeloop.dependencies import CallerDep, SessionDep
from storeloop.kit.timeutil import as_utc

orders_router = APIRouter(prefix="/api/v1/orders", tags=["attribution"])
router = APIRouter(prefix="/api/v1/attribution", tags=["attribution"])


@orders_router.get("/{order_id}/attribution", response_model=OrderAttribution)
def order_attribution(
    order_id: uuid.UUID, caller: CallerDep, session: SessionDep
) -> OrderAttribution:
    """The touchpoints an order considered and excluded (with why), the deciding rule, and the
    credit per model."""
    return service.explain_order(session, caller.workspace_id, order_id)


@router.get("/report", response_model=AttributionReport)
def attribution_report(
    caller: CallerDep,
    session: SessionDep,
    group_by: Literal["influencer", "campaign", "channel", "post"] = Query("channel"),
    model: str = Query("last_click", max_length=24),
    date_from: datetime | None = Query(None, alias="from"),
    date_to: datetime | None = Query(None, alias="to"),
    format: Literal["json", "csv"] = Query("json"),
) -> AttributionReport | Response:
    """Orders (sum of credits), attributed revenue net of refunds, cost, ROI, ROAS per group."""
    result = service.report(
        session,
        caller.workspace_id,
        group_by,
        model,
        as_utc(date_from) if date_from else None,
        as_utc(date_to) if date_to else None,
    )
    if format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(service.report_csv_rows(result))
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="attribution-{group_by}-{model}.csv"'
            },
        )
    return result


@router.post("/recompute", response_model=RecomputeResult)
def recompute(caller: CallerDep, session: SessionDep) -> RecomputeResult:
    """Reclassify touchpoint channels under the current rules, then mark every order of the
    workspace for re-attribution (after changing settings)."""
    return service.recompute(session, caller.workspace_id)
