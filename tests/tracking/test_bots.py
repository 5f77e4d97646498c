"""Bot rules and address handling, as pure functions."""

from __future__ import annotations

import pytest

from storeloop.kit.ids import new_id
from storeloop.tracking.bots import VelocityRule, user_agent_verdict
from storeloop.tracking.network import client_ip, parse_networks, truncate_ip
from storeloop.tracking.repository import destination_host, host_allowed

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "verdict"),
    [
        (CHROME, None),
        ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Instagram 320.0.0.0", None),
        ("Twitterbot/1.0", "link_preview"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "link_preview"),
        (
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "link_preview",
        ),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "user_agent"),
        ("python-requests/2.32.3", "user_agent"),
        ("   ", "no_user_agent"),
        (None, "no_user_agent"),
    ],
)
def test_user_agent_verdicts(user_agent: str | None, verdict: str | None) -> None:
    assert user_agent_verdict(user_agent) == verdict


def test_velocity_counts_per_key_within_a_sliding_minute() -> None:
    rule = VelocityRule(3)
    link, other = new_id(), new_id()
    start = 1_000_040.0  # 20 s into a minute window (windows start at multiples of 60 s)
    verdicts = [rule.exceeded(link, "198.51.100.0/24", CHROME, start + i) for i in range(5)]
    assert verdicts == [False, False, False, True, True]
    assert rule.exceeded(other, "198.51.100.0/24", CHROME, start + 5) is False
    assert rule.exceeded(link, "203.0.113.0/24", CHROME, start + 5) is False
    # 50 s into the next window: the previous minute's 5 clicks still weigh 5 x 10/60 < 1.
    assert rule.exceeded(link, "198.51.100.0/24", CHROME, 1_000_130.0) is False
    # Two windows later nothing is remembered.
    later = [rule.exceeded(link, "198.51.100.0/24", CHROME, 1_000_250.0 + i) for i in range(4)]
    assert later == [False, False, False, True]


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("198.51.100.23", "198.51.100.0/24"),
        ("::ffff:198.51.100.23", "198.51.100.0/24"),
        ("2001:db8:abcd:12:1::5", "2001:db8:abcd::/48"),
        ("testclient", None),
        (None, None),
    ],
)
def test_addresses_are_cut_to_their_network(address: str | None, truncated: str | None) -> None:
    assert truncate_ip(address) == truncated


def test_forwarded_for_is_read_from_the_right_past_trusted_proxies() -> None:
    proxies = parse_networks("10.0.0.0/8,192.168.1.1")
    assert client_ip("10.0.0.5", "1.2.3.4, 5.6.7.8, 192.168.1.1", proxies) == "5.6.7.8"
    assert client_ip("10.0.0.5", "10.0.0.9", proxies) == "10.0.0.5"
    assert client_ip("8.8.8.8", "1.2.3.4", proxies) == "8.8.8.8"
    assert client_ip("10.0.0.5", "1.2.3.4", ()) == "10.0.0.5"
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        parse_networks("10.0.0.0/8, not-a-network")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://store.com/a", True),
        ("http://STORE.com./a", True),
        ("https://shop.store.com:8443/a", True),
        ("https://store.com.evil.com/", False),
        ("https://evilstore.com/", False),
        ("https://a@store.com/", False),
        ("//store.com/", False),
        ("https:/\\store.com/", False),
        ("https://store.com:99999/", False),
        ("data:text/html,store.com", False),
    ],
)
def test_destination_hosts(url: str, allowed: bool) -> None:
    host = destination_host(url)
    assert (host is not None and host_allowed(host, ("store.com",))) is allowed
