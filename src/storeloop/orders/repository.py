"""Every query of the orders domain, scoped to one workspace here and nowhere else.

Orders read to be written are locked (``SELECT ... FOR UPDATE`` on PostgreSQL, in id order so
two writers cannot deadlock): concurrent deliveries of one order apply one after the other, the
second seeing the first's refunds and updated_at. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storeloop.kit.pagination import older_than
from storeloop.models import (
    Order,
    OrderLine,
    QuarantinedEvent,
    Refund,
    WebhookDelivery,
)


class OrderRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def by_external_id(self, external_id: str) -> Order | None:
        """The order, locked for the rest of the transaction."""
        return self.session.scalar(
            select(Order)
            .where(Order.workspace_id == self.workspace_id, Order.external_id == external_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def by_external_ids(self, external_ids: Collection[str]) -> dict[str, Order]:
        """The orders found, locked for the rest of the transaction."""
        if not external_ids:
            return {}
        rows = self.session.scalars(
            select(Order)
            .where(
                Order.workspace_id == self.workspace_id,
                Order.external_id.in_(sorted(external_ids)),
            )
            .order_by(Order.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {row.external_id: row for row in rows}

    def peek(self, external_id: str) -> Order | None:
        """The order without a lock, to read (an update filling what it does not carry)."""
        return self.session.scalar(
            select(Order).where(
                Order.workspace_id == self.workspace_id, Order.external_id == external_id
            )
        )

    def customer_orders(self, customer_external_id: str, source: str) -> Sequence[Order]:
        """A customer's orders from one source, locked, in id order (the lock order)."""
        return self.session.scalars(
            select(Order)
            .where(
                Order.workspace_id == self.workspace_id,
                Order.source == source,
                Order.customer_external_id == customer_external_id,
            )
            .order_by(Order.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()

    def refunds_by_external_id(self, external_id: str, source: str) -> Sequence[Refund]:
        """The refund rows of every order carrying one external refund id (a cancellation
        charged against several invoices)."""
        return self.session.scalars(
            select(Refund).where(
                Refund.workspace_id == self.workspace_id,
                Refund.source == source,
                Refund.external_id == external_id,
            )
        ).all()

    def get(self, order_id: uuid.UUID) -> Order | None:
        return self.session.scalar(
            select(Order).where(Order.workspace_id == self.workspace_id, Order.id == order_id)
        )

    def add(self, order: Order) -> None:
        assert order.workspace_id == self.workspace_id
        self.session.add(order)

    def lines(self, order_id: uuid.UUID) -> Sequence[OrderLine]:
        return self.session.scalars(
            select(OrderLine)
            .where(OrderLine.workspace_id == self.workspace_id, OrderLine.order_id == order_id)
            .order_by(OrderLine.position)
        ).all()

    def lines_of(self, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[OrderLine]]:
        found: dict[uuid.UUID, list[OrderLine]] = {order_id: [] for order_id in order_ids}
        if not order_ids:
            return found
        rows = self.session.scalars(
            select(OrderLine)
            .where(
                OrderLine.workspace_id == self.workspace_id,
                OrderLine.order_id.in_(list(order_ids)),
            )
            .order_by(OrderLine.order_id, OrderLine.position)
        )
        for row in rows:
            found[row.order_id].append(row)
        return found

    def refunds_of(self, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[Refund]]:
        found: dict[uuid.UUID, list[Refund]] = {order_id: [] for order_id in order_ids}
        if not order_ids:
            return found
        rows = self.session.scalars(
            select(Refund).where(
                Refund.workspace_id == self.workspace_id, Refund.order_id.in_(list(order_ids))
            )
        )
        for row in rows:
            found[row.order_id].append(row)
        return found

    def replace_lines(self, order_id: uuid.UUID, lines: Sequence[OrderLine]) -> None:
        self.session.execute(
            delete(OrderLine).where(
                OrderLine.workspace_id == self.workspace_id, OrderLine.order_id == order_id
            )
        )
        self.session.add_all(lines)

    def refunds(self, order_id: uuid.UUID) -> Sequence[Refund]:
        return self.session.scalars(
            select(Refund)
            .where(Refund.workspace_id == self.workspace_id, Refund.order_id == order_id)
            .order_by(Refund.refunded_at, Refund.id)
        ).all()

    def add_refund(self, refund: Refund) -> None:
        assert refund.workspace_id == self.workspace_id
        self.session.add(refund)

    def page(
        self,
        *,
        limit: int,
        cursor: tuple[datetime, uuid.UUID] | None,
        status: str | None,
        source: str | None,
        placed_from: datetime | None,
        placed_to: datetime | None,
        profile_id: uuid.UUID | None,
    ) -> Sequence[Order]:
        query = select(Order).where(Order.workspace_id == self.workspace_id)
        if status is not None:
            query = query.where(Order.status == status)
        if source is not None:
            query = query.where(Order.source == source)
        if placed_from is not None:
            query = query.where(Order.placed_at >= placed_from)
        if placed_to is not None:
            query = query.where(Order.placed_at < placed_to)
        if profile_id is not None:
            query = query.where(Order.profile_id == profile_id)
        if cursor is not None:
            query = query.where(older_than(Order.placed_at, Order.id, cursor))
        return self.session.scalars(
            query.order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit)
        ).all()

    def created_after(
        self,
        after: datetime,
        *,
        placed_from: datetime,
        limit: int,
        exclude: Collection[uuid.UUID] = (),
    ) -> Sequence[Order]:
        """Orders first stored after ``after``, oldest first, leaving out ``exclude`` (already
        seen). ``placed_from`` bounds the scan to recent orders through the (workspace,
        placed_at) index."""
        query = select(Order).where(
            Order.workspace_id == self.workspace_id,
            Order.placed_at >= placed_from,
            Order.created_at > after,
        )
        if exclude:
            query = query.where(Order.id.not_in(list(exclude)))
        return self.session.scalars(query.order_by(Order.created_at, Order.id).limit(limit)).all()

    def delivery_seen(self, provider: str, delivery_id: str) -> bool:
        return (
            self.session.scalar(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.workspace_id == self.workspace_id,
                    WebhookDelivery.provider == provider,
                    WebhookDelivery.delivery_id == delivery_id,
                )
            )
            is not None
        )

    def add_delivery(self, delivery: WebhookDelivery) -> None:
        assert delivery.workspace_id == self.workspace_id
        self.session.add(delivery)

    def open_quarantined(self, source: str, message_id: str) -> uuid.UUID | None:
        return self.session.scalar(
            select(QuarantinedEvent.id).where(
                QuarantinedEvent.workspace_id == self.workspace_id,
                QuarantinedEvent.source == source,
                QuarantinedEvent.message_id == message_id,
                QuarantinedEvent.status == "open",
            )
        )

    def add_quarantined(self, item: QuarantinedEvent) -> None:
        assert item.workspace_id == self.workspace_id
        self.session.add(item)
