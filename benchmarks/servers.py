"""Servers under test, run as subprocesses: `storeloop serve` and `storeloop worker` in production
mode, and the baseline.

Also the throwaway databases they run on (a temp SQLite file, or a fresh PostgreSQL database that
is dropped afterwards) and the workspace and write key created through the `storeloop` CLI.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
STORELOOP = [sys.executable, "-c", "from storeloop.cli import main; main()"]
# High enough never to refuse the benchmark's traffic: the limiter is still called per request.
RATE_LIMIT = "10000000/second"


class ServerFailed(RuntimeError):
    """A server or a CLI command did not come up as expected."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def storeloop_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a production-mode storeloop with fresh secrets."""
    return {
        **os.environ,
        "STORELOOP_ENVIRONMENT": "production",
        "STORELOOP_DATABASE_URL": database_url,
        "STORELOOP_DATA_DIR": str(data_dir),
        "STORELOOP_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "STORELOOP_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "STORELOOP_RATE_LIMIT": RATE_LIMIT,
    }


def _cli(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [*STORELOOP, *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise ServerFailed(f"storeloop {' '.join(args)} failed:\n{completed.stderr}")
    return completed.stdout


def create_write_key(env: dict[str, str]) -> str:
    """Migrate, create the workspace 'bench' and return a new write key, all through the CLI."""
    _cli(env, "migrate")
    _cli(env, "workspace", "create", "Bench Store", "--slug", "bench")
    output = _cli(env, "key", "create", "--workspace", "bench", "--kind", "write", "--name", "b")
    found = re.search(r"slw_[A-Za-z0-9_-]+", output)
    if found is None:
        raise ServerFailed(f"no write key in the output of `storeloop key create`:\n{output}")
    return found.group(0)


def basic_auth(write_key: str) -> str:
    """Segment's convention: the write key as the Basic username, empty password."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def storeloop_command(port: int, workers: int) -> list[str]:
    return [
        *STORELOOP,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def baseline_command(port: int, workers: int) -> list[str]:
    """The bare Starlette app under the uvicorn settings `storeloop serve` uses."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.baseline_app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "info",
        "--no-access-log",
    ]


def _wait_ready(process: subprocess.Popen[bytes], url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"the server exited with {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise ServerFailed(f"{url} did not answer within {timeout_s:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Graceful stop (uvicorn commits what was accepted on shutdown), then a hard one."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(45)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@contextmanager
def running(
    command: list[str], env: dict[str, str], ready_url: str, log_file: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; on failure, show the end of its log."""
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_ready(process, ready_url, timeout_s=60)
            yield process
        except BaseException:
            tail = log_file.read_bytes()[-3000:].decode(errors="replace")
            print(f"--- end of {log_file} ---\n{tail}", file=sys.stderr)
            raise
        finally:
            _stop(process)


@contextmanager
def workers(
    env: dict[str, str], count: int, log_dir: Path, label: str
) -> Iterator[tuple[int, ...]]:
    """``count`` `storeloop worker` processes (the inbox processor) until the block ends; their
    pids. Stopped with SIGINT: a worker finishes its current transaction, then exits."""
    logs = [(log_dir / f"worker-{label}-{index}.log").open("wb") for index in range(count)]
    processes = [
        subprocess.Popen(
            [*STORELOOP, "worker"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for log in logs
    ]
    try:
        time.sleep(0.5 if count else 0)
        for process in processes:
            if process.poll() is not None:
                raise ServerFailed(f"a worker exited with {process.returncode} while starting")
        yield tuple(process.pid for process in processes)
    finally:
        for process in processes:
            _stop(process)
        for log in logs:
            log.close()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards; yields its URL."""
    name = "storeloop_bench_" + secrets.token_hex(4)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def postgres_reachable(admin_url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def postgres_version(admin_url: str) -> str | None:
    try:
        with psycopg.connect(admin_url, connect_timeout=3) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None
