"""Helpers shared by the platform mappings: signatures, times, and marketing fields of URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from storeloop.orders.schemas import InvalidPayload

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The storefront script stores these in the cart (Shopify cart attributes, which become the
# order's note_attributes) or in order meta (WooCommerce, with a leading underscore).
ANONYMOUS_ID_ATTRIBUTE = "sl_aid"
CLICK_ID_ATTRIBUTE = "sl_click"


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """base64(HMAC-SHA256(secret, raw body)) compared in constant time."""
    if not header:
        return False
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("ascii", "replace"))


def sign(secret: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def parse_time(raw: Any, path: str, *, required: bool = True) -> datetime | None:
    """An ISO 8601 time; one without an offset is read as UTC (WooCommerce's ``*_gmt``)."""
    if raw is None or raw == "":
        if required:
            raise InvalidPayload(f"{path} is required", field=path, reason="missing_field")
        return None
    if not isinstance(raw, str):
        raise InvalidPayload(f"{path} must be a date-time", field=path, reason="invalid_time")
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPayload(
            f"{path} must be an ISO 8601 date-time", field=path, reason="invalid_time"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def text(raw: Any, limit: int = 2000) -> str | None:
    if isinstance(raw, str) and raw.strip():
        return raw.strip()[:limit]
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return None


def query_marketing(url: str | None) -> dict[str, str]:
    """UTM parameters and the storeloop click id of a landing URL (or a bare path)."""
    if not url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key in UTM_KEYS and key not in found:
            found[key] = value[:255]
        elif key == CLICK_ID_ATTRIBUTE and "click_id" not in found:
            found["click_id"] = value[:255]
    return found


def require_object(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidPayload(
            f"{path or 'the body'} must be a JSON object", field=path or None, reason="wrong_type"
        )
    return raw


def require_list(raw: Any, path: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidPayload(f"{path} must be an array", field=path, reason="wrong_type")
    return raw


def currency(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or len(raw) != 3 or not raw.isascii() or not raw.isalpha():
        raise InvalidPayload(
            f"{path} must be a 3-letter ISO 4217 code", field=path, reason="invalid_currency"
        )
    return raw.upper()


def quantity(raw: Any, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise InvalidPayload(
            f"{path} must be a whole number >= 0", field=path, reason="invalid_quantity"
        )
    return raw
