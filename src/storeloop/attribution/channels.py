"""The channel grouping: which of ten channels a marketing contact counts under.

Pure functions. The default grouping is documented as a table in docs/attribution.md; a
workspace can put ordered override rules in front of it (StoreSettings.channel_rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from storeloop.kit.errors import ValidationFailed
from storeloop.kit.tracking_params import AD_CLICK_ID_PARAMETERS

ORGANIC_SOCIAL = "Organic Social"
PAID_SOCIAL = "Paid Social"
INFLUENCER = "Influencer"
AFFILIATE = "Affiliate"
EMAIL = "Email"
SMS = "SMS"
ORGANIC_SEARCH = "Organic Search"
PAID_SEARCH = "Paid Search"
REFERRAL = "Referral"
DIRECT = "Direct"
CHANNELS = (
    ORGANIC_SOCIAL,
    PAID_SOCIAL,
    INFLUENCER,
    AFFILIATE,
    EMAIL,
    SMS,
    ORGANIC_SEARCH,
    PAID_SEARCH,
    REFERRAL,
    DIRECT,
)

# Click ids only ad platforms add: a landing carrying one came from a paid ad.
PAID_SEARCH_CLICK_IDS = frozenset({"gclid", "gbraid", "wbraid", "msclkid"})
PAID_SOCIAL_CLICK_IDS = frozenset({"ttclid", "twclid", "li_fat_id", "epik", "sccid"})
# Facebook appends fbclid to every outbound link, organic posts included, so it alone proves
# nothing about payment: it means Organic Social unless utm_medium says paid.
ORGANIC_SOCIAL_CLICK_IDS = frozenset({"fbclid", "igshid"})
CLICK_ID_PARAMETERS = PAID_SEARCH_CLICK_IDS | PAID_SOCIAL_CLICK_IDS | ORGANIC_SOCIAL_CLICK_IDS
# Every ad click id the kit names is grouped above (a new one must be placed in a group).
assert frozenset(AD_CLICK_ID_PARAMETERS) <= CLICK_ID_PARAMETERS

PAID_MEDIUMS = frozenset(
    {"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "cpa", "display", "ads"}
)
PAID_SOCIAL_MEDIUMS = frozenset({"paid_social", "paidsocial", "paid-social", "social_paid"})
SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
AFFILIATE_MEDIUMS = frozenset({"affiliate", "affiliates", "partner", "partners"})
INFLUENCER_MEDIUMS = frozenset({"influencer", "influencers", "creator", "creators", "ugc"})
EMAIL_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "newsletter", "mail"})
SMS_MEDIUMS = frozenset({"sms", "text", "mms", "whatsapp"})
ORGANIC_MEDIUMS = frozenset({"organic", "seo"})
REFERRAL_MEDIUMS = frozenset({"referral", "link"})

# Host suffixes (compared after dropping "www.", "m.", "l.", "lm." prefixes).
SOCIAL_HOSTS = {
    "instagram.com": "instagram",
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "fb.me": "facebook",
    "messenger.com": "facebook",
    "tiktok.com": "tiktok",
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "pinterest.com": "pinterest",
    "pin.it": "pinterest",
    "x.com": "x",
    "twitter.com": "x",
    "t.co": "x",
    "threads.net": "threads",
    "snapchat.com": "snapchat",
    "linkedin.com": "linkedin",
    "lnkd.in": "linkedin",
    "reddit.com": "reddit",
}
SOCIAL_SOURCES = frozenset(
    {
        *SOCIAL_HOSTS.values(),
        "ig",
        "fb",
        "tt",
        "yt",
        "twitter",
        "meta",
        "instagram_stories",
        "facebook_ads",
        "tiktok_ads",
    }
)
SEARCH_HOSTS = (
    "google.",
    "bing.com",
    "duckduckgo.com",
    "yahoo.com",
    "search.yahoo.",
    "baidu.com",
    "yandex.",
    "ecosia.org",
    "search.brave.com",
    "startpage.com",
    "qwant.com",
)
SEARCH_SOURCES = frozenset(
    {"google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "brave", "qwant"}
)
# User-agent markers of the in-app browsers of social apps (no referrer is sent from most).
IN_APP_BROWSER_MARKERS = (
    ("Instagram", "instagram"),
    ("FBAN", "facebook"),
    ("FBAV", "facebook"),
    ("FB_IAB", "facebook"),
    ("musical_ly", "tiktok"),
    ("BytedanceWebview", "tiktok"),
    ("TikTok", "tiktok"),
    ("Pinterest", "pinterest"),
    ("Twitter", "x"),
    ("Snapchat", "snapchat"),
    ("LinkedInApp", "linkedin"),
)

_RULE_FIELDS = ("source", "medium", "referrer_host", "campaign")


@dataclass(frozen=True, slots=True)
class ChannelInput:
    """What is known of one contact; every text field is compared lower-cased."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    referrer_host: str | None = None
    user_agent: str | None = None
    click_ids: frozenset[str] = field(default_factory=frozenset)
    # A tracked link or discount code that belongs to an influencer.
    has_influencer: bool = False
    # The channel set on the linked campaign (Campaign.channel), if any.
    campaign_channel: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """``match`` values are compared case-insensitively; all given fields must match."""

    match: tuple[tuple[str, str], ...]
    channel: str

    def matches(self, contact: ChannelInput) -> bool:
        for name, expected in self.match:
            value = getattr(contact, name)
            if value is None or value.lower() != expected:
                return False
        return True


def parse_channel_rules(raw: Sequence[Any]) -> list[ChannelRule]:
    """Validate stored or submitted rules: ``[{"match": {...}, "channel": "..."}]``."""
    rules: list[ChannelRule] = []
    for index, item in enumerate(raw):
        where = f"channel_rules[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationFailed("a channel rule is an object", field=where)
        match = item.get("match")
        channel = item.get("channel")
        if channel not in CHANNELS:
            raise ValidationFailed(
                f"channel must be one of: {', '.join(CHANNELS)}", field=f"{where}.channel"
            )
        if not isinstance(match, Mapping) or not match:
            raise ValidationFailed("match needs at least one field", field=f"{where}.match")
        pairs: list[tuple[str, str]] = []
        for name, value in sorted(match.items()):
            if name not in _RULE_FIELDS:
                raise ValidationFailed(
                    f"match fields are {', '.join(_RULE_FIELDS)}", field=f"{where}.match.{name}"
                )
            if not isinstance(value, str) or not value:
                raise ValidationFailed("match values are strings", field=f"{where}.match.{name}")
            pairs.append((name, value.lower()))
        rules.append(ChannelRule(tuple(pairs), str(channel)))
    return rules


def normalize_host(host: str | None) -> str | None:
    if not host:
        return None
    host = host.lower().rstrip(".")
    for prefix in ("www.", "m.", "l.", "lm.", "mobile.", "web."):
        if host.startswith(prefix):
            host = host[len(prefix) :]
            break
    return host or None


def url_host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return normalize_host(urlsplit(url).hostname)
    except ValueError:
        return None


def query_parameters(url_or_query: str | None) -> dict[str, str]:
    """The query parameters of a URL or a bare query string, first value wins, keys lower.

    The one parser of marketing parameters: other domains (orders) use it too, so ``UTM_Source``
    and ``utm_source`` mean the same everywhere."""
    if not url_or_query:
        return {}
    text = url_or_query
    if "?" in text:
        text = text.split("?", 1)[1]
    elif "://" in text:
        return {}
    text = text.split("#", 1)[0].lstrip("?")
    parameters: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parameters.setdefault(key.lower(), value)
    return parameters


def _host_matches(host: str, suffix: str) -> bool:
    return host == suffix or host.endswith("." + suffix)


def social_network_of_host(host: str | None) -> str | None:
    if not host:
        return None
    for suffix, network in SOCIAL_HOSTS.items():
        if _host_matches(host, suffix):
            return network
    return None


def is_search_host(host: str | None) -> bool:
    if not host:
        return False
    return any(
        host.startswith(marker) or f".{marker}" in host or _host_matches(host, marker)
        for marker in SEARCH_HOSTS
    )


def in_app_browser(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    for marker, network in IN_APP_BROWSER_MARKERS:
        if marker in user_agent:
            return network
    return None


def default_channel(contact: ChannelInput) -> str:
    """The default grouping; the order of the checks is the table in docs/attribution.md."""
    source = (contact.source or "").strip().lower()
    medium = (contact.medium or "").strip().lower()
    host = normalize_host(contact.referrer_host)
    paid = medium in PAID_MEDIUMS or medium in PAID_SOCIAL_MEDIUMS
    social_source = (
        source in SOCIAL_SOURCES
        or social_network_of_host(normalize_host(source)) is not None
        or social_network_of_host(host) is not None
        or bool(contact.click_ids & ORGANIC_SOCIAL_CLICK_IDS)
    )
    search_source = source in SEARCH_SOURCES or is_search_host(host)

    if contact.has_influencer or medium in INFLUENCER_MEDIUMS:
        return INFLUENCER
    if medium in AFFILIATE_MEDIUMS:
        return AFFILIATE
    if medium in EMAIL_MEDIUMS or source in {"email", "newsletter"}:
        return EMAIL
    if medium in SMS_MEDIUMS or source == "sms":
        return SMS
    if medium in PAID_SOCIAL_MEDIUMS or (paid and social_source):
        return PAID_SOCIAL
    if paid:
        return PAID_SEARCH
    if contact.click_ids & PAID_SEARCH_CLICK_IDS:
        return PAID_SEARCH
    if contact.click_ids & PAID_SOCIAL_CLICK_IDS:
        return PAID_SOCIAL
    if contact.campaign_channel in CHANNELS and contact.campaign_channel != DIRECT:
        return str(contact.campaign_channel)
    if (
        medium in SOCIAL_MEDIUMS
        or social_source
        or contact.click_ids & ORGANIC_SOCIAL_CLICK_IDS
        or in_app_browser(contact.user_agent) is not None
    ):
        return ORGANIC_SOCIAL
    if medium in ORGANIC_MEDIUMS or search_source:
        return ORGANIC_SEARCH
    if medium in REFERRAL_MEDIUMS or host or source or medium:
        # Tagged traffic nothing above recognises, and any other external site.
        return REFERRAL
    return DIRECT


def classify(contact: ChannelInput, rules: Sequence[ChannelRule] = ()) -> str:
    """The first matching workspace rule wins; otherwise the default grouping."""
    for rule in rules:
        if rule.matches(contact):
            return rule.channel
    return default_channel(contact)
