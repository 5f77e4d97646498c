"""The visitor's address as stored: the client behind trusted proxies, cut to its network."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma- or space-separated CIDRs (or single addresses); raises ValueError on a bad one."""
    items = [item for item in text.replace(",", " ").split() if item]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(text: str, proxies: tuple[Network, ...]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in proxies)


def client_ip(
    peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]
) -> str | None:
    """The peer, or, when the peer is a trusted proxy, the right-most untrusted address of
    X-Forwarded-For (the left-most entries are whatever the client chose to send)."""
    if peer is None or not proxies or not forwarded_for or not _trusted(peer, proxies):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        if hop and not _trusted(hop, proxies):
            return hop
    return peer


def peer_is_trusted(peer: str | None, proxies: tuple[Network, ...]) -> bool:
    return peer is not None and bool(proxies) and _trusted(peer, proxies)


@lru_cache(maxsize=8192)
def truncate_ip(text: str | None) -> str | None:
    """IPv4 to its /24, IPv6 to its /48 (``203.0.113.0/24``); None when not an address."""
    if not text:
        return None
    address = _address(text)
    if address is None:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
