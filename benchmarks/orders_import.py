"""Import the full UCI Online Retail file (541,909 rows) as orders, twice, and report rows/s.

    .venv/bin/python -m benchmarks.orders_import [--database-url URL] [--file PATH]

Builds a fresh SQLite database (or uses the PostgreSQL URL given, which must be empty), creates a
workspace, imports the file with the uci-online-retail preset, then imports it again (the
idempotent re-import: every order unchanged). Prints a JSON summary with the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import orjson
from sqlalchemy import text

from benchmarks.machine import machine_info
from storeloop import migrate
from storeloop.db import create_db_engine, make_session_factory, session_scope
from storeloop.kit.crypto import WorkspaceCipher, unwrap_data_key
from storeloop.orders import csv_import
from storeloop.workspaces.service import create_workspace

DEFAULT_FILE = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/data/datasets/uci_online_retail/online_retail_uci_541909rows.csv.gz"
)


def run(database_url: str, path: Path) -> dict[str, object]:
    engine = create_db_engine(database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    master_key = os.urandom(32)
    with session_scope(factory) as session:
        workspace = create_workspace(session, master_key, "UCI benchmark", "uci-bench")
        workspace_id, wrapped = workspace.id, workspace.wrapped_data_key
    cipher = WorkspaceCipher(unwrap_data_key(master_key, workspace_id, wrapped))
    settings = csv_import.import_settings("uci-online-retail", [], None)
    runs = []
    for label in ("first import", "re-import"):
        started = time.perf_counter()
        result = csv_import.import_file(factory, cipher, workspace_id, path, settings)
        seconds = time.perf_counter() - started
        runs.append(
            {
                "run": label,
                "rows": result.rows,
                "seconds": round(seconds, 1),
                "rows_per_second": round(result.rows / seconds),
                "imported": result.imported,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "rows_with_errors": len(result.errors),
            }
        )
    with engine.connect() as connection:
        net_revenue = connection.execute(
            text("SELECT SUM(total - refunded_total) FROM orders WHERE workspace_id = :w"),
            {"w": workspace_id if engine.dialect.name == "postgresql" else workspace_id.hex},
        ).scalar_one()
    engine.dispose()
    return {
        "net_revenue": str(Decimal(net_revenue).quantize(Decimal("0.01"))),
        "database": engine.dialect.name,
        "file": path.name,
        "runs": runs,
        "machine": machine_info(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    arguments = parser.parse_args()
    if not arguments.file.exists():
        sys.exit(f"no file {arguments.file}")
    with tempfile.TemporaryDirectory() as directory:
        url = arguments.database_url or f"sqlite:///{directory}/orders.db"
        summary = run(url, arguments.file)
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
