"""Driving an HTTP endpoint with wrk and reading its results (requests/s, latency percentiles)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

SCRIPT = Path(__file__).with_name("wrk_batch.lua")
INSTALL_HINT = (
    "wrk is needed to run this benchmark. On Debian/Ubuntu: sudo apt-get install wrk "
    "(other systems: https://github.com/wg/wrk)"
)


class LoadFailed(RuntimeError):
    """wrk saw non-2xx responses or socket errors: the numbers would not mean what they say."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    ok_requests: int
    non2xx: int
    socket_errors: dict[str, int]
    duration_s: float
    requests_per_s: float
    latency_ms: dict[str, float]
    first_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_wrk() -> str:
    """The path of wrk, or exit 2 with the command that installs it."""
    path = shutil.which("wrk")
    if path is None:
        print(INSTALL_HINT, file=sys.stderr)
        raise SystemExit(2)
    return path


def wrk_version() -> str:
    completed = subprocess.run(
        [require_wrk(), "--version"], capture_output=True, text=True, check=False
    )
    return (completed.stdout or completed.stderr).splitlines()[0].strip()


def run_wrk(
    url: str,
    bodies_file: Path,
    *,
    authorization: str,
    duration_s: int,
    connections: int,
    threads: int,
    unique: bool = False,
    rate: float = 0,
) -> tuple[LoadResult, str]:
    """Run wrk on ``url`` with the rotating-bodies script; the result and wrk's own output.
    ``rate`` > 0: a paced load of that many requests per second in all (Poisson arrivals on a
    schedule in absolute time, split between the threads); 0: as fast as the server answers."""
    command = [
        require_wrk(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        "--timeout=30s",
        "--latency",
        f"--script={SCRIPT}",
        url,
    ]
    env = {
        **os.environ,
        "BENCH_BODIES": str(bodies_file),
        "BENCH_PATH": "/" + url.split("/", 3)[3],
        "BENCH_AUTH": authorization,
        "BENCH_UNIQUE": "1" if unique else "0",
        "BENCH_RATE_PER_THREAD": str(rate / threads),
    }
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise LoadFailed(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    return parse_output(completed.stdout), completed.stdout


def parse_output(output: str) -> LoadResult:
    raw: dict[str, Any] | None = None
    first_error = None
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = orjson.loads(line.removeprefix("BENCH_RESULT "))
        elif line.startswith("BENCH_FIRST_ERROR "):
            first_error = line.removeprefix("BENCH_FIRST_ERROR ")
    if raw is None:
        raise LoadFailed("wrk printed no BENCH_RESULT line:\n" + output)
    duration_s = raw["duration_us"] / 1e6
    ok_requests = raw["requests"] - raw["non2xx"]
    return LoadResult(
        requests=raw["requests"],
        ok_requests=ok_requests,
        non2xx=raw["non2xx"],
        socket_errors=raw["errors"],
        duration_s=round(duration_s, 3),
        requests_per_s=round(ok_requests / duration_s, 1),
        latency_ms={name: round(us / 1000, 3) for name, us in raw["latency_us"].items()},
        first_error=first_error,
    )


def check_clean(result: LoadResult, what: str) -> None:
    """Fail loudly when any response was not 2xx or any socket error happened."""
    errors = {name: count for name, count in result.socket_errors.items() if count}
    if result.non2xx or errors:
        raise LoadFailed(
            f"{what}: {result.non2xx} non-2xx responses, socket errors {errors or 'none'}; "
            f"first error: {result.first_error}"
        )
