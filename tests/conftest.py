"""Shared fixtures: a database per backend built by running the migrations, a runtime, clients.

Every test works in a workspace of its own, which is how production isolates stores too; the
backends are SQLite always and PostgreSQL when STORELOOP_TEST_POSTGRES_URL is set (CI sets it and
STORELOOP_REQUIRE_POSTGRES=1, so a missing server fails the run instead of skipping).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storeloop import migrate
from storeloop.app import create_app
from storeloop.config import Settings, generate_key
from storeloop.db import create_db_engine
from storeloop.runtime import Runtime
from tests.factories.workspaces import WorkspaceKeys, make_workspace

POSTGRES_URL = os.environ.get("STORELOOP_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("STORELOOP_REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("STORELOOP_TEST_REDIS_URL")
REQUIRE_REDIS = os.environ.get("STORELOOP_REQUIRE_REDIS") == "1"
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
MASTER_KEY = generate_key()
SECRET_KEY = generate_key()


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        pytest.exit("STORELOOP_REQUIRE_POSTGRES=1 but STORELOOP_TEST_POSTGRES_URL is not set", 1)
    if POSTGRES_URL:
        try:
            engine = create_db_engine(POSTGRES_URL)
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:
            pytest.exit(f"PostgreSQL at STORELOOP_TEST_POSTGRES_URL is unreachable: {exc}", 1)
    if REQUIRE_REDIS and not REDIS_URL:
        pytest.exit("STORELOOP_REQUIRE_REDIS=1 but STORELOOP_TEST_REDIS_URL is not set", 1)
    if REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        except Exception as exc:
            pytest.exit(f"Redis at STORELOOP_TEST_REDIS_URL is unreachable: {exc}", 1)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not POSTGRES_URL:
        pytest.skip("STORELOOP_TEST_POSTGRES_URL is not set")
    return POSTGRES_URL


def create_postgres_database(admin_url: str) -> tuple[str, str]:
    """A fresh database on the test server; returns (url, name)."""
    name = f"storeloop_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(admin_url: str, name: str) -> None:
    admin = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def migrated_database(backend: str, directory: Path) -> Iterator[str]:
    """A new database of ``backend`` with the schema built by the migrations; dropped after."""
    name = None
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'storeloop.db'}"
    else:
        assert POSTGRES_URL is not None
        url, name = create_postgres_database(POSTGRES_URL)
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if name is not None:
            assert POSTGRES_URL is not None
            drop_postgres_database(POSTGRES_URL, name)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of each backend, shared by the session."""
    with migrated_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "master_key": MASTER_KEY,
        "secret_key": SECRET_KEY,
        "inprocess_worker": False,
        "rate_limit": "1000000/second",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    runtime.start()
    yield runtime
    # The database is shared by the session: leave no inbox rows for the next test to process.
    runtime.writer.stop()
    runtime.processor.drain()
    runtime.derivations.drain()
    runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime)) as test_client:
        yield test_client


@pytest.fixture
def workspace(runtime: Runtime) -> WorkspaceKeys:
    return make_workspace(runtime)


@pytest.fixture
def other_workspace(runtime: Runtime) -> WorkspaceKeys:
    return make_workspace(runtime, name="Other store")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The real app under uvicorn on an ephemeral loopback port, in a thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(runtime=runtime), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    with LiveServer(runtime) as server:
        yield server
