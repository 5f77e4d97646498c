"""Customers: recent profiles, a search by email, phone or user id (a POST, so an email never
lands in a URL or an access log), and one profile with its identifiers, orders and timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from storeloop.dashboard.csvfile import csv_response
from storeloop.dashboard.pages.common import cursor_param, table_of, wants_csv
from storeloop.dashboard.web import (
    PageInvalid,
    StaffDep,
    check_csrf,
    page_errors,
    read_form,
    read_session,
    render,
    runtime_of,
)
from storeloop.identity.schemas import ProfileSummary, TimelineEvent
from storeloop.identity.service import find_profiles, get_profile, profile_timeline
from storeloop.orders.service import list_orders

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 50
MAX_EXPORT_ROWS = 10_000
PROFILE_COLUMNS = ("id", "email", "name", "first_seen_at", "last_seen_at", "traits")
IDENTIFIER_COLUMNS = ("kind", "value", "first_seen_at")
TIMELINE_COLUMNS = ("id", "timestamp", "type", "event", "anonymous_id", "user_id", "properties")
CUSTOMER_ORDER_COLUMNS = ("id", "external_id", "placed_at", "status", "currency", "total")
SEARCH_FIELDS = ("email", "phone", "user_id")


def display_name(profile: ProfileSummary) -> str | None:
    personal, traits = profile.personal, profile.traits
    name = personal.get("name") or traits.get("name")
    if not name:
        first = personal.get("first_name") or personal.get("firstName") or ""
        last = personal.get("last_name") or personal.get("lastName") or ""
        name = " ".join(str(part) for part in (first, last) if part) or None
    return str(name) if name else None


def _profile_row(profile: ProfileSummary) -> list[Any]:
    return [
        profile.id,
        profile.personal.get("email"),
        display_name(profile),
        profile.first_seen_at,
        profile.last_seen_at,
        orjson.dumps(profile.traits, option=orjson.OPT_SORT_KEYS).decode(),
    ]


def _properties(event: TimelineEvent) -> dict[str, Any]:
    payload = event.payload
    for key in ("properties", "traits"):
        value = payload.get(key)
        if isinstance(value, dict) and value:
            return value
    return {}


def summary_of(event: TimelineEvent, limit: int = 140) -> str:
    text = orjson.dumps(_properties(event), option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@router.get("/dashboard/customers")
def customers_page(request: Request, staff: StaffDep) -> Response:
    cursor = cursor_param(request)
    cipher = runtime_of(request).keyring.cipher(staff.workspace_id)
    with read_session(request) as session, page_errors("customer"):
        if wants_csv(request):
            profiles: list[ProfileSummary] = []
            export_cursor: str | None = None
            while len(profiles) < MAX_EXPORT_ROWS:
                found = find_profiles(
                    session, staff.workspace_id, cipher, limit=500, cursor=export_cursor
                )
                profiles.extend(found.items)
                export_cursor = found.next_cursor
                if export_cursor is None:
                    break
            return csv_response(
                "customers", PROFILE_COLUMNS, [_profile_row(p) for p in profiles[:MAX_EXPORT_ROWS]]
            )
        page = find_profiles(session, staff.workspace_id, cipher, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "customers.html",
        {
            "profiles": page.items,
            "names": {profile.id: display_name(profile) for profile in page.items},
            "next_href": f"/dashboard/customers?cursor={page.next_cursor}"
            if page.next_cursor
            else None,
            "first_href": "/dashboard/customers" if cursor else None,
            "csv_href": "/dashboard/customers?format=csv",
            "searched": None,
        },
        staff=staff,
    )


@router.post("/dashboard/customers/search")
async def search_customers(request: Request, staff: StaffDep) -> Response:
    form = await read_form(request)
    check_csrf(staff.csrf_token, form.get("csrf_token"))
    search = {
        name: form[name].strip()[:320]
        for name in SEARCH_FIELDS
        if form.get(name) and form[name].strip()
    }
    if not search:
        raise PageInvalid(
            ["Type an email, a phone number or a user id to search for."],
            retry_path="/dashboard/customers",
        )
    cipher = runtime_of(request).keyring.cipher(staff.workspace_id)
    with read_session(request) as session, page_errors("customer"):
        found = find_profiles(
            session,
            staff.workspace_id,
            cipher,
            email=search.get("email"),
            phone=search.get("phone"),
            user_id=search.get("user_id"),
            limit=PAGE_SIZE,
        )
    if form.get("format") == "csv":
        return csv_response(
            "customer-search", PROFILE_COLUMNS, [_profile_row(p) for p in found.items]
        )
    return render(
        request,
        "customers.html",
        {
            "profiles": found.items,
            "names": {profile.id: display_name(profile) for profile in found.items},
            "next_href": None,
            "first_href": None,
            "csv_href": None,
            "searched": search,
        },
        staff=staff,
    )


def _timeline_rows(events: Sequence[TimelineEvent]) -> list[list[Any]]:
    return [
        [
            event.id,
            event.timestamp,
            event.type,
            event.event,
            event.anonymous_id,
            event.user_id,
            orjson.dumps(_properties(event), option=orjson.OPT_SORT_KEYS).decode(),
        ]
        for event in events
    ]


@router.get("/dashboard/customers/{profile_id}")
def customer_page(request: Request, staff: StaffDep, profile_id: uuid.UUID) -> Response:
    before = cursor_param(request, "before")
    cipher = runtime_of(request).keyring.cipher(staff.workspace_id)
    with read_session(request) as session, page_errors("customer"):
        profile = get_profile(session, staff.workspace_id, cipher, profile_id)
        timeline = profile_timeline(
            session,
            staff.workspace_id,
            cipher,
            profile.id,
            limit=TIMELINE_PAGE_SIZE,
            before=before,
        )
        orders = list_orders(session, staff.workspace_id, limit=100, profile_id=profile.id)
    if wants_csv(request):
        table = table_of(request, {"identifiers", "timeline", "orders"}, "timeline")
        name = f"customer-{profile.id}-{table}"
        if table == "identifiers":
            return csv_response(
                name,
                IDENTIFIER_COLUMNS,
                [[item.kind, item.value, item.first_seen_at] for item in profile.identifiers],
            )
        if table == "orders":
            return csv_response(
                name,
                CUSTOMER_ORDER_COLUMNS,
                [
                    [o.id, o.external_id, o.placed_at, o.status, o.currency, o.total]
                    for o in orders.items
                ],
            )
        return csv_response(name, TIMELINE_COLUMNS, _timeline_rows(timeline.items))
    base = f"/dashboard/customers/{profile.id}"
    summary = ProfileSummary(
        id=profile.id,
        first_seen_at=profile.first_seen_at,
        last_seen_at=profile.last_seen_at,
        updated_at=profile.updated_at,
        traits=profile.traits,
        personal=profile.personal,
    )
    timeline_query = f"&before={before}" if before else ""
    return render(
        request,
        "customer.html",
        {
            "profile": profile,
            "name": display_name(summary),
            "timeline": [(event, summary_of(event)) for event in timeline.items],
            "orders": orders.items,
            "next_href": f"{base}?before={timeline.next_cursor}" if timeline.next_cursor else None,
            "first_href": base if before else None,
            "csv_identifiers": f"{base}?format=csv&table=identifiers",
            "csv_timeline": f"{base}?format=csv&table=timeline{timeline_query}",
            "csv_orders": f"{base}?format=csv&table=orders",
        },
        staff=staff,
    )
