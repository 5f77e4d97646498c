"""Which stored events later domains derive data from: orders and marketing touchpoints.

The processor queues these in the same transaction as the event (models.DerivationTask), so
the order and attribution pipelines see every one of them exactly when it is stored: page and
screen views with a marketing signal (campaign, click ids, an external referrer) and order and
coupon events. Most page views (internal navigation) and every other track event are not queued.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from storeloop.ingestion.validation import COUPON_EVENTS, ORDER_EVENTS
from storeloop.kit.tracking_params import AD_CLICK_ID_PARAMETERS, CLICK_ID_PARAMETER

# Query parameter prefixes that mark a landing from a campaign or an ad platform.
_MARKERS = ("utm_", CLICK_ID_PARAMETER, *AD_CLICK_ID_PARAMETERS)


def needs_derivation(document: dict[str, Any]) -> bool:
    message_type = document.get("type")
    if message_type == "track":
        # Track events on a landing page repeat the page view's campaign and referrer (SDKs
        # copy them onto every event of the page): only orders and coupons matter here.
        name = document.get("event")
        return name in ORDER_EVENTS or name in COUPON_EVENTS
    if message_type not in ("page", "screen"):
        return False
    context = document.get("context")
    if not isinstance(context, dict):
        return False
    if context.get("campaign") or context.get("storeloop"):
        return True
    page = context.get("page")
    if not isinstance(page, dict):
        return False
    url = page.get("url")
    search = page.get("search")
    for text in (url, search):
        if isinstance(text, str) and _has_marketing_parameter(text):
            return True
    referrer = page.get("referrer")
    if isinstance(referrer, str) and referrer:
        return _host(referrer) != _host(url) if isinstance(url, str) else True
    return False


def _has_marketing_parameter(text: str) -> bool:
    query = text.split("?", 1)[1] if "?" in text else text
    return any(marker in query for marker in _MARKERS)


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")
