"""The workers' CPU priority against the API's, on one server: `STORELOOP_WORKER_NICE` values
side by side, alternating, a fresh database per run.

Each run starts storeloop in the production configuration of ``benchmarks.ingest`` (API
processes and separate `storeloop worker` processes, each in a session of its own, as under a
service manager), loads it at saturation with the rotating pool, then paced at the target rate.

    python -m benchmarks.worker_priority [--backend sqlite|postgresql] [--nice 0,10]
                                         [--rounds 2] [--duration 15] [--workers N]
                                         [--refused-every N]

Results: benchmarks/results/worker-priority-<backend>.json; discussed in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import ingest, servers
from benchmarks.machine import machine_info
from benchmarks.wrk import require_wrk, wrk_version


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--nice", default="0,10", help="STORELOOP_WORKER_NICE values to compare")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each value, alternating")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured load")
    parser.add_argument(
        "--workers", type=int, help="`storeloop worker` processes (default: 2 on PostgreSQL, 1)"
    )
    parser.add_argument(
        "--refused-every",
        type=int,
        default=0,
        help="one event with an unreadable timestamp in every N bodies (0: none)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _database(bench: ingest.Bench, backend: str, name: str) -> Iterator[str]:
    if backend == "postgresql":
        with servers.postgres_database(bench.postgres_url) as url:
            yield url
    else:
        yield f"sqlite:///{bench.scratch('sqlite')}/{name}.db"


def _summary(load: dict[str, Any]) -> dict[str, Any]:
    return ingest.round_summary(load) | {
        "server_cpu_s": load["cpu"]["server_cpu_s"],
        "worker_cpu_s": load["cpu"]["worker_cpu_s"],
        "other_cpu_s": load["cpu"]["other_cpu_s"],
    }


def _processes(args: argparse.Namespace) -> tuple[int, int]:
    """API processes and workers: the production configuration of ``benchmarks.ingest``."""
    api, workers = (2, 2) if args.backend == "postgresql" else (1, 1)
    return api, workers if args.workers is None else args.workers


def _write(args: argparse.Namespace, bench: ingest.Bench, runs: list[dict[str, Any]]) -> None:
    api, processors = _processes(args)
    report = {
        "backend": args.backend,
        "api_processes": api,
        "worker_processes": processors,
        "paced_events_per_s": ingest.TARGET_EVENTS_PER_S[args.backend],
        "sched_autogroup_enabled": ingest.autogroups(),
        "runs": runs,
        "settings": vars(args),
        "machine": machine_info(
            wrk=wrk_version(),
            postgresql=servers.postgres_version(bench.postgres_url)
            if args.backend == "postgresql"
            else None,
        ),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = ingest.RESULTS / f"worker-priority-{args.backend}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    api, processors = _processes(args)
    rate = ingest.TARGET_EVENTS_PER_S[args.backend] / 100
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="storeloop-bench-") as workdir:
        bench = ingest.Bench(
            ingest.parse_args(
                [
                    *("--backend", args.backend, "--duration", str(args.duration)),
                    *("--refused-every", str(args.refused_every)),
                ]
            ),
            Path(workdir),
        )
        base_env = servers.storeloop_env
        for round_number in range(args.rounds):
            for nice in args.nice.split(","):
                label = f"nice{nice}-{round_number}"

                def env(url: str, data: Path, nice: str = nice) -> dict[str, str]:
                    return base_env(url, data) | {"STORELOOP_WORKER_NICE": nice}

                servers.storeloop_env = env
                try:
                    with (
                        _database(bench, args.backend, label) as url,
                        ingest.serving(bench, url, api, label, processors=processors) as (
                            target,
                            watcher,
                        ),
                    ):
                        watcher.wait_drained(bench.args.drain_timeout)
                        loads = [
                            bench.measure(
                                target.url,
                                target.auth,
                                target.pid,
                                unique=False,
                                workers=target.worker_pids,
                                rate=paced_rate,
                            )
                            for paced_rate in (0, rate)
                        ]
                finally:
                    servers.storeloop_env = base_env
                run = {
                    "worker_nice": int(nice),
                    "round": round_number,
                    "saturation": _summary(loads[0]),
                    "paced": _summary(loads[1]),
                }
                print(
                    f"nice {nice}: {run['saturation']['events_per_s']:,} events/s,"
                    f" p99 {run['saturation']['p99_ms']} ms; paced"
                    f" {run['paced']['events_per_s']:,} events/s, p99 {run['paced']['p99_ms']} ms;"
                    f" workers {run['saturation']['worker_cpu_s']} CPU-s",
                    flush=True,
                )
                runs.append(run)
                _write(args, bench, runs)  # a failure later keeps the runs done so far
    print(f"written to {ingest.RESULTS / f'worker-priority-{args.backend}.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
