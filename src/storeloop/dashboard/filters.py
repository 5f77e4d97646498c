"""The date range, filters and attribution models of a dashboard page, kept in the URL.

Every page reads the same query parameters (the analytics API's names), so a URL can be shared
and reopened as it was: ``range`` (today, 7d, 30d, 90d or custom with ``start`` and ``end``),
``channel``, ``influencer_id``, ``campaign_id``, ``post_id``, ``device``, ``currency`` and
``model``, or ``models=a,b`` (or ``model=a&compare=b``, what the filter form sends) to compare
two models.
Anything unreadable becomes a list of plain-language messages, never a 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from storeloop.analytics.schemas import DEVICES, FIRST_DAY, LAST_DAY, KpiQuery
from storeloop.attribution.models import MODELS

PRESETS: dict[str, int | None] = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "custom": None}
PRESET_LABELS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "custom": "Custom range",
}
DEFAULT_PRESET = "30d"
DEFAULT_MODEL = "last_click"
MODEL_LABELS = {
    "last_click": "Last click",
    "first_click": "First click",
    "linear": "Linear",
    "time_decay": "Time decay",
    "position_based": "Position based",
    "markov": "Markov",
    "shapley": "Shapley",
}
MAX_RANGE_DAYS = 366
MAX_COMPARED_MODELS = 2
MAX_CHANNEL_LENGTH = 32
# The parameters this module owns; a page's own (cursor, format, table) pass through untouched.
FILTER_PARAMETERS = (
    "range",
    "start",
    "end",
    "channel",
    "influencer_id",
    "campaign_id",
    "post_id",
    "device",
    "currency",
    "model",
    "models",
    "compare",
)


class InvalidFilters(Exception):
    """The URL's filters could not be read; ``messages`` say why, one per parameter."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True, slots=True)
class Filters:
    preset: str
    start: date
    end: date
    channel: str | None = None
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    device: str | None = None
    # Money figures are in one currency: the store's most used one unless the URL names one.
    currency: str | None = None
    models: tuple[str, ...] = (DEFAULT_MODEL,)

    @property
    def model(self) -> str:
        return self.models[0]

    @property
    def compare(self) -> str | None:
        return self.models[1] if len(self.models) > 1 else None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def has_marketing_filter(self) -> bool:
        return any(
            value is not None
            for value in (self.channel, self.influencer_id, self.campaign_id, self.post_id)
        )

    @property
    def range_label(self) -> str:
        if self.preset == "custom":
            return f"{self.start.isoformat()} to {self.end.isoformat()}"
        return PRESET_LABELS[self.preset]

    def bounds(self) -> tuple[datetime, datetime]:
        """The range's first instant and the instant after its last day, in UTC."""
        start = datetime.combine(self.start, time(0), tzinfo=UTC)
        return start, datetime.combine(self.end, time(0), tzinfo=UTC) + timedelta(days=1)

    def kpi_query(self, **overrides: Any) -> KpiQuery:
        values: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "channel": self.channel,
            "influencer_id": self.influencer_id,
            "campaign_id": self.campaign_id,
            "post_id": self.post_id,
            "device": self.device,
            "model": self.model,
            "currency": self.currency,
        }
        values.update(overrides)
        return KpiQuery(**values)

    def params(self) -> list[tuple[str, str]]:
        """The canonical query parameters: only what differs from the defaults."""
        pairs: list[tuple[str, str]] = []
        if self.preset == "custom":
            pairs += [
                ("range", "custom"),
                ("start", self.start.isoformat()),
                ("end", self.end.isoformat()),
            ]
        elif self.preset != DEFAULT_PRESET:
            pairs.append(("range", self.preset))
        for name in ("channel", "influencer_id", "campaign_id", "post_id", "device", "currency"):
            value = getattr(self, name)
            if value is not None:
                pairs.append((name, str(value)))
        if len(self.models) > 1:
            pairs.append(("models", ",".join(self.models)))
        elif self.model != DEFAULT_MODEL:
            pairs.append(("model", self.model))
        return pairs

    def query(self, **extra: str | None) -> str:
        """The query string (without '?') of these filters plus ``extra`` page parameters."""
        pairs = self.params() + [(name, value) for name, value in extra.items() if value]
        return urlencode(pairs)

    def href(self, path: str, **extra: str | None) -> str:
        query = self.query(**extra)
        return f"{path}?{query}" if query else path

    def without(self, *names: str) -> Filters:
        """These filters with some of them cleared (a "remove filter" link)."""
        cleared: dict[str, Any] = {}
        for name in names:
            if name == "models":
                cleared["models"] = (self.model,)
            else:
                cleared[name] = None
        return replace(self, **cleared)

    def changed(self, **changes: Any) -> Filters:
        """These filters with some values replaced (links to a variant of the page)."""
        return replace(self, **changes)


def _one(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _date(value: str | None, name: str, errors: list[str]) -> date | None:
    if value is None:
        errors.append(f"A custom range needs {'an' if name == 'end' else 'a'} {name} date.")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"The {name} date “{value[:40]}” is not a date like 2026-01-31.")
        return None


def _uuid(params: Mapping[str, str], name: str, label: str, errors: list[str]) -> uuid.UUID | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.append(f"The {label} in this address is not a valid id.")
        return None


def _models(params: Mapping[str, str], errors: list[str]) -> tuple[str, ...]:
    listed = _one(params, "models")
    if listed is not None:
        names = [name.strip() for name in listed.split(",") if name.strip()]
    else:
        names = [_one(params, "model") or DEFAULT_MODEL]
        compare = _one(params, "compare")
        if compare is not None:
            names.append(compare)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        errors.append(
            f"Unknown attribution model “{unknown[0][:40]}”: choose one of {', '.join(MODELS)}."
        )
        return (DEFAULT_MODEL,)
    unique = tuple(dict.fromkeys(names))
    if not unique:
        return (DEFAULT_MODEL,)
    if len(unique) > MAX_COMPARED_MODELS:
        errors.append(f"Compare at most {MAX_COMPARED_MODELS} attribution models at a time.")
        return unique[:1]
    return unique


def parse_filters(params: Mapping[str, str], today: date) -> Filters:
    """Read the filters of a request's query parameters; ``today`` is the current UTC day.

    Raises InvalidFilters with every problem found, so the page can say all of them at once.
    """
    errors: list[str] = []
    preset = _one(params, "range")
    start_text, end_text = _one(params, "start"), _one(params, "end")
    if preset is None:
        preset = "custom" if start_text or end_text else DEFAULT_PRESET
    start = end = today
    if preset not in PRESETS:
        errors.append(f"Unknown date range “{preset[:40]}”: use today, 7d, 30d, 90d or custom.")
        preset = DEFAULT_PRESET
    days = PRESETS[preset]
    if days is not None:
        start = today - timedelta(days=days - 1)
    else:
        parsed_start = _date(start_text, "start", errors)
        parsed_end = _date(end_text, "end", errors)
        if parsed_start is not None and parsed_end is not None:
            start, end = parsed_start, parsed_end
            if not (FIRST_DAY <= start <= LAST_DAY and FIRST_DAY <= end <= LAST_DAY):
                errors.append(
                    f"Dates fall between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}."
                )
                start = end = today
            elif start > end:
                errors.append("The start date is after the end date.")
            elif (end - start).days + 1 > MAX_RANGE_DAYS:
                errors.append(f"A date range covers at most {MAX_RANGE_DAYS} days.")
    channel = _one(params, "channel")
    if channel is not None and len(channel) > MAX_CHANNEL_LENGTH:
        errors.append(f"A channel name has at most {MAX_CHANNEL_LENGTH} characters.")
        channel = None
    device = _one(params, "device")
    if device is not None and device not in DEVICES:
        errors.append(f"Unknown device “{device[:40]}”: use one of {', '.join(DEVICES)}.")
        device = None
    currency = _one(params, "currency")
    if currency is not None:
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            errors.append(f"“{currency[:40]}” is not a currency code like EUR.")
            currency = None
        else:
            currency = currency.upper()
    filters = Filters(
        preset=preset,
        start=start,
        end=end,
        channel=channel,
        influencer_id=_uuid(params, "influencer_id", "influencer", errors),
        campaign_id=_uuid(params, "campaign_id", "campaign", errors),
        post_id=_uuid(params, "post_id", "post", errors),
        device=device,
        currency=currency,
        models=_models(params, errors),
    )
    if errors:
        raise InvalidFilters(errors)
    return filters


def default_filters(today: date) -> Filters:
    return parse_filters({}, today)
