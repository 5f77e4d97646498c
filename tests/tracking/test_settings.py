"""The tracking settings refuse values that would break cookies or trust the wrong peers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from storeloop.config import Settings


def test_valid_tracking_settings() -> None:
    settings = Settings(cookie_domain=".store.com", trusted_proxies="10.0.0.0/8, 2001:db8::1")
    assert (settings.cookie_domain, settings.trusted_proxies) == (
        ".store.com",
        "10.0.0.0/8, 2001:db8::1",
    )
    assert Settings(cookie_domain="").cookie_domain is None


@pytest.mark.parametrize("domain", [".store.com; Path=/", "store com", ".store.com\r\nX: 1", "."])
def test_cookie_domain_must_be_a_domain(domain: str) -> None:
    with pytest.raises(ValidationError, match=r"is not a domain such as \.store\.com"):
        Settings(cookie_domain=domain)


def test_trusted_proxies_must_be_networks() -> None:
    with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP address"):
        Settings(trusted_proxies="10.0.0.0/8 proxy.local")
