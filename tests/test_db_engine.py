"""How the engines present themselves to PostgreSQL: an operator tells the API's sessions from
the worker's in pg_stat_activity and the server's logs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from storeloop.config import Settings
from storeloop.db import create_db_engine
from storeloop.runtime import Runtime
from tests.conftest import MASTER_KEY, SECRET_KEY


def _application_name(url: str, **kwargs: object) -> str:
    engine = create_db_engine(url, **kwargs)  # type: ignore[arg-type]
    try:
        with engine.connect() as connection:
            return str(connection.scalar(text("SELECT current_setting('application_name')")))
    finally:
        engine.dispose()


def test_sessions_are_named_by_the_process_role(postgres_admin_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=postgres_admin_url,
        data_dir=tmp_path,
        master_key=MASTER_KEY,
        secret_key=SECRET_KEY,
        inprocess_worker=False,
    )
    for role, expected in ((None, "storeloop api"), ("worker", "storeloop worker")):
        runtime = Runtime(settings) if role is None else Runtime(settings, role=role)
        try:
            with runtime.engine.connect() as connection:
                name = connection.scalar(text("SELECT current_setting('application_name')"))
        finally:
            runtime.close()
        assert name == expected


def test_a_name_in_the_url_wins(postgres_admin_url: str) -> None:
    separator = "&" if "?" in postgres_admin_url else "?"
    url = f"{postgres_admin_url}{separator}application_name=shop-analytics"
    assert _application_name(url, application_name="storeloop api") == "shop-analytics"
    assert _application_name(postgres_admin_url) == ""


def test_sqlite_takes_no_application_name(tmp_path: Path) -> None:
    engine = create_db_engine(
        f"sqlite:///{tmp_path / 'storeloop.db'}", application_name="storeloop api"
    )
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
    finally:
        engine.dispose()
