"""KPIs, time series, funnel, cohorts and breakdowns for a date range and filters, read from the
rollups (ADR 0008). Nothing here counts raw rows."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from datasketches import hll_sketch, hll_union
from pydantic import BaseModel
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from storeloop.analytics.repository import AnalyticsRepository
from storeloop.analytics.rollups import SKETCH_LG_K
from storeloop.analytics.schemas import (
    DEVICES,
    FIRST_DAY,
    LAST_DAY,
    Breakdown,
    BreakdownRow,
    Cohort,
    CohortMonth,
    Cohorts,
    Funnel,
    FunnelStep,
    Granularity,
    GroupBy,
    KpiQuery,
    ModelFigures,
    Overview,
    SeriesPoint,
    TimeSeries,
)
from storeloop.attribution.models import MODELS
from storeloop.attribution.service import CostFilters, csv_cell, group_costs
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.kit.timeutil import as_utc
from storeloop.models import (
    AttributionRollup,
    ClickRollup,
    CustomerDayRollup,
    OrderRollup,
    TrafficHourRollup,
    TrafficRollup,
    VisitorDayRollup,
)

MAX_RANGE_DAYS = 731
MAX_HOURLY_DAYS = 31
MAX_COMPARED_MODELS = 4
CREDIT_QUANTUM = Decimal("0.0001")
RATIO_QUANTUM = Decimal("0.0001")
GROUP_LABELS = {
    "influencer": "No influencer",
    "campaign": "No campaign",
    "post": "No post",
    "link": "No tracked link",
}


# -- validation and filters ----------------------------------------------------------------


def _check_days(start: date, end: date) -> None:
    for name, day in (("start", start), ("end", end)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValidationFailed(
                f"{name} must fall between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}",
                field=name,
            )


def validate(query: KpiQuery) -> None:
    _check_days(query.start, query.end)
    if query.end < query.start:
        raise ValidationFailed("end must not be before start", field="end")
    if (query.end - query.start).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"a range spans at most {MAX_RANGE_DAYS} days", field="start")
    if query.model not in MODELS:
        raise ValidationFailed(f"model is one of {', '.join(MODELS)}", field="model")
    if query.device is not None and query.device not in DEVICES:
        raise ValidationFailed(f"device is one of {', '.join(DEVICES)}", field="device")


def _marketing_filters(query: KpiQuery, table: Any) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if query.channel is not None and hasattr(table, "channel"):
        filters.append(table.channel == query.channel)
    if query.influencer_id is not None:
        filters.append(table.influencer_id == query.influencer_id)
    if query.campaign_id is not None:
        filters.append(table.campaign_id == query.campaign_id)
    if query.post_id is not None:
        filters.append(table.post_id == query.post_id)
    return filters


def _filters(query: KpiQuery, table: Any) -> list[ColumnElement[bool]]:
    filters = _marketing_filters(query, table)
    if query.device is not None and hasattr(table, "device"):
        filters.append(table.device == query.device)
    return filters


def _money(value: Any) -> Decimal:
    # SQLite sums money columns as REAL: round back to the stored precision.
    return Decimal(str(value or 0)).quantize(MONEY_QUANTUM)


def _credits(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CREDIT_QUANTUM)


def _rate(numerator: float | Decimal, denominator: float | Decimal) -> float | None:
    if not denominator:
        return None
    return round(float(numerator) / float(denominator), 6)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (numerator / denominator).quantize(RATIO_QUANTUM)


def _union(sketches: Iterable[bytes]) -> tuple[int, bool]:
    """Distinct count of a union of sketches, and whether it is exact."""
    union = hll_union(SKETCH_LG_K)
    for blob in sketches:
        union.update(hll_sketch.deserialize(blob))
    result = union.get_result()
    estimate = round(result.get_estimate())
    # In its first modes (below about 380 distinct keys at lg_k 12) a sketch keeps every
    # key's hash: its bounds then round to the same count.
    return estimate, round(result.get_lower_bound(1)) == round(result.get_upper_bound(1))


def _currency(
    query: KpiQuery, available: Sequence[tuple[str, Any]]
) -> tuple[str | None, list[str]]:
    ranked = sorted(available, key=lambda item: (-float(item[1] or 0), item[0]))
    currencies = [currency for currency, _ in ranked]
    if query.currency is not None:
        return query.currency, currencies
    return (currencies[0] if currencies else None), currencies


# -- overview --------------------------------------------------------------------------------


def _visitor_sketches(repository: AnalyticsRepository, query: KpiQuery) -> Sequence[Any]:
    """(day, visitors, sketch) rows to union: one per day and device unless a marketing filter
    needs the sketches per landing."""
    if query.has_marketing_filter:
        return repository.traffic_sketches(query.start, query.end, _filters(query, TrafficRollup))
    return repository.visitor_day_sketches(
        query.start, query.end, _filters(query, VisitorDayRollup)
    )


def overview(session: Session, workspace_id: uuid.UUID, query: KpiQuery) -> Overview:
    validate(query)
    repository = AnalyticsRepository(session, workspace_id)
    traffic_filters = _filters(query, TrafficRollup)
    traffic = repository.traffic(query.start, query.end, traffic_filters)
    (
        sessions,
        converted,
        _viewed,
        _added,
        _checkout,
        checkouts,
        abandoned,
        pending,
        computed_at,
    ) = (value or 0 for value in traffic)
    visitor_rows = _visitor_sketches(repository, query)
    if len(visitor_rows) == 1:
        unique_visitors, exact = int(visitor_rows[0][1]), True
    else:
        unique_visitors, exact = _union(row[2] for row in visitor_rows)
    customers: int | None = None
    new_customers: int | None = None
    returning_customers: int | None = None
    if query.has_marketing_filter:
        rows = repository.attributed(
            (), [query.model], query.start, query.end, _filters(query, AttributionRollup)
        )
        currency, currencies = _currency(query, [(row[1], row[2]) for row in rows])
        chosen = [row for row in rows if row[1] == currency]
        orders = _credits(sum((Decimal(str(row[2] or 0)) for row in chosen), Decimal(0)))
        gross = _money(sum(float(row[3] or 0) for row in chosen))
        net = _money(sum(float(row[4] or 0) for row in chosen))
        first_orders = _credits(sum((Decimal(str(row[5] or 0)) for row in chosen), Decimal(0)))
        refunded_orders = _credits(sum((Decimal(str(row[6] or 0)) for row in chosen), Decimal(0)))
        refunded_amount = max(gross - net, Decimal(0)).quantize(MONEY_QUANTUM)
    else:
        order_filters = _filters(query, OrderRollup)
        rows = repository.orders(query.start, query.end, order_filters)
        currency, currencies = _currency(query, [(row[0], row[1]) for row in rows])
        chosen_row = next((row for row in rows if row[0] == currency), None)
        values = chosen_row[1:] if chosen_row is not None else (0,) * 7
        # Whole numbers here, written like the fractional credits of a filtered answer.
        orders = _credits(int(values[0] or 0))
        gross, net, refunded_amount = _money(values[1]), _money(values[2]), _money(values[3])
        refunded_orders = _credits(int(values[4] or 0))
        first_orders = _credits(int(values[5] or 0))
        if currency is not None:
            sketches = repository.customer_sketches(
                query.start, query.end, currency, _filters(query, CustomerDayRollup)
            )
            customers, _ = _union(row[0] for row in sketches)
            new_customers, _ = _union(row[1] for row in sketches)
        else:
            customers, new_customers = 0, 0
        new_customers = min(new_customers, customers)
        returning_customers = customers - new_customers
    decided_checkouts = int(checkouts) - int(pending)
    return Overview(
        start=query.start,
        end=query.end,
        model=query.model,
        currency=currency,
        currencies=currencies,
        unique_visitors=unique_visitors,
        unique_visitors_exact=exact,
        sessions=int(sessions),
        converted_sessions=int(converted),
        orders=orders,
        conversion_rate=_rate(int(converted), int(sessions)),
        gross_revenue=gross,
        net_revenue=net,
        refunded_amount=refunded_amount,
        average_order_value=_ratio(gross, orders),
        first_orders=first_orders,
        repeat_orders=orders - first_orders,
        customers=customers,
        new_customers=new_customers,
        returning_customers=returning_customers,
        returning_customer_rate=None
        if customers is None or returning_customers is None
        else _rate(returning_customers, customers),
        checkouts_started=int(checkouts),
        abandoned_checkouts=int(abandoned),
        cart_abandonment_rate=_rate(int(abandoned), decided_checkouts),
        refunded_orders=refunded_orders,
        refund_rate=_rate(refunded_orders, orders),
        computed_at=as_utc(computed_at) if isinstance(computed_at, datetime) else None,
    )


# -- time series -----------------------------------------------------------------------------


def _bucket_starts(query: KpiQuery, granularity: Granularity) -> list[datetime]:
    first = datetime.combine(query.start, time(), UTC)
    last = datetime.combine(query.end, time(), UTC) + timedelta(days=1)
    if granularity == "hour":
        return [
            first + timedelta(hours=h) for h in range(int((last - first).total_seconds()) // 3600)
        ]
    if granularity == "day":
        return [first + timedelta(days=d) for d in range((last - first).days)]
    monday = first - timedelta(days=first.weekday())
    starts = []
    while monday < last:
        starts.append(monday)
        monday += timedelta(days=7)
    return starts


def _bucket_of(moment: datetime | date, granularity: Granularity) -> datetime:
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(), UTC)
    moment = as_utc(moment)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = datetime.combine(moment.date(), time(), UTC)
    if granularity == "day":
        return day
    return day - timedelta(days=day.weekday())


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def timeseries(
    session: Session, workspace_id: uuid.UUID, query: KpiQuery, granularity: Granularity
) -> TimeSeries:
    validate(query)
    if granularity == "hour":
        if (query.end - query.start).days >= MAX_HOURLY_DAYS:
            raise ValidationFailed(
                f"an hourly series spans at most {MAX_HOURLY_DAYS} days", field="granularity"
            )
        if query.has_marketing_filter:
            raise ValidationFailed(
                "attributed orders are rolled up per day: use granularity day or week with a "
                "channel, influencer, campaign or post filter",
                field="granularity",
            )
    repository = AnalyticsRepository(session, workspace_id)
    starts = _bucket_starts(query, granularity)
    sessions: dict[datetime, int] = defaultdict(int)
    orders: dict[datetime, Decimal] = defaultdict(Decimal)
    gross: dict[datetime, float] = defaultdict(float)
    net: dict[datetime, float] = defaultdict(float)
    visitors: dict[datetime, list[bytes]] = defaultdict(list)
    if granularity == "hour":
        for hour, count in repository.traffic_by_hour(
            query.start, query.end, _filters(query, TrafficHourRollup)
        ):
            sessions[_bucket_of(hour, granularity)] += int(count or 0)
    else:
        traffic_filters = _filters(query, TrafficRollup)
        for day, count in repository.traffic_by_day(query.start, query.end, traffic_filters):
            sessions[_bucket_of(_as_date(day), granularity)] += int(count or 0)
        for day, _, sketch in _visitor_sketches(repository, query):
            visitors[_bucket_of(_as_date(day), granularity)].append(sketch)
    if query.has_marketing_filter:
        rows = [
            (row[0], row[2], row[3], row[4], row[5])
            for row in repository.attributed(
                (AttributionRollup.day,),
                [query.model],
                query.start,
                query.end,
                _filters(query, AttributionRollup),
            )
        ]
    else:
        bucket_column = OrderRollup.hour if granularity == "hour" else OrderRollup.day
        rows = list(
            repository.orders_by_bucket(
                bucket_column, query.start, query.end, _filters(query, OrderRollup)
            )
        )
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[row[1]] += float(row[2] or 0)
    currency, _ = _currency(query, list(totals.items()))
    for moment, row_currency, count, row_gross, row_net in rows:
        if row_currency != currency:
            continue
        bucket = _bucket_of(
            as_utc(moment) if granularity == "hour" else _as_date(moment), granularity
        )
        orders[bucket] += Decimal(str(count or 0))
        gross[bucket] += float(row_gross or 0)
        net[bucket] += float(row_net or 0)
    points = [
        SeriesPoint(
            start=start,
            unique_visitors=None if granularity == "hour" else _union(visitors[start])[0],
            sessions=sessions[start],
            orders=_credits(orders[start]),
            gross_revenue=_money(gross[start]),
            net_revenue=_money(net[start]),
        )
        for start in starts
    ]
    return TimeSeries(granularity=granularity, currency=currency, points=points)


# -- funnel and cohorts ----------------------------------------------------------------------


def funnel(session: Session, workspace_id: uuid.UUID, query: KpiQuery) -> Funnel:
    validate(query)
    traffic = AnalyticsRepository(session, workspace_id).traffic(
        query.start, query.end, _filters(query, TrafficRollup)
    )
    sessions, converted, viewed, added, checkout = (int(value or 0) for value in traffic[:5])
    counts = [
        ("sessions", sessions),
        ("product_viewed", viewed),
        ("added_to_cart", added),
        ("checkout_started", checkout),
        ("ordered", converted),
    ]
    steps = []
    previous: int | None = None
    for step, count in counts:
        steps.append(
            FunnelStep(
                step=step,
                sessions=count,
                from_previous=None if previous is None else _rate(count, previous),
                from_start=_rate(count, sessions),
            )
        )
        previous = count
    return Funnel(steps=steps)


def cohorts(
    session: Session,
    workspace_id: uuid.UUID,
    start: date,
    end: date,
    currency: str | None = None,
) -> Cohorts:
    _check_days(start, end)
    if end < start:
        raise ValidationFailed("end must not be before start", field="end")
    repository = AnalyticsRepository(session, workspace_id)
    if currency is None:
        ranked = sorted(repository.cohort_currencies(), key=lambda item: (-item[1], item[0]))
        currency = ranked[0][0] if ranked else None
    rows = repository.cohorts(start.replace(day=1), end, currency) if currency else []
    by_cohort: dict[date, list[Any]] = defaultdict(list)
    for row in rows:
        by_cohort[_as_date(row.cohort_month)].append(row)
    result = []
    for month, cells in sorted(by_cohort.items()):
        base = next((cell.customers for cell in cells if cell.months_since_first == 0), 0)
        result.append(
            Cohort(
                cohort=month.strftime("%Y-%m"),
                customers=base,
                months=[
                    CohortMonth(
                        months_since_first=cell.months_since_first,
                        customers=cell.customers,
                        orders=cell.orders,
                        revenue=_money(cell.revenue),
                        retention=_rate(cell.customers, base) or 0.0,
                    )
                    for cell in sorted(cells, key=lambda cell: cell.months_since_first)
                ],
            )
        )
    return Cohorts(currency=currency, cohorts=result)


# -- breakdowns ------------------------------------------------------------------------------

_GROUP_COLUMNS = {
    "influencer": "influencer_id",
    "campaign": "campaign_id",
    "channel": "channel",
    "post": "post_id",
    "link": "link_id",
}


def breakdown(
    session: Session,
    workspace_id: uuid.UUID,
    query: KpiQuery,
    group_by: GroupBy,
    models: Sequence[str],
) -> Breakdown:
    validate(query)
    if group_by not in _GROUP_COLUMNS:
        raise ValidationFailed(f"by is one of {', '.join(_GROUP_COLUMNS)}", field="by")
    models = list(dict.fromkeys(models)) or [query.model]
    if len(models) > MAX_COMPARED_MODELS:
        raise ValidationFailed(
            f"compare at most {MAX_COMPARED_MODELS} models at once", field="models"
        )
    for model in models:
        if model not in MODELS:
            raise ValidationFailed(f"model is one of {', '.join(MODELS)}", field="models")
    column_name = _GROUP_COLUMNS[group_by]
    repository = AnalyticsRepository(session, workspace_id)

    def key_of(value: Any) -> str | None:
        return None if value is None else str(value)

    sessions: dict[str | None, int] = defaultdict(int)
    if hasattr(TrafficRollup, column_name):
        for value, count in repository.traffic_grouped(
            getattr(TrafficRollup, column_name),
            query.start,
            query.end,
            _filters(query, TrafficRollup),
        ):
            sessions[key_of(value)] += int(count or 0)
    clicks: dict[str | None, tuple[int, int]] = {}
    if hasattr(ClickRollup, column_name) and query.channel is None and query.device is None:
        for value, human, bots in repository.clicks_grouped(
            getattr(ClickRollup, column_name),
            query.start,
            query.end,
            _marketing_filters(query, ClickRollup),
        ):
            clicks[key_of(value)] = (int(human or 0), int(bots or 0))
    attributed = repository.attributed(
        (getattr(AttributionRollup, column_name),),
        models,
        query.start,
        query.end,
        _filters(query, AttributionRollup),
    )
    totals: dict[str, float] = defaultdict(float)
    for row in attributed:
        totals[row[2]] += float(row[3] or 0)
    currency, _ = _currency(query, list(totals.items()))
    figures: dict[str | None, dict[str, list[Any]]] = defaultdict(dict)
    for value, model, row_currency, orders, gross, net, _first, _refunded in attributed:
        if row_currency != currency:
            continue
        figures[key_of(value)][model] = [
            _credits(orders),
            _money(net),
            _money(gross),
        ]
    date_from = datetime.combine(query.start, time(), UTC)
    date_to = datetime.combine(query.end, time(), UTC) + timedelta(days=1)
    costs: dict[str | None, Decimal] = defaultdict(Decimal)
    names: dict[str | None, str] = {}
    if group_by == "link":
        names.update(repository.link_codes())
    else:
        group_cost, group_names = group_costs(
            session,
            workspace_id,
            group_by,
            date_from,
            date_to,
            CostFilters(
                campaign_id=query.campaign_id,
                channel=query.channel,
                influencer_id=query.influencer_id,
                post_id=query.post_id,
            ),
        )
        for (key, cost_currency), cost in group_cost.items():
            if currency is None or cost_currency == currency:
                costs[key_of(key)] += cost
        names.update({key_of(key): name for key, name in group_names.items()})
    filtered_keys = _filtered_group_keys(query, group_by)
    keys = set(sessions) | set(clicks) | set(figures) | set(costs)
    if filtered_keys is not None:
        keys &= filtered_keys
    rows = []
    for key in keys:
        human, bots = clicks.get(key, (0, 0))
        cost = costs.get(key, Decimal(0)).quantize(MONEY_QUANTUM)
        per_model = {}
        for model in models:
            orders, revenue, gross = figures[key].get(
                model, [Decimal(0).quantize(CREDIT_QUANTUM), _money(0), _money(0)]
            )
            per_model[model] = ModelFigures(
                orders=orders,
                revenue=revenue,
                gross_revenue=gross,
                roi=_ratio(revenue - cost, cost),
                roas=_ratio(revenue, cost),
                cost_per_order=_ratio(cost, orders) if cost else None,
            )
        rows.append(
            BreakdownRow(
                key=key,
                name=names.get(key) or (key if key is not None else GROUP_LABELS.get(group_by, "")),
                clicks=human,
                bot_clicks=bots,
                bot_share=_rate(bots, human + bots),
                sessions=sessions.get(key, 0),
                cost=cost,
                commission=None,
                models=per_model,
            )
        )
    first_model = models[0]
    rows.sort(key=lambda row: (-row.models[first_model].revenue, row.key is None, row.name))
    return Breakdown(
        group_by=group_by,
        start=query.start,
        end=query.end,
        currency=currency,
        models=models,
        rows=rows,
    )


def _filtered_group_keys(query: KpiQuery, group_by: str) -> set[str | None] | None:
    """A filter on the grouped dimension itself keeps only that group's row."""
    value = {
        "influencer": query.influencer_id,
        "campaign": query.campaign_id,
        "channel": query.channel,
        "post": query.post_id,
    }.get(group_by)
    return None if value is None else {str(value)}


# -- CSV -------------------------------------------------------------------------------------


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


def overview_csv(result: Overview) -> str:
    data = result.model_dump(mode="json")
    fields = [name for name in Overview.model_fields if name != "currencies"]
    return csv_text(["metric", "value"], [(name, data[name]) for name in fields])


def timeseries_csv(result: TimeSeries) -> str:
    return _models_csv(SeriesPoint.model_fields, result.points)


def funnel_csv(result: Funnel) -> str:
    return _models_csv(FunnelStep.model_fields, result.steps)


def cohorts_csv(result: Cohorts) -> str:
    rows = [
        (
            cohort.cohort,
            cohort.customers,
            month.months_since_first,
            month.customers,
            month.orders,
            month.revenue,
            month.retention,
        )
        for cohort in result.cohorts
        for month in cohort.months
    ]
    header = ["cohort", "cohort_customers", "months_since_first", "customers", "orders"]
    return csv_text([*header, "revenue", "retention"], rows)


def breakdown_csv(result: Breakdown) -> str:
    header = ["key", "name", "clicks", "bot_clicks", "bot_share", "sessions", "cost"]
    for model in result.models:
        header += [
            f"{model}_orders",
            f"{model}_revenue",
            f"{model}_gross_revenue",
            f"{model}_roi",
            f"{model}_roas",
            f"{model}_cost_per_order",
        ]
    rows = []
    for row in result.rows:
        values: list[Any] = [
            row.key,
            row.name,
            row.clicks,
            row.bot_clicks,
            row.bot_share,
            row.sessions,
            row.cost,
        ]
        for model in result.models:
            figures = row.models[model]
            values += [
                figures.orders,
                figures.revenue,
                figures.gross_revenue,
                figures.roi,
                figures.roas,
                figures.cost_per_order,
            ]
        rows.append(values)
    return csv_text(header, rows)


def _models_csv(fields: Any, items: Sequence[BaseModel]) -> str:
    names = list(fields)
    return csv_text(names, [[item.model_dump()[name] for name in names] for item in items])
