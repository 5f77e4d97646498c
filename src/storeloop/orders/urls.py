"""Landing pages and referrers as stored on orders: no personal data in clear columns.

Shops record the full landing URL, and email links carry ``?email=`` or a customer token; only
the scheme, host, path and the marketing parameters (UTM, storeloop click id, ad click ids) are
kept. Fragments, user info and every other query parameter are dropped.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from storeloop.kit.tracking_params import MARKETING_PARAMETERS

MAX_URL_LENGTH = 2000


def marketing_url(url: str | None) -> str | None:
    """``url`` (absolute, or a path such as Shopify's ``landing_site``) reduced to what
    attribution reads; None when nothing is left or it is not a URL."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    netloc = ""
    if host:
        netloc = f"{host}:{port}" if port is not None else host
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=False)
        if key in MARKETING_PARAMETERS
    ]
    cleaned = urlunsplit((parts.scheme.lower(), netloc, parts.path, urlencode(kept), ""))
    return cleaned[:MAX_URL_LENGTH] or None
