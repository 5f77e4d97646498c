"""CPU per `POST /v1/batch` request and per 100 processed events, measured in one process.

Wall-clock benchmarks on a shared machine move with the neighbours; CPU time moves much less.
This drives the ASGI app directly (no sockets, no uvicorn): 16 concurrent requests of 100
realistic events, the group-commit writer thread included, then drains the inbox with the
processor (unique message ids), and reports `time.process_time()` per request and per 100 events.

    python -m benchmarks.ingest_cpu [--backend sqlite|postgresql] [--requests 1500]
                                    [--no-fast-path] [--paced 500 [--seconds 10]]

`--no-fast-path` sends every event through the full validator (the body is still read by
simdjson and msgspec first, then parsed by orjson).

`--paced R` sends R requests/s instead, with independent (Poisson) arrivals, as the paced
phase of `benchmarks.ingest` does, and reports the latency of each request from its scheduled
arrival to its answer (p50, p90, p99, max): the API's own tail without sockets, uvicorn or wrk
on the cores, and with less noise than them; and the same for the writer's group commits
(``commit_*``). (Wall-clock: compare runs of one sitting.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from benchmarks import payloads, servers
from storeloop import migrate
from storeloop.app import create_app
from storeloop.config import Settings, generate_key
from storeloop.db import create_db_engine, session_scope
from storeloop.runtime import Runtime
from storeloop.workspaces.service import KeyKind, create_api_key, create_workspace

CONCURRENCY = 16
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


async def _post(app: App, body: bytes, authorization: bytes) -> None:
    sent: list[Message] = []
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", authorization),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/batch",
        "raw_path": b"/v1/batch",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"POST /v1/batch answered {sent[0]['status']}")


async def _load(app: App, bodies: list[bytes], authorization: bytes, count: int, tag: str) -> None:
    """``count`` requests over 16 connections; every messageId made unique with ``tag``."""
    remaining = list(range(count))

    async def connection() -> None:
        while remaining:
            index = remaining.pop()
            unique = f"{tag}-{index:08x}-".encode()
            body = bodies[index % len(bodies)].replace(b"ajs-00000000-", unique)
            await _post(app, body, authorization)

    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))


async def _paced(
    app: App, bodies: list[bytes], authorization: bytes, rate: float, seconds: float
) -> list[float]:
    """Requests at ``rate`` per second with exponential gaps for ``seconds``; the latency of
    each from its scheduled arrival (a request the loop starts late is late by that much)."""
    count = int(rate * seconds)
    prepared = [
        bodies[index % len(bodies)].replace(b"ajs-00000000-", f"paced-{index:08x}-".encode())
        for index in range(count)
    ]
    gaps = random.Random(1)
    latencies: list[float] = []

    async def request(body: bytes, arrival: float) -> None:
        await _post(app, body, authorization)
        latencies.append(time.perf_counter() - arrival)

    tasks = []
    arrival = time.perf_counter()
    for body in prepared:
        arrival += gaps.expovariate(rate)
        delay = arrival - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(request(body, arrival)))
    await asyncio.gather(*tasks)
    return latencies


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(fraction: float) -> float:
        return round(ordered[int(fraction * (len(ordered) - 1))] * 1000, 2)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)}


def _time_commits(runtime: Runtime) -> list[float]:
    """The duration of each of the writer's group commits from now on: the insert, its commit
    and answering the group's requests (for the tail: a slow commit holds up every request of
    its group)."""
    durations: list[float] = []
    commit = runtime.writer._commit

    def timed(group: list[Any]) -> None:
        started = time.perf_counter()
        commit(group)
        durations.append(time.perf_counter() - started)

    runtime.writer._commit = timed  # type: ignore[method-assign]
    return durations


def _write_key(runtime: Runtime) -> bytes:
    with session_scope(runtime.session_factory) as session:
        workspace = create_workspace(session, runtime.keyring.master_key, "Bench", "bench")
        key = create_api_key(session, workspace.id, KeyKind.WRITE, "bench").plaintext
    return ("Basic " + base64.b64encode(f"{key}:".encode()).decode()).encode()


def measure(
    database_url: str,
    requests: int,
    *,
    fast_path: bool,
    paced: float | None = None,
    seconds: float = 10.0,
) -> dict[str, float]:
    engine = create_db_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = Settings(
        database_url=database_url,
        master_key=generate_key(),
        secret_key=generate_key(),
        inprocess_worker=False,
        rate_limit="10000000/second",
        environment="production",
    )
    if not fast_path:
        from storeloop.ingestion.fastpath import SliceChecker

        SliceChecker.verdicts = lambda self, slices: [False] * len(slices)  # type: ignore[method-assign]
        SliceChecker.parsed = lambda self, raw: False  # type: ignore[method-assign]
    runtime = Runtime(settings)
    runtime.start()
    try:
        authorization = _write_key(runtime)
        app: App = create_app(settings, runtime)  # type: ignore[assignment]
        bodies = payloads.batch_bodies(200, 100, now=datetime.now(UTC))
        gc.collect()
        gc.freeze()
        asyncio.run(_load(app, bodies, authorization, 100, "warm"))
        runtime.processor.drain()
        if paced is not None:
            commits = _time_commits(runtime)
            cpu = time.process_time()
            latencies = asyncio.run(_paced(app, bodies, authorization, paced, seconds))
            cpu = time.process_time() - cpu
            return {
                "requests_per_s": paced,
                **_percentiles(latencies),
                "request_cpu_ms": round(cpu * 1000 / len(latencies), 3),
                "groups": len(commits),
                **{f"commit_{k}": v for k, v in _percentiles(commits).items()},
            }
        cpu, loop = time.process_time(), time.thread_time()
        asyncio.run(_load(app, bodies, authorization, requests, "run"))
        cpu, loop = time.process_time() - cpu, time.thread_time() - loop
        processed_cpu = time.process_time()
        started = time.perf_counter()
        runtime.processor.drain()
        processed_cpu, seconds = time.process_time() - processed_cpu, time.perf_counter() - started
    finally:
        runtime.close()
    return {
        "request_cpu_ms": round(cpu * 1000 / requests, 3),
        "request_cpu_ms_event_loop_thread": round(loop * 1000 / requests, 3),
        "processor_cpu_ms_per_100_events": round(processed_cpu * 1000 / requests, 2),
        "processor_events_per_s": round(requests * 100 / seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--no-fast-path", action="store_true")
    parser.add_argument(
        "--paced", type=float, help="requests/s with Poisson arrivals: report latency, not CPU"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced load")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "fast_path": not args.no_fast_path,
        "paced": args.paced,
        "seconds": args.seconds,
    }
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="storeloop-cpu-") as directory:
            result = measure(f"sqlite:///{directory}/bench.db", args.requests, **options)
    else:
        admin = os.environ.get("STORELOOP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
        with servers.postgres_database(admin) as url:
            result = measure(url, args.requests, **options)
    print(args.backend, "fast path off" if args.no_fast_path else "fast path on", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
