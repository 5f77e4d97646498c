"""Two deliveries about one order applied at the same moment (PostgreSQL: real concurrency)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from storeloop.db import session_scope
from storeloop.orders.schemas import RefundInput
from storeloop.orders.service import OrderWriter
from storeloop.runtime import Runtime
from tests.factories.orders import counts, make_order, order_row
from tests.factories.workspaces import WorkspaceKeys

AT = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def _lock_waiters(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def test_concurrent_refund_deliveries_both_count(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    if not runtime.settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("SQLite admits one writer at a time")
    make_order(runtime, workspace.id, "K-1", total="100.00", source="shopify")
    cipher = runtime.keyring.cipher(workspace.id)
    errors: list[BaseException] = []

    def second_delivery() -> None:
        try:
            with session_scope(runtime.session_factory) as session:
                OrderWriter(session, cipher, workspace.id).add_refunds(
                    "K-1", [RefundInput("r-2", Decimal("20.00"), AT)], "shopify"
                )
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    first = runtime.session_factory()
    try:
        OrderWriter(first, cipher, workspace.id).add_refunds(
            "K-1", [RefundInput("r-1", Decimal("30.00"), AT)], "shopify"
        )
        # The first delivery has written, not committed; the second one starts now.
        thread = threading.Thread(target=second_delivery)
        thread.start()
        for _ in range(1000):
            if _lock_waiters(runtime) or not thread.is_alive():
                break
            time.sleep(0.01)
        first.commit()
    finally:
        first.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    order = order_row(runtime, workspace.id, "K-1")
    # Without the row lock the second delivery summed the refunds it saw (r-2 only) and
    # overwrote refunded_total with 20.00.
    assert (order.refunded_total, order.status) == (Decimal("50.00"), "partially_refunded")
    assert counts(runtime, workspace.id)["refunds"] == 2
