"""The URL filters of the dashboard, as pure functions: presets, custom ranges, models, the
canonical query string, and the friendly refusals."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storeloop.analytics.schemas import DEVICES
from storeloop.attribution.models import MODELS
from storeloop.dashboard.filters import Filters, InvalidFilters, parse_filters

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize(
    ("preset", "start"),
    [("today", "2026-03-15"), ("7d", "2026-03-09"), ("30d", "2026-02-14"), ("90d", "2025-12-16")],
)
def test_presets_end_today(preset: str, start: str) -> None:
    filters = parse_filters({"range": preset}, TODAY)
    assert (filters.start.isoformat(), filters.end, filters.preset) == (start, TODAY, preset)


def test_the_default_is_the_last_30_days_by_last_click() -> None:
    filters = parse_filters({}, TODAY)
    assert (filters.preset, filters.days, filters.models, filters.query()) == (
        "30d",
        30,
        ("last_click",),
        "",
    )
    assert filters.bounds() == (
        datetime(2026, 2, 14, tzinfo=UTC),
        datetime(2026, 3, 16, tzinfo=UTC),
    )


def test_a_custom_range_and_every_filter_round_trip_through_the_url() -> None:
    influencer, campaign, post = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    filters = parse_filters(
        {
            "start": "2026-01-01",
            "end": "2026-01-31",
            "channel": " Email ",
            "influencer_id": str(influencer),
            "campaign_id": str(campaign),
            "post_id": str(post),
            "device": "mobile",
            "currency": "usd",
            "model": "linear",
            "compare": "markov",
            "cursor": "kept for the page",
        },
        TODAY,
    )
    assert filters == Filters(
        preset="custom",
        start=date(2026, 1, 1),
        end=date(2026, 1, 31),
        channel="Email",
        influencer_id=influencer,
        campaign_id=campaign,
        post_id=post,
        device="mobile",
        currency="USD",
        models=("linear", "markov"),
    )
    assert filters.query() == (
        f"range=custom&start=2026-01-01&end=2026-01-31&channel=Email&influencer_id={influencer}"
        f"&campaign_id={campaign}&post_id={post}&device=mobile&currency=USD"
        "&models=linear%2Cmarkov"
    )
    again = parse_filters(dict(parse_qsl(filters.query())), TODAY)
    assert again == filters
    assert filters.kpi_query().model_dump() == {
        "start": date(2026, 1, 1),
        "end": date(2026, 1, 31),
        "channel": "Email",
        "influencer_id": influencer,
        "campaign_id": campaign,
        "post_id": post,
        "device": "mobile",
        "model": "linear",
        "currency": "USD",
    }
    assert filters.without("influencer_id", "models").query() == (
        f"range=custom&start=2026-01-01&end=2026-01-31&channel=Email&campaign_id={campaign}"
        f"&post_id={post}&device=mobile&currency=USD&model=linear"
    )
    assert filters.href("/dashboard/orders", cursor="abc", format=None).endswith("&cursor=abc")


def test_models_in_one_parameter_win_over_the_form_fields() -> None:
    filters = parse_filters({"models": "shapley, first_click", "model": "linear"}, TODAY)
    assert (filters.model, filters.compare) == ("shapley", "first_click")
    assert parse_filters({"model": "linear", "compare": "linear"}, TODAY).models == ("linear",)


def test_every_problem_is_said_at_once() -> None:
    with pytest.raises(InvalidFilters) as caught:
        parse_filters(
            {
                "range": "custom",
                "start": "yesterday",
                "influencer_id": "42",
                "device": "toaster",
                "model": "guess",
                "channel": "x" * 33,
            },
            TODAY,
        )
    assert caught.value.messages == [
        "The start date “yesterday” is not a date like 2026-01-31.",
        "A custom range needs an end date.",
        "A channel name has at most 32 characters.",
        f"Unknown device “toaster”: use one of {', '.join(DEVICES)}.",
        "The influencer in this address is not a valid id.",
        f"Unknown attribution model “guess”: choose one of {', '.join(MODELS)}.",
    ]


@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    days=st.integers(min_value=1, max_value=366),
    models=st.lists(st.sampled_from(MODELS), min_size=1, max_size=2, unique=True),
)
def test_any_valid_view_survives_its_own_url(start: date, days: int, models: list[str]) -> None:
    end = date.fromordinal(start.toordinal() + days - 1)
    filters = Filters(preset="custom", start=start, end=end, models=tuple(models))
    assert parse_filters(dict(parse_qsl(filters.query())), TODAY) == filters
