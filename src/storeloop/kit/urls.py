"""Web URLs and host names read one way everywhere: the open-redirect check of tracked links
(at creation, on edit and again at redirect time), post URLs and the store's allowed domains.

A URL is accepted only when there is no room for a browser to read it differently from us; the
redirect then writes the host we checked, so what was checked is what the visitor gets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_HOST_LENGTH = 253


@dataclass(frozen=True, slots=True)
class WebUrl:
    """An absolute http(s) URL split into parts, its host in lower-case ASCII (IDNA)."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str
    fragment: str


def normalize_host(value: str) -> str | None:
    """``value`` as a lower-case ASCII host name (IDNA, no trailing dot), or None when it is not
    one: every label letters, digits and inner hyphens, and not an IP address."""
    host = value.strip().lower().rstrip(".")
    if not host or len(host) > _MAX_HOST_LENGTH * 2:
        return None
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = host.split(".")
    if len(host) > _MAX_HOST_LENGTH or not all(_LABEL.match(label) for label in labels):
        return None
    # A numeric last label is an IP address, not a domain a store lives on.
    if labels[-1].isdigit():
        return None
    return host


def parse_web_url(url: str) -> WebUrl | None:
    """The parts of an absolute http(s) URL without user info, or None.

    Anything a browser might read differently from ``urlsplit`` is refused rather than
    interpreted: backslashes, spaces, control and invisible characters (DEL and C1 included),
    ``user@host``, percent signs or other non-host characters in the host, malformed ports.
    """
    if any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not hostname or "@" in parts.netloc:
        return None
    host = normalize_host(hostname)
    if host is None:
        return None
    return WebUrl(scheme, host, port, parts.path, parts.query, parts.fragment)


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The list bundled with the package: read once, never fetched at run time.
    return PublicSuffixList()


def is_public_suffix(domain: str) -> bool:
    """Whether ``domain`` (normalised) is a top-level domain or another public suffix such as
    ``co.uk`` or ``myshopify.com``, under which anyone can register a site."""
    return "." not in domain or bool(_public_suffixes().is_public(domain))


def host_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """A domain allows itself and its subdomains, nothing else (not ``store.com.evil.com``).

    A public suffix never allows anything, even if one was stored before it was refused.
    """
    return any(
        (host == domain or host.endswith("." + domain)) and not is_public_suffix(domain)
        for domain in allowed_domains
    )


def destination_allowed(url: str, allowed_domains: Iterable[str]) -> bool:
    """Whether a tracked link may redirect to ``url``: an http(s) URL read the same way by every
    browser, whose host is an allowed domain or a subdomain of one."""
    parsed = parse_web_url(url)
    return parsed is not None and host_allowed(parsed.host, allowed_domains)
