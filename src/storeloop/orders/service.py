"""Orders from every source merged into one row per (workspace, external id), and read back.

``apply_orders`` is the one upsert every source goes through (events, Shopify, WooCommerce, CSV):
an older delivery never overwrites a newer one, a shop platform overwrites what events said but
an event never overwrites a platform's money, lines are replaced, refunds are upserted on their
own id, and every change that matters to attribution marks the order ``attribution_stale``.
Flushes, never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.orm import Session

from storeloop.analytics.marks import mark_order_days, mark_profile_days
from storeloop.attribution.service import mark_profile_orders_stale
from storeloop.identity.graph import EMAIL
from storeloop.identity.normalize import normalize_email
from storeloop.identity.schemas import Observation
from storeloop.identity.service import resolve
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.errors import NotFound
from storeloop.kit.ids import new_id
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.kit.pagination import check_limit, decode_cursor, encode_cursor
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import Order, OrderLine, QuarantinedEvent, Refund, WebhookDelivery
from storeloop.orders.repository import OrderRepository
from storeloop.orders.schemas import (
    MARKETING_KEYS,
    SOURCE_RANK,
    ApplyOutcome,
    CustomerInput,
    OrderDetail,
    OrderInput,
    OrderLineInput,
    OrderLineOut,
    OrderNotice,
    OrderPage,
    OrderSummary,
    RefundInput,
    RefundOut,
    refund_reason,
)
from storeloop.orders.urls import marketing_url
from storeloop.workspaces.repository import WorkspaceRepository


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: ApplyOutcome
    order_id: uuid.UUID | None


def _customer_aad(order_id: uuid.UUID) -> bytes:
    return row_aad("orders", order_id, "customer")


def _open_customer(cipher: WorkspaceCipher, order: Order) -> dict[str, Any]:
    if order.customer_sealed is None:
        return {}
    loaded: dict[str, Any] = orjson.loads(
        cipher.open(order.customer_sealed, _customer_aad(order.id))
    )
    return loaded


def customer_user_id(source: str, customer_external_id: str) -> str:
    """The identity-graph user id of a shop customer: the platform's id, prefixed by the
    platform so a WooCommerce customer 7 and a Shopify customer 7 stay two people."""
    return f"{source}:{customer_external_id}"


def _observation(order_input: OrderInput) -> Observation | None:
    customer = order_input.customer or CustomerInput()
    email = normalize_email(customer.email)
    user_id = (
        customer_user_id(order_input.source, customer.external_id) if customer.external_id else None
    )
    anonymous_id = order_input.anonymous_id
    if user_id is None and anonymous_id is None:
        if email is None:
            return None
        # A guest order with an email: its own node, joined to the shopper by the email.
        anonymous_id = f"order:{order_input.source}:{order_input.external_id}"
    traits: dict[str, Any] = {}
    if email is not None:
        traits["email"] = email
    if customer.phone:
        traits["phone"] = customer.phone
    return Observation(
        message_id=f"order:{order_input.source}:{order_input.external_id}",
        type="identify",
        timestamp=order_input.placed_at,
        anonymous_id=anonymous_id,
        user_id=user_id,
        previous_id=None,
        traits=traits,
    )


def _email_index(cipher: WorkspaceCipher, customer: CustomerInput | None) -> str | None:
    email = normalize_email(customer.email) if customer else None
    return cipher.blind_index(EMAIL, email) if email else None


def _final_status(status: str, total: Decimal, refunded_total: Decimal) -> str:
    if status == "cancelled" or refunded_total <= 0:
        return status
    return "refunded" if refunded_total >= total else "partially_refunded"


def _base_status(status: str) -> str:
    """The status before refunds: what refunds are counted on top of."""
    return status if status in ("pending", "paid", "cancelled") else "paid"


def _line_rows(
    workspace_id: uuid.UUID, order_id: uuid.UUID, lines: Sequence[OrderLineInput]
) -> list[OrderLine]:
    return [
        OrderLine(
            order_id=order_id,
            position=position,
            workspace_id=workspace_id,
            sku=line.sku[:255] if line.sku else None,
            product_id=line.product_id[:255] if line.product_id else None,
            name=line.name[:500] if line.name else None,
            quantity=line.quantity,
            unit_price=line.unit_price.quantize(MONEY_QUANTUM),
            discount=line.discount.quantize(MONEY_QUANTUM),
        )
        for position, line in enumerate(lines)
    ]


def _line_key(line: OrderLine) -> tuple[Any, ...]:
    return (
        line.sku,
        line.product_id,
        line.name,
        line.quantity,
        Decimal(line.unit_price),
        Decimal(line.discount),
    )


def _marketing(order_input: OrderInput) -> dict[str, Any]:
    values = dict(order_input.marketing)
    if order_input.landing_page:
        values.setdefault("landing_page", order_input.landing_page)
    if order_input.referrer:
        values.setdefault("referrer", order_input.referrer)
    if order_input.anonymous_id:
        values.setdefault("anonymous_id", order_input.anonymous_id)
    for key in ("landing_page", "referrer"):
        if isinstance(values.get(key), str):
            values[key] = marketing_url(values[key])
    return {key: values[key] for key in MARKETING_KEYS if values.get(key) not in (None, "", {})}


class OrderWriter:
    """Applies normalised orders of one workspace; one instance per transaction."""

    def __init__(self, session: Session, cipher: WorkspaceCipher, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.cipher = cipher
        self.workspace_id = workspace_id
        self.repository = OrderRepository(session, workspace_id)
        self._phone_region: str | None = None
        self._phone_region_read = False

    def phone_region(self) -> str | None:
        if not self._phone_region_read:
            self._phone_region = WorkspaceRepository(self.session).phone_region(self.workspace_id)
            self._phone_region_read = True
        return self._phone_region

    def apply(self, inputs: Sequence[OrderInput]) -> list[ApplyResult]:
        """Upsert each order; the results are in input order. A batch reads what is stored in
        three queries and writes in bulk: this is the CSV import's hot path."""
        if len({item.external_id for item in inputs}) != len(inputs):
            # The same order twice in one batch: apply one after the other.
            return [result for item in inputs for result in self.apply([item])]
        existing = self.repository.by_external_ids({item.external_id for item in inputs})
        stored_ids = [order.id for order in existing.values()]
        stored_lines = self.repository.lines_of(stored_ids)
        stored_refunds = self.repository.refunds_of(stored_ids)
        profiles = self._profiles(inputs, existing)
        results = []
        created: list[tuple[Order, OrderInput]] = []
        for order_input in inputs:
            order = existing.get(order_input.external_id)
            profile_id = order_input.profile_id or profiles.get(order_input.external_id)
            if order is None:
                order = self._new_order(order_input, profile_id)
                self.repository.add(order)
                created.append((order, order_input))
                results.append(ApplyResult("created", order.id))
            else:
                outcome = self._update(
                    order,
                    order_input,
                    profile_id,
                    stored_lines[order.id],
                    {refund.external_id: refund for refund in stored_refunds[order.id]},
                )
                results.append(ApplyResult(outcome, order.id))
        # Orders are inserted before their lines and refunds point at them.
        self.session.flush()
        for order, order_input in created:
            self.session.add_all(_line_rows(self.workspace_id, order.id, order_input.lines))
            self._upsert_refunds(order, order_input.refunds, order_input.source, {}, None)
        self.session.flush()
        return results

    def _profiles(
        self, inputs: Sequence[OrderInput], existing: dict[str, Order]
    ) -> dict[str, uuid.UUID]:
        """Resolve the buyers of a batch in one identity pass. An order already linked to a
        profile for the same customer is not resolved again (re-imports stay cheap)."""
        observations: dict[str, Observation] = {}
        external_of: dict[str, str] = {}
        for order_input in inputs:
            if order_input.profile_id is not None:
                continue
            order = existing.get(order_input.external_id)
            customer = order_input.customer
            if (
                order is not None
                and order.profile_id is not None
                and order.customer_external_id == (customer.external_id if customer else None)
                and order.customer_email_index == _email_index(self.cipher, customer)
            ):
                continue
            observation = _observation(order_input)
            if observation is not None:
                observations[observation.message_id] = observation
                external_of[observation.message_id] = order_input.external_id
        if not observations:
            return {}
        resolved = resolve(
            self.session,
            self.workspace_id,
            self.cipher,
            list(observations.values()),
            default_phone_region=self.phone_region(),
            on_merge=self._profiles_merged,
        )
        return {external_of[message]: profile for message, profile in resolved.items()}

    def _profiles_merged(self, profile_ids: Collection[uuid.UUID]) -> None:
        """An order joined profiles: their journeys (re-attribution) and visits (rollups) are
        one customer's now, as when events merge them."""
        mark_profile_orders_stale(self.session, self.workspace_id, profile_ids)
        mark_profile_days(self.session, self.workspace_id, profile_ids)

    def _new_order(self, order_input: OrderInput, profile_id: uuid.UUID | None) -> Order:
        order_id = new_id()
        customer = order_input.customer
        customer_document = customer.sealed_document() if customer else {}
        now = utcnow()
        order = Order(
            id=order_id,
            workspace_id=self.workspace_id,
            external_id=order_input.external_id,
            source=order_input.source,
            source_channel=order_input.source_channel,
            profile_id=profile_id,
            anonymous_id=order_input.anonymous_id,
            customer_external_id=customer.external_id if customer else None,
            customer_email_index=_email_index(self.cipher, customer),
            customer_sealed=(
                self.cipher.seal(orjson.dumps(customer_document), _customer_aad(order_id))
                if customer_document
                else None
            ),
            currency=order_input.currency,
            subtotal=order_input.subtotal,
            discount_total=order_input.discount_total,
            shipping=order_input.shipping,
            tax=order_input.tax,
            total=order_input.total,
            refunded_total=Decimal(0),
            status=order_input.status,
            discount_codes=list(order_input.discount_codes),
            landing_page=marketing_url(order_input.landing_page),
            referrer=marketing_url(order_input.referrer),
            marketing=_marketing(order_input),
            placed_at=order_input.placed_at,
            source_updated_at=order_input.source_updated_at,
            attribution_stale=True,
            created_at=now,
            updated_at=now,
        )
        return order

    def _update(
        self,
        order: Order,
        order_input: OrderInput,
        profile_id: uuid.UUID | None,
        stored_lines: Sequence[OrderLine],
        stored_refunds: dict[str, Refund],
    ) -> ApplyOutcome:
        incoming_rank = SOURCE_RANK.get(order_input.source, 0)
        stored_rank = SOURCE_RANK.get(order.source, 0)
        if incoming_rank < stored_rank:
            return self._fill_marketing(order, order_input, profile_id)
        if incoming_rank == stored_rank and as_utc(order_input.source_updated_at) < as_utc(
            order.source_updated_at
        ):
            return "stale"
        changed = False
        stale = False
        customer = order_input.customer
        marketing = {**order.marketing, **_marketing(order_input)}
        values: dict[str, Any] = {
            "source": order_input.source,
            "source_channel": order_input.source_channel or order.source_channel,
            "anonymous_id": order_input.anonymous_id or order.anonymous_id,
            "currency": order_input.currency,
            "subtotal": order_input.subtotal,
            "discount_total": order_input.discount_total,
            "shipping": order_input.shipping,
            "tax": order_input.tax,
            "total": order_input.total,
            "discount_codes": list(order_input.discount_codes),
            "landing_page": marketing_url(order_input.landing_page) or order.landing_page,
            "referrer": marketing_url(order_input.referrer) or order.referrer,
            "marketing": marketing,
            # When the order was placed does not change with an update; only a stronger source
            # taking the order over (the shop platform, the book of record) corrects it.
            "placed_at": order_input.placed_at
            if incoming_rank > stored_rank
            else as_utc(order.placed_at),
            "source_updated_at": order_input.source_updated_at,
        }
        if customer is not None:
            # An update without a customer (an event) leaves the stored buyer alone.
            values["customer_external_id"] = customer.external_id
            values["customer_email_index"] = _email_index(self.cipher, customer)
        if profile_id is not None:
            values["profile_id"] = profile_id
        # Rolled up by its day and its customer: when either moves, the days it leaves (and its
        # former customer's later orders, which may now be first orders) are recomputed too.
        regrouped = values["placed_at"] != as_utc(order.placed_at) or any(
            key in values and values[key] != getattr(order, key)
            for key in ("customer_external_id", "customer_email_index", "profile_id")
        )
        if regrouped:
            mark_order_days(self.session, self.workspace_id, [order])
        attribution_fields = {
            "total",
            "currency",
            "profile_id",
            "anonymous_id",
            "discount_codes",
            "landing_page",
            "referrer",
            "marketing",
            "placed_at",
        }
        for key, value in values.items():
            current = getattr(order, key)
            if isinstance(current, datetime):
                current = as_utc(current)
            if current != value:
                setattr(order, key, value)
                changed = True
                stale = stale or key in attribution_fields
        if regrouped:
            self.session.flush()
            mark_order_days(self.session, self.workspace_id, [order])
        customer_document = customer.sealed_document() if customer else {}
        if customer is not None and customer_document != _open_customer(self.cipher, order):
            order.customer_sealed = (
                self.cipher.seal(orjson.dumps(customer_document), _customer_aad(order.id))
                if customer_document
                else None
            )
            changed = True
        lines = _line_rows(self.workspace_id, order.id, order_input.lines)
        if [_line_key(line) for line in lines] != [_line_key(line) for line in stored_lines]:
            self.repository.replace_lines(order.id, lines)
            changed = True
        refunds_changed, status_changed = self._upsert_refunds(
            order, order_input.refunds, order_input.source, stored_refunds, order_input.status
        )
        changed = changed or refunds_changed or status_changed
        stale = stale or refunds_changed or status_changed
        if not changed:
            return "unchanged"
        order.updated_at = utcnow()
        if stale:
            order.attribution_stale = True
        return "updated"

    def _fill_marketing(
        self, order: Order, order_input: OrderInput, profile_id: uuid.UUID | None
    ) -> ApplyOutcome:
        """A weaker source (an event about a platform order) may only fill what is missing."""
        changed = False
        filled = {
            "landing_page": marketing_url(order_input.landing_page),
            "referrer": marketing_url(order_input.referrer),
            "anonymous_id": order_input.anonymous_id,
        }
        for key, value in filled.items():
            if getattr(order, key) is None and value:
                setattr(order, key, value)
                changed = True
        if order.profile_id is None and profile_id is not None:
            order.profile_id = profile_id
            changed = True
        missing = {
            key: value
            for key, value in _marketing(order_input).items()
            if key not in order.marketing
        }
        if missing:
            order.marketing = {**order.marketing, **missing}
            changed = True
        if not changed:
            return "unchanged"
        order.updated_at = utcnow()
        order.attribution_stale = True
        return "updated"

    def _upsert_refunds(
        self,
        order: Order,
        refunds: Sequence[RefundInput],
        source: str,
        stored: dict[str, Refund],
        base_status: str | None,
    ) -> tuple[bool, bool]:
        """Upsert refunds on their external id, then recompute refunded_total and status;
        returns (refunds changed, status changed). ``stored`` is the order's refunds by id."""
        refunds_changed = False
        for refund_input in refunds:
            row = stored.get(refund_input.external_id)
            amount = refund_input.amount.quantize(MONEY_QUANTUM)
            if row is None:
                row = Refund(
                    id=new_id(),
                    workspace_id=self.workspace_id,
                    order_id=order.id,
                    external_id=refund_input.external_id,
                    amount=amount,
                    refunded_at=refund_input.refunded_at,
                    reason=refund_reason(refund_input.reason),
                    source=source,
                    created_at=utcnow(),
                )
                self.repository.add_refund(row)
                stored[row.external_id] = row
                refunds_changed = True
            elif Decimal(row.amount) != amount:
                row.amount = amount
                refunds_changed = True
        refunded_total = sum((Decimal(row.amount) for row in stored.values()), Decimal(0))
        if Decimal(order.refunded_total) != refunded_total:
            order.refunded_total = refunded_total
            refunds_changed = True
        status = _final_status(
            base_status if base_status is not None else order.status,
            Decimal(order.total),
            refunded_total,
        )
        status_changed = status != order.status
        order.status = status
        return refunds_changed, status_changed

    def add_refunds(self, external_id: str, refunds: Sequence[RefundInput], source: str) -> bool:
        """Refunds reported apart from their order (an event, a refund webhook). Returns False
        when the order is unknown or belongs to a stronger source, which reports its own."""
        order = self.repository.by_external_id(external_id)
        if order is None or SOURCE_RANK.get(order.source, 0) > SOURCE_RANK.get(source, 0):
            return False
        base = _base_status(order.status)
        stored = {refund.external_id: refund for refund in self.repository.refunds(order.id)}
        refunds_changed, status_changed = self._upsert_refunds(order, refunds, source, stored, base)
        if refunds_changed or status_changed:
            order.attribution_stale = True
            order.updated_at = utcnow()
        self.session.flush()
        return True

    def cancel(self, external_id: str, source: str, at: datetime) -> bool:
        """Mark an order cancelled (a cancellation event); False if unknown, newer, or owned
        by a stronger source."""
        order = self.repository.by_external_id(external_id)
        if order is None or SOURCE_RANK.get(order.source, 0) > SOURCE_RANK.get(source, 0):
            return False
        if as_utc(at) < as_utc(order.source_updated_at):
            return False
        if order.status != "cancelled":
            order.status = "cancelled"
            order.attribution_stale = True
            order.updated_at = utcnow()
        order.source_updated_at = at
        self.session.flush()
        return True

    def quarantine(
        self,
        *,
        source: str,
        reason: str,
        field: str | None,
        detail: str,
        raw: bytes,
        message_id: str | None = None,
    ) -> uuid.UUID:
        """Set a payload aside with the reason. ``message_id`` (a webhook's delivery id, an
        event's message id) keeps retries of the same payload to one open entry."""
        if message_id is not None:
            message_id = message_id[:255]
            existing = self.repository.open_quarantined(source, message_id)
            if existing is not None:
                return existing
        item_id = new_id()
        self.repository.add_quarantined(
            QuarantinedEvent(
                id=item_id,
                workspace_id=self.workspace_id,
                source=source,
                received_at=utcnow(),
                batch_index=None,
                message_id=message_id,
                reason=reason[:48],
                field=field[:255] if field else None,
                detail=detail[:1000],
                payload_sealed=self.cipher.seal(raw, row_aad("quarantine", item_id, "payload")),
                status="open",
            )
        )
        self.session.flush()
        return item_id

    def charge_cancellation(
        self, customer_external_id: str, source: str, refund: RefundInput
    ) -> Decimal:
        """A cancellation that does not name the order it cancels (a UCI ``C`` invoice),
        recorded as refunds of the customer's own orders of ``source`` placed at or before it:
        the latest first, then earlier ones, each up to what it has left (a later sale is not
        what it cancels, and charging one would make the result depend on the import order).
        All or nothing: when the customer's orders cannot cover the amount nothing is written
        and the uncovered amount is returned (0 when recorded). Idempotent on the refund id."""
        amount = refund.amount.quantize(MONEY_QUANTUM)
        orders = self.repository.customer_orders(customer_external_id, source)
        stored = self.repository.refunds_by_external_id(refund.external_id, source)
        if stored and sum((Decimal(row.amount) for row in stored), Decimal(0)) == amount:
            return Decimal(0)
        by_id = {order.id: order for order in orders}
        for row in stored:
            if row.order_id not in by_id:
                # Charged to an order whose customer changed since: recounted below.
                other = self.repository.get(row.order_id)
                assert other is not None
                by_id[other.id] = other
        refunds = self.repository.refunds_of(list(by_id))
        for row in stored:
            # A different amount than recorded (a corrected file): charge it again.
            refunds[row.order_id] = [r for r in refunds[row.order_id] if r.id != row.id]
            self.session.delete(row)
        if stored:
            self.session.flush()
        at = as_utc(refund.refunded_at)
        before = sorted(
            (o for o in orders if as_utc(o.placed_at) <= at), key=lambda o: as_utc(o.placed_at)
        )
        plan: list[tuple[Order, Decimal]] = []
        left = amount
        for order in reversed(before):
            if left <= 0:
                break
            if order.status == "cancelled":
                continue
            room = Decimal(order.total) - sum(
                (Decimal(r.amount) for r in refunds[order.id]), Decimal(0)
            )
            if room > 0:
                plan.append((order, min(room, left)))
                left -= min(room, left)
        if left > 0:
            for row in stored:
                self._recount(by_id[row.order_id], refunds[row.order_id])
            return left
        for order, share in plan:
            existing = {r.external_id: r for r in refunds[order.id]}
            self._upsert_refunds(
                order,
                [RefundInput(refund.external_id, share, refund.refunded_at, refund.reason)],
                source,
                existing,
                _base_status(order.status),
            )
            refunds[order.id] = list(existing.values())
            order.attribution_stale = True
            order.updated_at = utcnow()
        for row in stored:
            if row.order_id not in {order.id for order, _ in plan}:
                self._recount(by_id[row.order_id], refunds[row.order_id])
        self.session.flush()
        return Decimal(0)

    def _recount(self, order: Order, refunds: Sequence[Refund]) -> None:
        self._upsert_refunds(
            order, [], order.source, {r.external_id: r for r in refunds}, _base_status(order.status)
        )
        order.attribution_stale = True
        order.updated_at = utcnow()

    def delivery_seen(self, provider: str, delivery_id: str) -> bool:
        return self.repository.delivery_seen(provider, delivery_id)

    def record_delivery(self, provider: str, delivery_id: str, topic: str) -> None:
        self.repository.add_delivery(
            WebhookDelivery(
                id=new_id(),
                workspace_id=self.workspace_id,
                provider=provider,
                delivery_id=delivery_id[:255],
                topic=topic[:64],
                received_at=utcnow(),
            )
        )
        self.session.flush()


def apply_order(
    session: Session, cipher: WorkspaceCipher, workspace_id: uuid.UUID, order_input: OrderInput
) -> ApplyResult:
    return OrderWriter(session, cipher, workspace_id).apply([order_input])[0]


# -- reads -----------------------------------------------------------------------------------


def _summary_fields(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "external_id": order.external_id,
        "source": order.source,
        "source_channel": order.source_channel,
        "status": order.status,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount_total": order.discount_total,
        "shipping": order.shipping,
        "tax": order.tax,
        "total": order.total,
        "refunded_total": order.refunded_total,
        "profile_id": order.profile_id,
        "customer_external_id": order.customer_external_id,
        "discount_codes": list(order.discount_codes),
        "placed_at": as_utc(order.placed_at),
        "source_updated_at": as_utc(order.source_updated_at),
    }


def list_orders(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    source: str | None = None,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    profile_id: uuid.UUID | None = None,
) -> OrderPage:
    check_limit(limit)
    rows = OrderRepository(session, workspace_id).page(
        limit=limit + 1,
        cursor=decode_cursor(cursor),
        status=status,
        source=source,
        placed_from=as_utc(placed_from) if placed_from else None,
        placed_to=as_utc(placed_to) if placed_to else None,
        profile_id=profile_id,
    )
    items = [OrderSummary(**_summary_fields(row)) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(rows[limit - 1].placed_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return OrderPage(items=items, next_cursor=next_cursor)


# An order is announced live only if it was placed this recently before the cursor: it keeps the
# poll on the (workspace, placed_at) index, and an old order imported today is no news.
NOTICE_PLACED_WINDOW = timedelta(days=2)


def orders_created_after(
    session: Session,
    workspace_id: uuid.UUID,
    after: datetime,
    *,
    limit: int = 50,
    exclude: Collection[uuid.UUID] = (),
) -> list[OrderNotice]:
    """Orders stored after ``after`` (placed within NOTICE_PLACED_WINDOW of it), oldest first,
    leaving out the ids in ``exclude`` (already announced)."""
    check_limit(limit)
    moment = as_utc(after)
    rows = OrderRepository(session, workspace_id).created_after(
        moment, placed_from=moment - NOTICE_PLACED_WINDOW, limit=limit, exclude=exclude
    )
    return [
        OrderNotice(
            id=row.id,
            source=row.source,
            status=row.status,
            currency=row.currency,
            total=row.total,
            placed_at=as_utc(row.placed_at),
            created_at=as_utc(row.created_at),
        )
        for row in rows
    ]


def get_order(
    session: Session, workspace_id: uuid.UUID, cipher: WorkspaceCipher, order_id: uuid.UUID
) -> OrderDetail:
    repository = OrderRepository(session, workspace_id)
    order = repository.get(order_id)
    if order is None:
        raise NotFound(f"no order {order_id} in this workspace", field="order_id")
    return OrderDetail(
        **_summary_fields(order),
        anonymous_id=order.anonymous_id,
        landing_page=order.landing_page,
        referrer=order.referrer,
        marketing=dict(order.marketing),
        customer=_open_customer(cipher, order),
        lines=[
            OrderLineOut(
                position=line.position,
                sku=line.sku,
                product_id=line.product_id,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount=line.discount,
            )
            for line in repository.lines(order.id)
        ],
        refunds=[
            RefundOut(
                id=refund.id,
                external_id=refund.external_id,
                amount=refund.amount,
                refunded_at=as_utc(refund.refunded_at),
                reason=refund.reason,
                source=refund.source,
            )
            for refund in repository.refunds(order.id)
        ],
    )
