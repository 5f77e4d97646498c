"""The default channel grouping and per-workspace override rules."""

from __future__ import annotations

import pytest

from storeloop.attribution.channels import ChannelInput, classify, parse_channel_rules
from storeloop.kit.errors import ValidationFailed

INSTAGRAM_APP = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Instagram 302.0.0.23.114"
)
TIKTOK_APP = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 musical_ly_2023 BytedanceWebview"
FACEBOOK_APP = "Mozilla/5.0 (iPhone) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.33.115;]"


@pytest.mark.parametrize(
    ("contact", "channel"),
    [
        (ChannelInput(), "Direct"),
        (ChannelInput(has_influencer=True, source="instagram", medium="cpc"), "Influencer"),
        (ChannelInput(source="ana", medium="influencer"), "Influencer"),
        (ChannelInput(source="awin", medium="affiliate"), "Affiliate"),
        (ChannelInput(source="klaviyo", medium="email"), "Email"),
        (ChannelInput(source="newsletter"), "Email"),
        (ChannelInput(source="attentive", medium="sms"), "SMS"),
        (ChannelInput(source="google", medium="cpc"), "Paid Search"),
        (ChannelInput(source="facebook", medium="cpc"), "Paid Social"),
        (ChannelInput(source="tiktok", medium="paid_social"), "Paid Social"),
        (ChannelInput(click_ids=frozenset({"gclid"})), "Paid Search"),
        (ChannelInput(click_ids=frozenset({"ttclid"})), "Paid Social"),
        # fbclid rides on every outbound Facebook link: organic unless the medium says paid.
        (ChannelInput(click_ids=frozenset({"fbclid"})), "Organic Social"),
        (ChannelInput(click_ids=frozenset({"fbclid"}), medium="paid"), "Paid Social"),
        (ChannelInput(click_ids=frozenset({"fbclid"}), source="fb", medium="cpc"), "Paid Social"),
        (ChannelInput(referrer_host="l.instagram.com"), "Organic Social"),
        (ChannelInput(referrer_host="t.co"), "Organic Social"),
        (ChannelInput(referrer_host="www.youtube.com"), "Organic Social"),
        (ChannelInput(referrer_host="pin.it"), "Organic Social"),
        (ChannelInput(user_agent=INSTAGRAM_APP), "Organic Social"),
        (ChannelInput(user_agent=TIKTOK_APP), "Organic Social"),
        (ChannelInput(user_agent=FACEBOOK_APP), "Organic Social"),
        (ChannelInput(source="ig", medium="social"), "Organic Social"),
        (ChannelInput(referrer_host="www.google.co.uk"), "Organic Search"),
        (ChannelInput(referrer_host="duckduckgo.com"), "Organic Search"),
        (ChannelInput(referrer_host="blog.example.org"), "Referral"),
        (ChannelInput(source="partner-site"), "Referral"),
        (ChannelInput(campaign_channel="Influencer"), "Influencer"),
    ],
)
def test_default_grouping(contact: ChannelInput, channel: str) -> None:
    assert classify(contact) == channel


def test_workspace_rules_come_first_in_order() -> None:
    rules = parse_channel_rules(
        [
            {"match": {"source": "IG", "medium": "story"}, "channel": "Influencer"},
            {"match": {"source": "ig"}, "channel": "Paid Social"},
        ]
    )
    assert classify(ChannelInput(source="ig", medium="story"), rules) == "Influencer"
    assert classify(ChannelInput(source="ig", medium="social"), rules) == "Paid Social"
    assert classify(ChannelInput(source="bing", medium="cpc"), rules) == "Paid Search"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([{"match": {"source": "x"}, "channel": "Billboards"}], "channel_rules[0].channel"),
        ([{"match": {}, "channel": "Email"}], "channel_rules[0].match"),
        ([{"match": {"country": "x"}, "channel": "Email"}], "channel_rules[0].match.country"),
        (["nope"], "channel_rules[0]"),
    ],
)
def test_invalid_rules_name_the_field(raw: list[object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_channel_rules(raw)
    assert caught.value.field == field
