"""What a click keeps of the visitor's browser: a referrer without its query, and a user agent
reduced to browser family, OS and device class (e.g. ``"Safari/iOS/mobile"``).

The full strings can identify a person (a referrer's query may carry an email address or a
search; a user agent plus an IP range nearly fingerprints a device), and reports only need the
reduced form. Bot rules read the full user agent before it is reduced.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# (token in the user agent, browser family): first match wins, so in-app browsers and
# Chromium derivatives come before the engines they are built on.
_BROWSERS = (
    ("instagram", "Instagram"),
    ("fban/", "Facebook"),
    ("fbav/", "Facebook"),
    ("bytedancewebview", "TikTok"),
    ("musical_ly", "TikTok"),
    ("snapchat", "Snapchat"),
    ("pinterest", "Pinterest"),
    ("linkedinapp", "LinkedIn"),
    ("viber", "Viber"),
    (" line/", "Line"),
    ("edg/", "Edge"),
    ("opr/", "Opera"),
    ("samsungbrowser", "Samsung Internet"),
    ("firefox/", "Firefox"),
    ("fxios/", "Firefox"),
    ("crios/", "Chrome"),
    ("chrome/", "Chrome"),
    ("safari/", "Safari"),
)
_SYSTEMS = (
    ("iphone", "iOS"),
    ("ipad", "iOS"),
    ("android", "Android"),
    ("windows", "Windows"),
    ("cros", "ChromeOS"),
    ("mac os x", "macOS"),
    ("macintosh", "macOS"),
    ("linux", "Linux"),
)


def reduce_user_agent(user_agent: str | None) -> str | None:
    """``browser/os/device`` with ``other`` for what is not recognised; None stays None."""
    if user_agent is None:
        return None
    lowered = user_agent.lower()
    browser = next((name for token, name in _BROWSERS if token in lowered), "other")
    system = next((name for token, name in _SYSTEMS if token in lowered), "other")
    if "ipad" in lowered or "tablet" in lowered:
        device = "tablet"
    elif "mobile" in lowered or "iphone" in lowered:
        device = "mobile"
    elif system in ("Windows", "macOS", "Linux", "ChromeOS"):
        device = "desktop"
    else:
        device = "other"
    return f"{browser}/{system}/{device}"


def reduce_referrer(referrer: str | None) -> str | None:
    """Scheme, host and path of an http(s) referrer; no user info, port, query or fragment."""
    if not referrer:
        return None
    try:
        parts = urlsplit(referrer.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return urlunsplit((parts.scheme.lower(), host, parts.path, "", ""))
