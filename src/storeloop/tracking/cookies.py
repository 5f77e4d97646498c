"""The two first-party cookies: the click id of the last tracked link, and the visitor id."""

from __future__ import annotations

import re
import uuid

from storeloop.kit.tracking_params import CLICK_ID_PARAMETER

# The click cookie has the landing URL parameter's name.
CLICK_COOKIE = CLICK_ID_PARAMETER
VISITOR_COOKIE = "sl_aid"
# 400 days: the longest lifetime browsers accept for a cookie.
COOKIE_MAX_AGE = 400 * 24 * 3600
VISITOR_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"') or None
    return None


def click_cookie_value(workspace_id: uuid.UUID, click_id: str) -> str:
    """The click cookie names its store (``<workspace hex>.<click id>``): a cookie shared by
    several stores under one cookie domain is only ever handed back to its own store."""
    return f"{workspace_id.hex}.{click_id}"


def click_id_for(value: str | None, workspace_id: uuid.UUID) -> str | None:
    """The click id of a click cookie set for ``workspace_id``, else None."""
    if not value:
        return None
    owner, separator, click = value.partition(".")
    if not separator or owner != workspace_id.hex:
        return None
    try:
        return str(uuid.UUID(click))
    except ValueError:
        return None


def set_cookie(name: str, value: str, *, secure: bool, domain: str | None) -> bytes:
    """A server-set cookie: HttpOnly, SameSite=Lax, 400 days, on ``domain`` when given."""
    parts = [f"{name}={value}", f"Max-Age={COOKIE_MAX_AGE}", "Path=/", "SameSite=Lax", "HttpOnly"]
    if secure:
        parts.append("Secure")
    if domain:
        parts.append(f"Domain={domain}")
    return "; ".join(parts).encode("latin-1")
