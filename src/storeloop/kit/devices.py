"""The device class of a user agent (mobile, tablet, desktop, bot), for reports to group on.

ua-parser's maintained regexes name the device and the OS; the class follows from them and
from the "Mobi" token browsers put in phone user agents (the rule MDN recommends). Crawlers are
recognised by ua-parser ("Spider") and crawlerdetect's list, as tracked-link clicks are.
"""

from __future__ import annotations

from functools import lru_cache

from crawlerdetect import CrawlerDetect
from ua_parser import parse_device, parse_os

MOBILE = "mobile"
TABLET = "tablet"
DESKTOP = "desktop"
BOT = "bot"
UNKNOWN = "unknown"

_crawler_detect = CrawlerDetect()
_MOBILE_OPERATING_SYSTEMS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS"}
)


@lru_cache(maxsize=8192)
def device_class(user_agent: str | None) -> str:
    if not user_agent or not user_agent.strip():
        return UNKNOWN
    device = parse_device(user_agent)
    if (device is not None and device.family == "Spider") or _crawler_detect.is_crawler(user_agent):
        return BOT
    family = device.family if device is not None else ""
    brand = (device.brand or "") if device is not None else ""
    if family.startswith(("iPad", "Kindle")) or "Tablet" in brand or "Tablet" in user_agent:
        return TABLET
    os = parse_os(user_agent)
    os_family = os.family if os is not None else ""
    if os_family == "Android" and "Mobi" not in user_agent:
        return TABLET
    if os_family in _MOBILE_OPERATING_SYSTEMS or "Mobi" in user_agent:
        return MOBILE
    return DESKTOP
