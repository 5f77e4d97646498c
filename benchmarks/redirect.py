"""Redirect benchmark: requests/s and latency of `GET /r/{code}` with every click recorded.

Starts the real server (`storeloop serve`, production mode, one process) on a throwaway SQLite
file with one hot tracked link, drives it with wrk, stops the server cleanly and counts the
clicks stored for the measured link: every answered redirect must be a stored click. Beside it,
on the same machine: a bare Starlette app that answers the same path with a fixed 302.

    python -m benchmarks.redirect [--duration 10] [--connections 16] [--runs 2]

Needs wrk (`apt-get install wrk`). Results: benchmarks/results/redirect-sqlite.json; the method
and the numbers are discussed in docs/benchmarks.md ("Redirect").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from benchmarks import servers
from benchmarks.machine import machine_info
from benchmarks.procstat import CpuSample, cpu_between, machine_busy_fraction
from benchmarks.wrk import LoadFailed, LoadResult, parse_output, require_wrk, wrk_version
from storeloop.db import create_db_engine, session_scope
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.models import Campaign, Click, Influencer, Link, StoreSettings, Workspace

RESULTS = Path(__file__).with_name("results")
SCRIPT = Path(__file__).with_name("wrk_redirect.lua")
TARGET_REQUESTS_PER_S_PER_CORE = 12_000
TARGET_P99_MS = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    parser.add_argument("--runs", type=int, default=2, help="measured runs of each server")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra STORELOOP_NAME=VALUE for the server (repeatable), e.g. click_flush_ms=50",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="storeloop runs only")
    parser.add_argument(
        "--user-agents",
        type=int,
        default=1,
        help="distinct user agents wrk cycles through (e.g. 10000: the bot rules' caches miss)",
    )
    return parser.parse_args(argv)


def run_wrk(url: str, args: argparse.Namespace, seconds: int, expected: int = 302) -> LoadResult:
    command = [
        require_wrk(),
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={SCRIPT}",
        url,
    ]
    env = {
        **os.environ,
        "BENCH_PATH": "/" + url.split("/", 3)[3],
        "BENCH_STATUS": str(expected),
        "BENCH_USER_AGENTS": str(args.user_agents),
    }
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise LoadFailed(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    result = parse_output(completed.stdout)
    errors = {name: count for name, count in result.socket_errors.items() if count}
    if result.non2xx or errors:
        raise LoadFailed(
            f"{url}: {result.non2xx} unexpected responses, socket errors {errors or 'none'}; "
            f"first: {result.first_error}"
        )
    return result


def measure(url: str, args: argparse.Namespace, pid: int) -> dict[str, Any]:
    neighbours = machine_busy_fraction()
    before = CpuSample.now(pid)
    result = run_wrk(url, args, args.duration)
    cpu = cpu_between(before, CpuSample.now(pid), result.requests)
    per_core = (
        round(1000 / cpu["server_cpu_ms_per_request"]) if cpu["server_cpu_ms_per_request"] else None
    )
    return {
        **result.to_dict(),
        "cpu": cpu | {"machine_busy_before_run": round(neighbours, 3)},
        "requests_per_s_per_server_core": per_core,
    }


def _seed(database_url: str, hot_codes: list[str]) -> dict[str, uuid.UUID]:
    """Allowed domain, an influencer, a campaign and one link per code in workspace 'bench'."""
    engine = create_db_engine(database_url)
    links: dict[str, uuid.UUID] = {}
    with session_scope(sessionmaker(engine)) as session:
        workspace_id = session.scalar(select(Workspace.id).where(Workspace.slug == "bench"))
        assert workspace_id is not None
        session.add(
            StoreSettings(
                workspace_id=workspace_id,
                allowed_domains=["store.example"],
                lookback_days=30,
                time_decay_half_life_days=7.0,
                discount_code_precedence=True,
                channel_rules=[],
                updated_at=utcnow(),
            )
        )
        influencer = Influencer(
            id=new_id(), workspace_id=workspace_id, name="Ana", handles={"instagram": "@ana"}
        )
        campaign = Campaign(
            id=new_id(),
            workspace_id=workspace_id,
            name="Spring Drop",
            channel="Influencer",
            currency="EUR",
        )
        session.add_all([influencer, campaign])
        session.flush()
        for code in hot_codes:
            link = Link(
                id=new_id(),
                workspace_id=workspace_id,
                code=code,
                code_key=code.lower(),
                destination_url="https://store.example/products/linen-shirt?color=blue",
                influencer_id=influencer.id,
                campaign_id=campaign.id,
                utm={},
                is_active=True,
            )
            session.add(link)
            links[code] = link.id
    engine.dispose()
    return links


def _clicks(database_url: str, link_id: uuid.UUID) -> dict[str, int]:
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        total = connection.scalar(
            select(func.count()).select_from(Click).where(Click.link_id == link_id)
        )
        bots = connection.scalar(
            select(func.count())
            .select_from(Click)
            .where(Click.link_id == link_id, Click.is_bot.is_(True))
        )
    engine.dispose()
    return {"clicks_stored": int(total or 0), "clicks_flagged_bot": int(bots or 0)}


def storeloop_run(args: argparse.Namespace, workdir: Path, index: int) -> dict[str, Any]:
    directory = workdir / f"storeloop-{index}"
    directory.mkdir()
    database_url = f"sqlite:///{directory}/storeloop.db"
    env = servers.storeloop_env(database_url, directory / "data")
    for item in args.setting:
        name, _, value = item.partition("=")
        env[f"STORELOOP_{name.upper()}"] = value
    servers.create_write_key(env)  # migrate + workspace 'bench' through the CLI
    links = _seed(database_url, ["warmup", "hot-link"])
    port = servers.free_port()
    base = f"http://127.0.0.1:{port}"
    log = directory / "server.log"
    command = servers.storeloop_command(port, 1)
    print(f"  storeloop, run {index} ...", flush=True)
    with servers.running(command, env, f"{base}/readyz", log) as process:
        run_wrk(f"{base}/r/warmup", args, args.warmup)
        load = measure(f"{base}/r/hot-link", args, process.pid)
    # The server has stopped cleanly: every accepted click must be on disk now.
    stored = _clicks(database_url, links["hot-link"])
    # wrk stops counting at the deadline; requests in flight then (at most one per connection)
    # may still be answered and recorded by the server.
    unanswered = stored["clicks_stored"] - load["requests"]
    load |= stored | {
        "clicks_minus_requests": unanswered,
        "clicks_match": 0 <= unanswered <= args.connections,
    }
    print(_line("storeloop /r/{code}", load), flush=True)
    return load


def baseline_run(args: argparse.Namespace, workdir: Path, index: int) -> dict[str, Any]:
    port = servers.free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.baseline_redirect_app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "info",
        "--no-access-log",
    ]
    print(f"  bare Starlette redirect, run {index} ...", flush=True)
    log = workdir / f"baseline-{index}.log"
    with servers.running(command, dict(os.environ), f"{base}/readyz", log) as process:
        run_wrk(f"{base}/r/warmup", args, args.warmup)
        load = measure(f"{base}/r/hot-link", args, process.pid)
    print(_line("bare Starlette redirect", load), flush=True)
    return load


def _line(name: str, load: dict[str, Any]) -> str:
    latency = load["latency_ms"]
    extra = ""
    if "clicks_stored" in load:
        extra = f", clicks stored {load['clicks_stored']:,} for {load['requests']:,} answered"
    return (
        f"    {name}: {load['requests_per_s']:,.0f} req/s, p50 {latency['p50']} ms,"
        f" p99 {latency['p99']} ms, server {load['cpu']['server_cpu_ms_per_request']} CPU-ms/req"
        f" (= {load['requests_per_s_per_server_core']:,} req/s per core){extra}"
    )


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(runs, key=lambda run: run["requests_per_s"])
    per_core = max(run["requests_per_s_per_server_core"] or 0 for run in runs)
    return {
        "requests_per_s_best": best["requests_per_s"],
        "p99_ms_at_best": best["latency_ms"]["p99"],
        "requests_per_s_per_core_best": per_core,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    report: dict[str, Any] = {"backend": "sqlite", "storeloop": [], "baseline_starlette": []}
    with tempfile.TemporaryDirectory(prefix="storeloop-bench-redirect-") as workdir:
        for index in range(1, args.runs + 1):
            report["storeloop"].append(storeloop_run(args, Path(workdir), index))
            if not args.skip_baseline:
                report["baseline_starlette"].append(baseline_run(args, Path(workdir), index))
    ours = summary(report["storeloop"])
    report["targets"] = {
        "requests_per_s_per_core_target": TARGET_REQUESTS_PER_S_PER_CORE,
        "p99_ms_target": TARGET_P99_MS,
        **ours,
        "per_core_met": ours["requests_per_s_per_core_best"] >= TARGET_REQUESTS_PER_S_PER_CORE,
        "p99_met": ours["p99_ms_at_best"] <= TARGET_P99_MS,
        "every_click_stored": all(run["clicks_match"] for run in report["storeloop"]),
    }
    if report["baseline_starlette"]:
        report["baseline_summary"] = summary(report["baseline_starlette"])
    report["settings"] = vars(args)
    report["machine"] = machine_info(wrk=wrk_version())
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    name = "redirect-sqlite.json" if not args.setting else "redirect-sqlite-custom.json"
    if args.user_agents != 1:
        name = name.replace(".json", f"-{args.user_agents}-user-agents.json")
    path = RESULTS / name
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    t = report["targets"]
    print(
        f"\ntarget {TARGET_REQUESTS_PER_S_PER_CORE:,} req/s per core:"
        f" {'met' if t['per_core_met'] else 'MISSED'} ({t['requests_per_s_per_core_best']:,});"
        f" p99 <= {TARGET_P99_MS} ms: {'met' if t['p99_met'] else 'MISSED'}"
        f" ({t['p99_ms_at_best']} ms); every click stored: {t['every_click_stored']}"
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
