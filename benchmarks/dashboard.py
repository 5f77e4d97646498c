"""Dashboard read path (issue 4, ADR 0008): rollup recompute cost per day, and p50/p95/max of
every analytics call over 7, 30 and 90 days, beside counting raw rows.

    .venv/bin/python -m benchmarks.dashboard --backend sqlite --events 10000000
    .venv/bin/python -m benchmarks.dashboard --backend postgresql --events 10000000
    .venv/bin/python -m benchmarks.dashboard                   # quick: SQLite, 300,000 events

Steps:
1. A migrated database (SQLite: a file in a temp dir; PostgreSQL: the database
   ``storeloop_bench_dashboard``, dropped and created again), a workspace and a secret key, and
   ``--days`` complete days (before today, UTC) of raw rows bulk-loaded by
   benchmarks.dashboard_data (events, touchpoints, clicks, orders, refunds, profiles, credits).
2. Every day marked dirty and the worker's rollup job (storeloop.analytics.tasks.RefreshRollups,
   called until a pass does nothing) timed per day and per pass. ``--job-sample-days`` times it
   on fewer days; ``--extra-index`` then adds a candidate index and times every day again.
3. Every call timed --repetitions times after --warmup rounds, round-robin over the calls:
   the service functions in process (a session per call, as a request gets), then the API over
   HTTP against uvicorn in a separate process (keep-alive connection, one request at a time).
4. Baseline: sessions and visitors counted from the events table in one SQL statement.

Results: benchmarks/results/dashboard-{backend}-{events}.json (e.g. dashboard-sqlite-10m.json).
``--keep`` keeps the database and ``--reuse`` loads nothing when a kept database made with the
same options is there (``--skip-rollup-job`` then reuses the job's timings too).
"""

from __future__ import annotations

import argparse
import base64
import gc
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, Index, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from benchmarks import dashboard_data as data
from benchmarks.machine import machine_info
from benchmarks.procstat import machine_busy_fraction, machine_busy_seconds, tree_cpu_seconds
from benchmarks.servers import free_port, postgres_version, running
from storeloop import migrate
from storeloop.analytics import repository as analytics_repository
from storeloop.analytics import service, tasks
from storeloop.analytics.repository import AnalyticsRepository
from storeloop.analytics.schemas import KpiQuery
from storeloop.db import begin_write, create_db_engine, make_session_factory, session_scope
from storeloop.models import (
    AttributionRollup,
    ClickRollup,
    CohortRollup,
    CustomerDayRollup,
    OrderRollup,
    TrafficHourRollup,
    TrafficRollup,
    VisitorDayRollup,
)
from storeloop.workspaces.service import KeyKind, create_api_key, create_workspace

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
WORK_DIR = Path(tempfile.gettempdir()) / "storeloop_bench_dashboard"
PG_DATABASE = "storeloop_bench_dashboard"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 100.0
COMPARED_MODELS = "last_click,linear"
COMPARED = tuple(COMPARED_MODELS.split(","))
CHANNEL_FILTER = "Influencer"
DEVICE_FILTER = "mobile"
ROLLUP_MODELS = (
    TrafficRollup,
    TrafficHourRollup,
    VisitorDayRollup,
    OrderRollup,
    CustomerDayRollup,
    AttributionRollup,
    ClickRollup,
    CohortRollup,
)
console = Console(width=None if sys.stdout.isatty() else 150)


# -- the database --------------------------------------------------------------------------------


@dataclass
class Store:
    backend: str
    url: str
    workspace_id: uuid.UUID
    secret_key: str
    master_key: str
    first_day: date
    last_day: date
    influencer_id: str
    meta: dict[str, Any]


def _meta_path(backend: str) -> Path:
    return WORK_DIR / f"{backend}-meta.json"


def _sqlite_url() -> str:
    return f"sqlite:///{WORK_DIR / 'storeloop.db'}"


def _pg_url(admin_url: str) -> str:
    return make_url(admin_url).set(database=PG_DATABASE).render_as_string(hide_password=False)


def _fresh_database(backend: str, admin_url: str) -> str:
    if backend == "sqlite":
        for name in ("storeloop", "storeloop-inbox"):
            for suffix in ("", "-wal", "-shm"):
                (WORK_DIR / f"{name}.db{suffix}").unlink(missing_ok=True)
        return _sqlite_url()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))
    return _pg_url(admin_url)


def drop_database(backend: str, admin_url: str) -> None:
    if backend == "sqlite":
        for name in ("storeloop", "storeloop-inbox"):
            for suffix in ("", "-wal", "-shm"):
                (WORK_DIR / f"{name}.db{suffix}").unlink(missing_ok=True)
    else:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(PG_DATABASE)
                )
            )
    _meta_path(backend).unlink(missing_ok=True)


def _wanted(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "events_target": args.events,
        "days": args.days,
        "seed": args.seed,
        "payload_bytes": args.payload_bytes,
    }


def reusable(args: argparse.Namespace) -> Store | None:
    path = _meta_path(args.backend)
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    if meta.get("config") != _wanted(args):
        console.print(f"[yellow]kept database was made with {meta.get('config')}: reloading")
        return None
    url = _sqlite_url() if args.backend == "sqlite" else _pg_url(args.postgres_url)
    return _store_of(args.backend, url, meta)


def _store_of(backend: str, url: str, meta: dict[str, Any]) -> Store:
    return Store(
        backend=backend,
        url=url,
        workspace_id=uuid.UUID(meta["workspace_id"]),
        secret_key=meta["secret_key"],
        master_key=meta["master_key"],
        first_day=date.fromisoformat(meta["first_day"]),
        last_day=date.fromisoformat(meta["last_day"]),
        influencer_id=meta["influencer_id"],
        meta=meta,
    )


def _database_bytes(engine: Engine) -> int | None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int(pages) * int(size)


def build(args: argparse.Namespace) -> Store:
    """A fresh migrated database with the workspace and every raw row of the run."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    url = _fresh_database(args.backend, args.postgres_url)
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    master_key = os.urandom(32)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        workspace = create_workspace(session, master_key, "Bench Dashboard", "bench-dashboard")
        secret = create_api_key(session, workspace.id, KeyKind.SECRET, "bench").plaintext
    today = datetime.now(UTC).date()
    first_day = data.first_day_for(args.days, today)
    now = datetime.now(UTC)
    ids = data.Ids(args.seed)
    marketing = data.plan_marketing(np.random.default_rng(args.seed + 1), ids, first_day, args.days)
    data.insert_small(engine, data.marketing_rows(marketing, workspace.id, first_day, now))
    dropped: list[Index] = data.drop_bulk_indexes(engine)
    engine.dispose()

    started = time.perf_counter()
    generator = data.Generator(
        workspace_id=workspace.id,
        events=args.events,
        first_day=first_day,
        days=args.days,
        seed=args.seed,
        payload_bytes=args.payload_bytes,
        marketing=marketing,
        ids=ids,
    )
    plan_seconds = time.perf_counter() - started
    console.print(
        f"planned {generator.sessions:,} sessions of {generator.plan.visitors:,} visitors "
        f"(~{generator.events_per_session:.2f} events per session) in {plan_seconds:.1f}s"
    )
    if args.backend == "sqlite":
        path = str(make_url(url).database)

        def sink() -> data.Sink:
            return data.SqliteSink(path)
    else:
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

        def sink() -> data.Sink:
            return data.PostgresSink(plain)

    loaded = data.load(generator, sink, generator.sessions * generator.events_per_session)
    console.print(f"rows: {dict(generator.stats.counts)}")
    started = time.perf_counter()
    index_seconds = data.create_indexes(engine, dropped)
    index_total = time.perf_counter() - started
    console.print(f"indexes rebuilt in {index_total:.0f}s: {index_seconds}")
    vacuum_seconds = None
    if args.backend == "postgresql":
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE)"))
        vacuum_seconds = round(time.perf_counter() - started, 1)
        console.print(f"VACUUM (ANALYZE) in {vacuum_seconds}s")
    events = generator.stats.counts["events"]
    generation = {
        "plan_s": round(plan_seconds, 1),
        **loaded,
        "index_build_s": round(index_total, 1),
        "index_build_per_index_s": index_seconds,
        "vacuum_analyze_s": vacuum_seconds,
        "events_per_s_loaded": round(events / loaded["total_s"]),
        "events_per_s_including_indexes": round(events / (loaded["total_s"] + index_total)),
        "generator_seconds": {k: round(v, 1) for k, v in generator.stats.seconds.items()},
        "database_bytes": _database_bytes(engine),
    }
    busiest = max(marketing.influencers, key=lambda item: _influencer_weight(marketing, item[0]))
    meta = {
        "config": _wanted(args),
        "workspace_id": str(workspace.id),
        "secret_key": secret,
        "master_key": base64.b64encode(master_key).decode(),
        "first_day": first_day.isoformat(),
        "last_day": (first_day + timedelta(days=args.days - 1)).isoformat(),
        "influencer_id": str(uuid.UUID(hex=busiest[0])),
        "influencer_name": busiest[1],
        "rows": dict(generator.stats.counts),
        "sessions_per_visitor": round(generator.sessions / generator.plan.visitors, 3),
        "events_per_session_expected": round(generator.events_per_session, 3),
        "links": len(marketing.links),
        "influencers": len(marketing.influencers),
        "campaigns": len(marketing.campaigns),
        "posts": len(marketing.posts),
        "generation": generation,
        "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    engine.dispose()
    _meta_path(args.backend).write_text(json.dumps(meta, indent=2))
    return _store_of(args.backend, url, meta)


def _influencer_weight(marketing: data.Marketing, influencer_id: str) -> float:
    columns = [i for i, link in enumerate(marketing.links) if link.influencer_id == influencer_id]
    return float(marketing.link_weights[:, columns].sum())


def drop_extra_indexes(engine: Engine) -> None:
    """Indexes an earlier run added (bench_ix_*): the job is first measured on the schema as
    the migrations build it."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = connection.execute(
                text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'bench_ix_%'")
            ).scalars()
        else:
            names = connection.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'bench_ix_%'"
                )
            ).scalars()
        for name in list(names):
            connection.execute(text(f"DROP INDEX {name}"))


def add_extra_indexes(engine: Engine, specs: list[str]) -> list[dict[str, Any]]:
    """--extra-index 'TABLE (COL, ...) [WHERE ...]': an index the schema lacks, to measure
    what it would save."""
    done = []
    for number, spec in enumerate(specs):
        table = spec.split("(", 1)[0].strip()
        name = f"bench_ix_{number}_{table}"
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(text(f"CREATE INDEX {name} ON {spec}"))
            if engine.dialect.name == "postgresql":
                connection.execute(text(f"ANALYZE {table}"))
        done.append(
            {
                "index": f"CREATE INDEX {name} ON {spec}",
                "build_s": round(time.perf_counter() - started, 1),
            }
        )
        console.print(f"added: CREATE INDEX {name} ON {spec}")
    return done


def sample_days(store: Store, count: int) -> list[date]:
    """``count`` days spread evenly over the range (0: every day)."""
    span = (store.last_day - store.first_day).days + 1
    offsets = (
        range(span)
        if count <= 0 or count >= span
        else sorted(
            {
                round(index * (span - 1) / (count - 1)) if count > 1 else span // 2
                for index in range(count)
            }
        )
    )
    return [store.first_day + timedelta(days=offset) for offset in offsets]


def complete_rollups(store: Store, factory: sessionmaker[Session], skip: set[date]) -> float:
    """Recompute (untimed) the days a sampled job left out, so the reads see every day."""
    rest = [day for day in sample_days(store, 0) if day not in skip]
    if not rest:
        return 0.0
    console.print(f"completing the rollups of the {len(rest)} days not timed")
    started = time.perf_counter()
    with session_scope(factory) as session:
        begin_write(session)
        analytics_repository.mark_days(session, store.workspace_id, rest)
    job = _new_job(factory)
    while job():
        pass
    with session_scope(factory) as session:
        begin_write(session)
        tasks.rebuild_cohorts(session, store.workspace_id)
    return round(time.perf_counter() - started, 1)


# -- step 2: the rollup job ----------------------------------------------------------------------

_QUERY_METHODS = (
    "abandonment_minutes",
    "events_between",
    "visit_touchpoints_between",
    "orders_between",
    "merged_into",
    "earlier_orders_of_customers",
    "credits_between",
    "click_counts_between",
    "link_dimensions",
    "order_rollup_fingerprint",
    "replace_day",
    "all_orders",
    "replace_cohorts",
)


_COHORT_PARTS = ("all_orders", "cohort_rows", "replace_cohorts")
_READS = (
    "abandonment_minutes",
    "events_between",
    "visit_touchpoints_between",
    "orders_between",
    "merged_into",
    "earlier_orders_of_customers",
    "credits_between",
    "click_counts_between",
    "link_dimensions",
)


@contextmanager
def instrumented() -> Iterator[dict[str, Any]]:
    """Time the job's parts without touching src/: AnalyticsRepository's methods and the
    functions storeloop.analytics.tasks calls are wrapped, in this process only.

    Each compute_day call opens a new day record; the repository calls that follow (its reads,
    then replace_day and the fingerprints around it) add to that day. The cohorts recomputed at
    the end of a pass go to the pass record."""
    state: dict[str, Any] = {"days": [], "pass": defaultdict(float), "day": None}
    originals: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def timed(*args: Any, **kwargs: Any) -> Any:
            if name == "compute_day":
                state["day"] = {"day": args[1].isoformat(), "parts_s": defaultdict(float)}
                state["days"].append(state["day"])
            started = time.perf_counter()
            result = original(*args, **kwargs)
            seconds = time.perf_counter() - started
            day = state["day"]
            if name in _COHORT_PARTS or day is None:
                state["pass"][name] += seconds
            else:
                day["parts_s"][name] += seconds
                if name == "events_between":
                    day["events"] = len(result)
                elif name == "visit_touchpoints_between":
                    day["touchpoints"] = len(result)
                elif name == "credits_between":
                    day["credits"] = len(result)
                elif name == "compute_day":
                    day["rollup_rows"] = {
                        model.__tablename__: len(rows) for model, rows in result.items()
                    }
            return result

        setattr(owner, name, timed)

    for name in _QUERY_METHODS:
        if hasattr(AnalyticsRepository, name):
            wrap(AnalyticsRepository, name)
    wrap(tasks, "compute_day")
    wrap(tasks, "cohort_rows")
    try:
        yield state
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def _summary(values: list[float], scale: float = 1.0) -> dict[str, float]:
    if not values:
        return {}
    array = np.array(values) * scale
    return {
        "n": len(values),
        "mean": round(float(array.mean()), 4),
        "p50": round(float(np.percentile(array, 50)), 4),
        "p95": round(float(np.percentile(array, 95)), 4),
        "max": round(float(array.max()), 4),
        "total": round(float(array.sum()), 3),
    }


def _new_job(factory: sessionmaker[Session]) -> Callable[[], int]:
    """The worker's rollup job as storeloop.runtime builds it (settle 0: the marks are ours)."""
    return tasks.RefreshRollups(factory, settle_seconds=0)


def run_rollup_job(
    store: Store, factory: sessionmaker[Session], days: list[date]
) -> dict[str, Any]:
    """Mark these days dirty, then call the worker's rollup job (RefreshRollups: a pass of up
    to DAYS_PER_PASS days, each day in transactions of its own) until a pass does nothing,
    timing each day and each pass; then rebuild the cohorts once more, since the job rebuilds
    them at most once a minute."""
    with session_scope(factory) as session:
        begin_write(session)
        analytics_repository.mark_days(session, store.workspace_id, days)
    passes: list[dict[str, Any]] = []
    busy = machine_busy_fraction(1.0)
    started_job = time.perf_counter()
    during: dict[str, Any] = {}
    job = _new_job(factory)
    with cpu_accounting(during, lambda: [os.getpid()]), instrumented() as state:
        while True:
            state["pass"] = defaultdict(float)
            state["day"] = None
            started = time.perf_counter()
            done = job()
            elapsed = time.perf_counter() - started
            if not done:
                break
            cohorts_s = sum(state["pass"].get(name, 0.0) for name in _COHORT_PARTS)
            passes.append(
                {"days": done, "seconds": round(elapsed, 3), "cohorts_s": round(cohorts_s, 3)}
            )
            console.print(f"  pass: {done} days in {elapsed:.2f}s (cohorts {cohorts_s:.2f}s)")
        per_day = state["days"]
        started = time.perf_counter()
        with session_scope(factory) as session:
            begin_write(session)
            tasks.rebuild_cohorts(session, store.workspace_id)
        final_cohorts_s = time.perf_counter() - started
    job_seconds = time.perf_counter() - started_job
    return {
        **_rollup_report(per_day, passes, job_seconds, busy),
        "final_cohort_rebuild_s": round(final_cohorts_s, 3),
        "cpu_during": during,
    }


def _rollup_report(
    per_day: list[dict[str, Any]], passes: list[dict[str, Any]], job_seconds: float, busy: float
) -> dict[str, Any]:
    # compute_day's time includes the repository reads it makes: a day is compute_day, the
    # replace_day that writes it and the order-rollup fingerprints around it.
    for day in per_day:
        parts = day["parts_s"]
        day["s"] = round(
            parts.get("compute_day", 0.0)
            + parts.get("replace_day", 0.0)
            + parts.get("order_rollup_fingerprint", 0.0),
            4,
        )
        day["parts_s"] = {key: round(value, 4) for key, value in parts.items()}
    parts_summary = {}
    for key in (*_READS, "compute_day", "replace_day", "order_rollup_fingerprint"):
        parts_summary[key] = _summary([day["parts_s"].get(key, 0.0) for day in per_day])
    python_compute = [
        day["parts_s"].get("compute_day", 0.0) - sum(day["parts_s"].get(key, 0.0) for key in _READS)
        for day in per_day
    ]
    parts_summary["python_in_compute_day"] = _summary(python_compute)
    events = [day.get("events", 0) for day in per_day]
    return {
        "days": len(per_day),
        "job_total_s": round(job_seconds, 2),
        "passes": len(passes),
        "days_per_pass": tasks.DAYS_PER_PASS,
        "events_per_day": _summary([float(value) for value in events]),
        "per_day_s": _summary([day["s"] for day in per_day]),
        "per_day_parts_s": parts_summary,
        "per_pass_s": _summary([item["seconds"] for item in passes]),
        "cohort_rebuilds_in_passes_s": [item["cohorts_s"] for item in passes if item["cohorts_s"]],
        "machine_busy_before": round(busy, 3),
        "days_detail": per_day,
    }


def _print_job(job: dict[str, Any]) -> None:
    per_day = job["per_day_s"]
    console.print(
        f"recompute per day: mean {per_day['mean']:.2f}s, p95 {per_day['p95']:.2f}s, "
        f"max {per_day['max']:.2f}s; job {job['job_total_s']:.0f}s for {job['days']} days"
    )


def rollup_rows(engine: Engine, workspace_id: uuid.UUID) -> dict[str, int]:
    counts = {}
    with engine.connect() as connection:
        for model in ROLLUP_MODELS:
            counts[model.__tablename__] = int(
                connection.execute(
                    select(func.count())
                    .select_from(model)
                    .where(model.workspace_id == workspace_id)
                ).scalar_one()
            )
    return counts


# -- step 3: the calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    endpoint: str
    range_days: int
    filter: str
    params: dict[str, str]
    run: Callable[[Session], Any]


def build_calls(store: Store) -> list[Call]:
    workspace = store.workspace_id
    influencer = uuid.UUID(store.influencer_id)
    filters: dict[str, dict[str, Any]] = {
        "none": {},
        "influencer": {"influencer_id": influencer},
        "channel": {"channel": CHANNEL_FILTER},
        "device": {"device": DEVICE_FILTER},
    }
    calls: list[Call] = []
    for range_days in (7, 30, 90):
        end = store.last_day
        start = end - timedelta(days=range_days - 1)
        base = {"start": start.isoformat(), "end": end.isoformat()}

        def query(values: dict[str, Any], start: date = start, end: date = end) -> KpiQuery:
            return KpiQuery(start=start, end=end, **values)

        for label, values in filters.items():
            params = {**base, **{key: str(value) for key, value in values.items()}}
            kpi = query(values)
            calls.append(
                Call(
                    f"overview {range_days}d {label}",
                    "overview",
                    range_days,
                    label,
                    params,
                    lambda s, q=kpi: service.overview(s, workspace, q),
                )
            )
            calls.append(
                Call(
                    f"timeseries/day {range_days}d {label}",
                    "timeseries",
                    range_days,
                    label,
                    {**params, "granularity": "day"},
                    lambda s, q=kpi: service.timeseries(s, workspace, q, "day"),
                )
            )
            calls.append(
                Call(
                    f"funnel {range_days}d {label}",
                    "funnel",
                    range_days,
                    label,
                    params,
                    lambda s, q=kpi: service.funnel(s, workspace, q),
                )
            )
        if range_days <= 30:
            for label in ("none", "device"):
                params = {**base, **{k: str(v) for k, v in filters[label].items()}}
                kpi = query(filters[label])
                calls.append(
                    Call(
                        f"timeseries/hour {range_days}d {label}",
                        "timeseries",
                        range_days,
                        label,
                        {**params, "granularity": "hour"},
                        lambda s, q=kpi: service.timeseries(s, workspace, q, "hour"),
                    )
                )
        if range_days == 90:
            kpi = query({})
            calls.append(
                Call(
                    f"timeseries/week {range_days}d none",
                    "timeseries",
                    range_days,
                    "none",
                    {**base, "granularity": "week"},
                    lambda s, q=kpi: service.timeseries(s, workspace, q, "week"),
                )
            )
        calls.append(
            Call(
                f"cohorts {range_days}d",
                "cohorts",
                range_days,
                "none",
                base,
                lambda s, a=start, b=end: service.cohorts(s, workspace, a, b),
            )
        )
        for group in ("influencer", "campaign", "channel"):
            kpi = query({})
            calls.append(
                Call(
                    f"breakdown/{group} {range_days}d none",
                    "breakdown",
                    range_days,
                    "none",
                    {**base, "by": group, "models": COMPARED_MODELS},
                    lambda s, q=kpi, g=group: service.breakdown(s, workspace, q, g, COMPARED),
                )
            )
        kpi = query(filters["device"])
        calls.append(
            Call(
                f"breakdown/influencer {range_days}d device",
                "breakdown",
                range_days,
                "device",
                {**base, "by": "influencer", "models": COMPARED_MODELS, "device": DEVICE_FILTER},
                lambda s, q=kpi: service.breakdown(s, workspace, q, "influencer", COMPARED),
            )
        )
    return calls


@contextmanager
def cpu_accounting(record: dict[str, Any], pids: Callable[[], list[int]]) -> Iterator[None]:
    """CPU used during a phase: by the processes measured (this one, the server) and by
    everything else on the machine (neighbours; PostgreSQL counts as 'other' too)."""
    busy_before, total_before = machine_busy_seconds()
    own_before = sum(tree_cpu_seconds(pid) for pid in pids())
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    busy_after, total_after = machine_busy_seconds()
    own = sum(tree_cpu_seconds(pid) for pid in pids()) - own_before
    cores = max(total_after - total_before, 1e-9)
    record.update(
        {
            "wall_s": round(elapsed, 1),
            "machine_busy_fraction": round((busy_after - busy_before) / cores, 3),
            "measured_processes_cpu_s": round(own, 1),
            "other_cpu_fraction": round(max(busy_after - busy_before - own, 0) / cores, 3),
        }
    )


def round_robin(
    calls: list[Call], repetitions: int, warmup: int, once: Callable[[Call], float]
) -> dict[str, list[float]]:
    """Time every call ``repetitions`` times, one round over all calls at a time, after
    ``warmup`` untimed rounds: a page loads several different calls, not one call 50 times."""
    for _ in range(warmup):
        for call in calls:
            once(call)
    timings: dict[str, list[float]] = {call.name: [] for call in calls}
    for _ in range(repetitions):
        for call in calls:
            timings[call.name].append(once(call))
    return timings


def measure_service(
    factory: sessionmaker[Session],
    calls: list[Call],
    repetitions: int,
    warmup: int,
    record: dict[str, Any],
) -> dict[str, list[float]]:
    def once(call: Call) -> float:
        started = time.perf_counter()
        with session_scope(factory) as session:
            call.run(session)
        return time.perf_counter() - started

    # As the app does once started: what is alive now (the loader's leftovers) stays out of
    # the collector's way.
    gc.collect()
    gc.freeze()
    try:
        with cpu_accounting(record, lambda: [os.getpid()]):
            return round_robin(calls, repetitions, warmup, once)
    finally:
        gc.unfreeze()


def app_kind() -> str:
    """'storeloop.app' when the whole app imports (it includes the dashboard pages, which may
    be mid-rewrite), else 'analytics router only'."""
    probe = subprocess.run(
        [sys.executable, "-c", "import storeloop.app"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode == 0:
        return "storeloop.app"
    last = (probe.stderr.strip().splitlines() or ["?"])[-1]
    console.print(f"[yellow]storeloop.app does not import ({last}): serving the analytics router")
    return "analytics router only"


def server_app() -> FastAPI:
    """uvicorn factory of the server under test (run in its own process)."""
    if os.environ.get("BENCH_DASHBOARD_APP") == "storeloop.app":
        from storeloop.app import create_app

        return create_app()
    # The analytics endpoints with the project's own runtime and dependencies, as create_app
    # wires them; without the dashboard pages, the tracking middleware and CORS.
    from storeloop.analytics.endpoints import router
    from storeloop.config import get_settings
    from storeloop.kit.errors import StoreloopError, error_body
    from storeloop.runtime import Runtime

    runtime = Runtime(get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(lifespan=lifespan)
    app.state.runtime = runtime

    @app.exception_handler(StoreloopError)
    async def storeloop_error(_request: Request, exc: StoreloopError) -> Response:
        return Response(error_body(exc), status_code=exc.status_code, media_type="application/json")

    app.include_router(router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def measure_http(
    store: Store,
    calls: list[Call],
    repetitions: int,
    warmup: int,
    kind: str,
    record: dict[str, Any],
) -> tuple[dict[str, list[float]], dict[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "STORELOOP_ENVIRONMENT": "production",
        "STORELOOP_DATABASE_URL": store.url,
        "STORELOOP_DATA_DIR": str(WORK_DIR),
        "STORELOOP_MASTER_KEY": store.master_key,
        "STORELOOP_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "STORELOOP_INPROCESS_WORKER": "false",
        "BENCH_DASHBOARD_APP": kind,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.dashboard:server_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    sizes: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {store.secret_key}", "Accept": "application/json"}
    with running(command, env, f"http://127.0.0.1:{port}/healthz", WORK_DIR / "server.log"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def once(call: Call) -> float:
            path = f"/api/v1/analytics/{call.endpoint}?{urllib.parse.urlencode(call.params)}"
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}: {body[:500]!r}")
            sizes[call.name] = len(body)
            return elapsed

        try:
            with cpu_accounting(record, lambda: [os.getpid()]):  # the server is a child
                timings = round_robin(calls, repetitions, warmup, once)
        finally:
            connection.close()
    return timings, sizes


# -- step 4: the baseline ------------------------------------------------------------------------

_SESSIONS_SQLITE = """
WITH e AS (
  SELECT coalesce(profile_id, anonymous_id) AS v, timestamp AS ts,
         lag(timestamp) OVER (PARTITION BY coalesce(profile_id, anonymous_id)
                              ORDER BY timestamp) AS prev
  FROM events WHERE workspace_id = :w AND timestamp >= :s AND timestamp < :e
)
SELECT count(DISTINCT v),
       sum(CASE WHEN prev IS NULL OR substr(ts, 1, 10) <> substr(prev, 1, 10)
                  OR (julianday(ts) - julianday(prev)) * 1440.0 > 30 THEN 1 ELSE 0 END)
FROM e
"""
_SESSIONS_POSTGRESQL = """
WITH e AS (
  SELECT coalesce(profile_id::text, anonymous_id) AS v, timestamp AS ts,
         lag(timestamp) OVER (PARTITION BY coalesce(profile_id::text, anonymous_id)
                              ORDER BY timestamp) AS prev
  FROM events WHERE workspace_id = :w AND timestamp >= :s AND timestamp < :e
)
SELECT count(DISTINCT v),
       sum(CASE WHEN prev IS NULL
                  OR (ts AT TIME ZONE 'UTC')::date <> (prev AT TIME ZONE 'UTC')::date
                  OR ts - prev > interval '30 minutes' THEN 1 ELSE 0 END)
FROM e
"""
_COUNT = """
SELECT count(*), count(DISTINCT profile_id) FROM events
WHERE workspace_id = :w AND timestamp >= :s AND timestamp < :e
"""


def measure_baseline(
    engine: Engine, store: Store, repetitions: int, ranges: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Sessions (30-minute gap, split at midnight) and visitors counted from the raw events in
    one statement, and the cheapest raw query (count and distinct profiles): what a dashboard
    without rollups would run. Merged profiles are not followed (the rollups do)."""
    postgres = engine.dialect.name == "postgresql"
    results = []
    for range_days in ranges:
        start = datetime.combine(
            store.last_day - timedelta(days=range_days - 1), datetime.min.time(), UTC
        )
        end = datetime.combine(store.last_day + timedelta(days=1), datetime.min.time(), UTC)
        if postgres:
            params: dict[str, Any] = {"w": store.workspace_id, "s": start, "e": end}
        else:
            params = {"w": store.workspace_id.hex, "s": data.as_text(start), "e": data.as_text(end)}
        for name, statement in (
            (
                "sessions and visitors (window function)",
                _SESSIONS_POSTGRESQL if postgres else _SESSIONS_SQLITE,
            ),
            ("count(*) and count(DISTINCT profile_id)", _COUNT),
        ):
            seconds = []
            answer: Any = None
            for _ in range(repetitions):
                with engine.connect() as connection:
                    started = time.perf_counter()
                    answer = connection.execute(text(statement), params).one()
                    seconds.append(time.perf_counter() - started)
            results.append(
                {
                    "query": name,
                    "range_days": range_days,
                    "ms": _summary(seconds, 1000.0),
                    "answer": [int(value or 0) for value in answer],
                }
            )
            console.print(
                f"  baseline {name}, {range_days}d: {statistics.median(seconds) * 1000:,.0f} ms "
                f"-> {[int(value or 0) for value in answer]}"
            )
    return results


# -- the run -------------------------------------------------------------------------------------


def _label(events: int) -> str:
    if events >= 1_000_000 and events % 100_000 == 0:
        return f"{events / 1_000_000:g}m"
    return f"{events / 1_000:g}k"


def _report_calls(
    calls: list[Call],
    service_timings: dict[str, list[float]],
    http_timings: dict[str, list[float]] | None,
    sizes: dict[str, int],
) -> list[dict[str, Any]]:
    rows = []
    for call in calls:
        row: dict[str, Any] = {
            "call": call.name,
            "endpoint": call.endpoint,
            "range_days": call.range_days,
            "filter": call.filter,
            "params": {k: v for k, v in call.params.items() if k not in ("start", "end")},
            "service_ms": _summary(service_timings[call.name], 1000.0),
        }
        if http_timings is not None:
            row["http_ms"] = _summary(http_timings[call.name], 1000.0)
            row["response_bytes"] = sizes.get(call.name)
        measured = row.get("http_ms") or row["service_ms"]
        row["meets_p95_target"] = measured["p95"] <= TARGET_MS if measured else None
        rows.append(row)
    return rows


def _print_calls(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"p95 target {TARGET_MS:.0f} ms (HTTP when measured)")
    for column in ("call", "http p50", "http p95", "http max", "svc p50", "svc p95", "ok"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for row in rows:
        http = row.get("http_ms") or {}
        table.add_row(
            row["call"],
            f"{http.get('p50', float('nan')):.1f}",
            f"{http.get('p95', float('nan')):.1f}",
            f"{http.get('max', float('nan')):.1f}",
            f"{row['service_ms'].get('p50', float('nan')):.1f}",
            f"{row['service_ms'].get('p95', float('nan')):.1f}",
            {True: "yes", False: "NO", None: "-"}[row["meets_p95_target"]],
        )
    console.print(table)


def sanity(factory: sessionmaker[Session], store: Store) -> dict[str, Any]:
    """The 90-day overview from the rollups, to set beside the baseline's raw counts."""
    query = KpiQuery(start=store.last_day - timedelta(days=89), end=store.last_day)
    with session_scope(factory) as session:
        result = service.overview(session, store.workspace_id, query)
    return {
        "sessions": result.sessions,
        "unique_visitors": result.unique_visitors,
        "unique_visitors_exact": result.unique_visitors_exact,
        "orders": str(result.orders),
        "conversion_rate": result.conversion_rate,
        "net_revenue": str(result.net_revenue),
        "currency": result.currency,
        "customers": result.customers,
        "new_customers": result.new_customers,
        "cart_abandonment_rate": result.cart_abandonment_rate,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=300_000, help="raw events to load")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--payload-bytes", type=int, default=256)
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--baseline-repetitions", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("STORELOOP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="an administrative URL: the benchmark creates its own database next to it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument("--skip-rollup-job", action="store_true", help="with --reuse")
    parser.add_argument(
        "--job-sample-days",
        type=int,
        default=0,
        help="time the job on this many days spread over the range (0: all); the other days "
        "are then recomputed untimed, or timed with --extra-index",
    )
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--extra-index",
        action="append",
        default=[],
        metavar="'TABLE (COL, ...) [WHERE ...]'",
        help="after the job on the schema as migrated, add this index and time the job again "
        "over every day",
    )
    parser.add_argument("--note", default=None, help="recorded in the results")
    args = parser.parse_args(argv)
    if args.backend == "postgresql":
        from benchmarks.servers import postgres_reachable

        problem = postgres_reachable(args.postgres_url)
        if problem is not None:
            console.print(f"[red]PostgreSQL unreachable: {problem}")
            return 2
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    store = reusable(args) if args.reuse else None
    reused = store is not None
    if store is None:
        console.rule(f"loading {args.events:,} events into {args.backend}")
        store = build(args)
    else:
        console.print(f"reusing the kept {args.backend} database ({store.meta['rows']})")
    engine = create_db_engine(store.url)
    factory = make_session_factory(engine)
    drop_extra_indexes(engine)
    extra: list[dict[str, Any]] = []
    try:
        rollup_fixed = None
        if args.skip_rollup_job and store.meta.get("rollup_job"):
            rollup = {**store.meta["rollup_job"], "reused_from_earlier_run": True}
            if store.meta.get("rollup_job_with_extra_indexes"):
                rollup_fixed = {**store.meta["rollup_job_with_extra_indexes"], "reused": True}
            if args.extra_index:
                extra = add_extra_indexes(engine, args.extra_index)
        else:
            timed_days = sample_days(store, args.job_sample_days)
            console.rule(f"rollup job, schema as migrated: {len(timed_days)} days dirty")
            rollup = run_rollup_job(store, factory, timed_days)
            _print_job(rollup)
            if args.extra_index:
                extra = add_extra_indexes(engine, args.extra_index)
                console.rule("rollup job with the extra indexes: every day dirty")
                rollup_fixed = run_rollup_job(store, factory, sample_days(store, 0))
                _print_job(rollup_fixed)
            else:
                rollup["untimed_completion_s"] = complete_rollups(store, factory, set(timed_days))
            store.meta["rollup_job"] = rollup
            store.meta["rollup_job_with_extra_indexes"] = rollup_fixed
            _meta_path(args.backend).write_text(json.dumps(store.meta, indent=2, default=str))
        rows = rollup_rows(engine, store.workspace_id)
        console.print(f"rollup rows: {rows}")
        calls = build_calls(store)
        overview = sanity(factory, store)
        service_timings: dict[str, list[float]] = {call.name: [] for call in calls}
        busy: dict[str, float] = {}
        phases: dict[str, dict[str, Any]] = {}
        if not args.skip_service:
            console.rule(f"service: {len(calls)} calls x {args.repetitions}")
            busy["service"] = round(machine_busy_fraction(1.0), 3)
            phases["service"] = {}
            service_timings = measure_service(
                factory, calls, args.repetitions, args.warmup, phases["service"]
            )
        http_timings = None
        sizes: dict[str, int] = {}
        kind = None
        if not args.skip_http:
            kind = app_kind()
            console.rule(f"HTTP ({kind}): {len(calls)} calls x {args.repetitions}")
            busy["http"] = round(machine_busy_fraction(1.0), 3)
            phases["http"] = {}
            http_timings, sizes = measure_http(
                store, calls, args.repetitions, args.warmup, kind, phases["http"]
            )
        report = _report_calls(calls, service_timings, http_timings, sizes)
        _print_calls(report)
        baseline = []
        if not args.skip_baseline:
            console.rule("baseline: counting raw rows")
            busy["baseline"] = round(machine_busy_fraction(1.0), 3)
            phases["baseline"] = {}
            with cpu_accounting(phases["baseline"], lambda: [os.getpid()]):
                baseline = measure_baseline(engine, store, args.baseline_repetitions, (7, 90))
        machine = machine_info(
            postgresql=postgres_version(args.postgres_url)
            if args.backend == "postgresql"
            else None,
            load_average_before=[round(value, 2) for value in load_before],
        )
        result = {
            "benchmark": "dashboard",
            "machine": machine,
            "backend": args.backend,
            "note": args.note,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {
                **_wanted(args),
                "repetitions": args.repetitions,
                "warmup_rounds": args.warmup,
                "percentiles": "numpy.percentile, linear interpolation",
                "http": "uvicorn in its own process, one keep-alive connection, sequential",
                "http_app": kind,
                "channel_filter": CHANNEL_FILTER,
                "device_filter": DEVICE_FILTER,
                "influencer_filter": f"{store.meta.get('influencer_name')} ({store.influencer_id})",
                "compared_models": COMPARED_MODELS,
                "extra_indexes": extra,
            },
            "data": {
                "first_day": store.first_day.isoformat(),
                "last_day": store.last_day.isoformat(),
                "reused_database": reused,
                **{
                    k: store.meta[k]
                    for k in (
                        "rows",
                        "sessions_per_visitor",
                        "links",
                        "influencers",
                        "campaigns",
                        "posts",
                        "generation",
                    )
                },
            },
            "rollup_job": rollup,
            "rollup_job_with_extra_indexes": rollup_fixed,
            "rollup_rows": rows,
            "machine_busy_before": busy,
            "cpu_during": phases,
            "overview_90d": overview,
            "calls": report,
            "baseline": baseline,
            "target_p95_ms": TARGET_MS,
            "calls_meeting_target": sum(1 for row in report if row["meets_p95_target"] is True),
            "calls_total": len(report),
        }
        RESULTS.mkdir(exist_ok=True)
        output = RESULTS / f"dashboard-{args.backend}-{_label(args.events)}.json"
        output.write_text(json.dumps(result, indent=2, default=str) + "\n")
        console.print(f"CPU during the phases: {phases}")
        console.print(
            f"{result['calls_meeting_target']}/{result['calls_total']} calls at p95 <= "
            f"{TARGET_MS:.0f} ms; results in {output.relative_to(REPO)}"
        )
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(args.backend, args.postgres_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
