"""Bot rules and address handling, as pure functions."""

from __future__ import annotations

import re

import pytest
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as _crawler_patterns
from crawlerdetect.providers.exclusions import data as _exclusion_patterns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeloop.kit.ids import new_id
from storeloop.kit.urls import destination_allowed
from storeloop.tracking.bots import VelocityRule, _crawlers, user_agent_key, user_agent_verdict
from storeloop.tracking.network import client_ip, parse_networks, truncate_ip
from storeloop.tracking.privacy import reduce_referrer, reduce_user_agent

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


CHROME_KEY = user_agent_key(CHROME)


def test_velocity_counts_per_key_within_a_sliding_minute() -> None:
    rule = VelocityRule(3)
    link, other = new_id(), new_id()
    start = 1_000_040.0  # 20 s into a minute window (windows start at multiples of 60 s)
    verdicts = [rule.exceeded(link, "198.51.100.0/24", CHROME_KEY, start + i) for i in range(5)]
    assert verdicts == [False, False, False, True, True]
    assert rule.exceeded(other, "198.51.100.0/24", CHROME_KEY, start + 5) is False
    assert rule.exceeded(link, "203.0.113.0/24", CHROME_KEY, start + 5) is False
    # 50 s into the next window: the previous minute's 5 clicks still weigh 5 x 10/60 < 1.
    assert rule.exceeded(link, "198.51.100.0/24", CHROME_KEY, 1_000_130.0) is False
    # Two windows later nothing is remembered.
    later = [rule.exceeded(link, "198.51.100.0/24", CHROME_KEY, 1_000_250.0 + i) for i in range(4)]
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
    assert destination_allowed(url, ("store.com",)) is allowed


IN_APP_BROWSERS = {
    "instagram": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 307.0.0.34.111 (iPhone15,2; iOS 17_1; en_US; "
    "en; scale=3.00; 1179x2556; 531826151)",
    "facebook": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/428.0.0.36.117;FBBV/531113345;"
    "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/16.6;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "tiktok": "Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile "
    "Safari/537.36 trill_320403 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly "
    "app_version/32.4.3 ByteLocale/en Region/US AppId/1233 BytedanceWebview/d8a21c6",
    "snapchat": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Snapchat/12.60.0.38 (like Safari/8617.1.17.10.12, panda)",
    "pinterest": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
    "linkedin": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.1240",
    "viber": "Mozilla/5.0 (Linux; Android 12; SM-A525F Build/SP1A.210812.016; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.66 Mobile "
    "Safari/537.36 Viber/20.8.0.5",
    "line": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Safari Line/13.19.0",
}


@pytest.mark.parametrize("app", sorted(IN_APP_BROWSERS))
def test_in_app_browsers_are_people(app: str) -> None:
    assert user_agent_verdict(IN_APP_BROWSERS[app]) is None


def test_the_snapchat_preview_fetcher_is_a_link_preview() -> None:
    snap = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/83.0.4103.116 Safari/537.36 (compatible; Snap URL Preview Service; bot; snapchat; "
        "https://developers.snap.com/robots)"
    )
    assert user_agent_verdict(snap) == "link_preview"


def test_velocity_keys_hold_a_64_bit_hash_not_the_user_agent() -> None:
    rule = VelocityRule(1)
    link = new_id()
    key = user_agent_key(CHROME)
    assert key is not None
    assert 0 <= key < 2**64
    assert key == user_agent_key(CHROME) != user_agent_key(CHROME + " x")
    assert rule.exceeded(link, "198.51.100.0/24", key, 0.0) is False
    assert list(rule._current) == [(link, "198.51.100.0/24", key)]


@pytest.mark.parametrize(
    ("user_agent", "reduced"),
    [
        (CHROME, "Chrome/Windows/desktop"),
        (IN_APP_BROWSERS["instagram"], "Instagram/iOS/mobile"),
        (IN_APP_BROWSERS["tiktok"], "TikTok/Android/mobile"),
        ("curl/8.5.0", "other/other/other"),
        (None, None),
    ],
)
def test_user_agents_are_kept_reduced(user_agent: str | None, reduced: str | None) -> None:
    assert reduce_user_agent(user_agent) == reduced


@pytest.mark.parametrize(
    ("referrer", "kept"),
    [
        ("https://www.google.com/search?q=ana%40mail.com#top", "https://www.google.com/search"),
        ("https://user:pw@l.instagram.com:8443/out?u=x", "https://l.instagram.com/out"),
        ("android-app://com.google.android.gm/", None),
        ("", None),
    ],
)
def test_referrers_keep_scheme_host_and_path(referrer: str, kept: str | None) -> None:
    assert reduce_referrer(referrer) == kept


# -- the RE2 form of crawlerdetect's patterns gives crawlerdetect's verdicts ---------------------

_BROWSER_TEMPLATES = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{0} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{0} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S91{0}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.{1} Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/12{0}.0.6367.{1} Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{0} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Instagram 3{0}.0.0.34.111 (iPhone15,2; iOS 17_1; en_US; en)",
    "Mozilla/5.0 (Linux; Android 13; Pixel {0} Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.{1} Mobile Safari/537.36 "
    "AppName/musical_ly BytedanceWebview/d8a21c6",
)
_ASCII = st.characters(min_codepoint=32, max_codepoint=126)


def _agrees(user_agent: str) -> bool:
    return _crawlers.is_crawler(user_agent) == CrawlerDetect().is_crawler(user_agent)


def test_browsers_of_the_redirect_benchmark_are_people_for_both() -> None:
    agents = [
        template.format(serial % 10, serial)
        for serial in range(200)
        for template in _BROWSER_TEMPLATES
    ]
    assert [agent for agent in agents if not _agrees(agent)] == []
    assert not any(_crawlers.is_crawler(agent) for agent in agents)


@st.composite
def _pattern_examples(draw: st.DrawFn) -> str:
    """A user agent holding a string one of crawlerdetect's own patterns (crawlers, or the
    exclusions it removes first) matches, inside browser-like text."""
    patterns = draw(st.sampled_from([_crawler_patterns, _exclusion_patterns]))
    pattern = re.compile(draw(st.sampled_from(patterns)), re.IGNORECASE)
    example = draw(st.from_regex(pattern, alphabet=_ASCII))
    before = draw(st.sampled_from(["", "Mozilla/5.0 (compatible; ", _BROWSER_TEMPLATES[0]]))
    after = draw(st.sampled_from(["", "/2.1", "; +http://example.com/bot)", " Safari/604.1"]))
    return f"{before}{example}{after}"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pattern_examples())
def test_the_fast_patterns_agree_with_crawlerdetect(user_agent: str) -> None:
    assert _agrees(user_agent), user_agent


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_gets_crawlerdetects_verdict(user_agent: str) -> None:
    assert _agrees(user_agent), user_agent
