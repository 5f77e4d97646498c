"""SQLite's planner statistics, kept by a worker job: lists of ids are found through their key,
not by reading the whole workspace."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from storeloop import migrate
from storeloop.db import SqliteStatistics, create_db_engine

CREDITS_OF_ORDERS = (
    "EXPLAIN QUERY PLAN DELETE FROM attribution_credits"
    " WHERE workspace_id = :workspace AND order_id IN (:a, :b, :c)"
)


def test_the_job_analyzes_when_due_and_the_plans_use_the_key(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'storeloop.db'}")
    migrate.upgrade(engine)
    workspace = uuid.uuid4()
    with engine.connect() as connection:
        # Credits alone (their orders do not matter to the plan).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.execute(
            text(
                "INSERT INTO attribution_credits (order_id, model, position, workspace_id,"
                " channel, credit, revenue, placed_at, currency)"
                " VALUES (:order, 'linear', :position, :workspace, 'Email', 1, 1,"
                " '2026-12-01 00:00:00', 'EUR')"
            ),
            [
                {"order": uuid.uuid4().hex, "position": position, "workspace": workspace.hex}
                for position in range(2_000)
            ],
        )
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    ids = {"workspace": workspace.hex, "a": "x", "b": "y", "c": "z"}

    def plan() -> str:
        with engine.connect() as connection:
            return " ".join(row[-1] for row in connection.execute(text(CREDITS_OF_ORDERS), ids))

    now = [0.0]
    job = SqliteStatistics(engine, first_after=30, max_interval=100, clock=lambda: now[0])
    # Without statistics the workspace's own index is taken: every credit of the store is read.
    assert "(workspace_id=?)" in plan()
    assert job() == 0
    with engine.connect() as connection:
        statistics = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        assert connection.execute(text(statistics)).scalar_one() == 0  # not due yet

    now[0] = 30
    pool = engine.pool
    assert job() == 0
    assert engine.pool is not pool  # this process's connections read the statistics again
    assert "(order_id=?)" in plan()
    with engine.connect() as connection:
        analyzed = connection.execute(
            text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'attribution_credits'")
        ).scalar_one()
    assert analyzed > 0
    # Then at doubling intervals, up to the longest.
    assert (job._due, job._interval) == (90, 60)
    now[0] = 90
    job()
    assert (job._due, job._interval) == (190, 100)
    engine.dispose()


def test_a_failed_run_waits_for_its_next_turn(tmp_path: Path) -> None:
    """A run that fails (the file locked past the busy timeout) is not tried again at once."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'storeloop.db'}")
    migrate.upgrade(engine)
    runs: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def refuse(*args: object) -> None:
        statement = str(args[2])
        if statement == "ANALYZE":
            runs.append(statement)
            raise sqlite3.OperationalError("database is locked")

    now = [0.0]
    job = SqliteStatistics(engine, first_after=30, clock=lambda: now[0])
    now[0] = 30
    with pytest.raises(OperationalError):
        job()
    assert job() == 0  # not due before 60 more seconds
    assert runs == ["ANALYZE"]
    engine.dispose()


def test_the_job_leaves_postgresql_to_autovacuum() -> None:
    engine = create_db_engine("postgresql://nobody@127.0.0.1:1/none")
    job = SqliteStatistics(engine, first_after=0, clock=lambda: 10.0)
    assert job() == 0  # never connects: the URL leads nowhere
