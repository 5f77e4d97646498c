"""Identity tests run against a database built by the migrations, on every backend.

``database_url`` (tests/conftest.py) is parametrized over SQLite and, when
STORELOOP_TEST_POSTGRES_URL is set, a fresh uniquely named PostgreSQL database per session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storeloop.db import create_db_engine
from tests.factories.identity import Store, make_store


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test (resolve never commits)."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    yield session
    session.close()
    transaction.rollback()
    connection.close()


@pytest.fixture
def store(session: Session) -> Store:
    return make_store(session)
