"""Emails and phones are normalised before they become identity-graph nodes."""

from __future__ import annotations

import pytest

from storeloop.identity.normalize import is_personal_trait, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Canary.Person+storeloop@Example.ORG ", "canary.person+storeloop@example.org"),
        ("a@b.co", "a@b.co"),
        ("no-at-sign.example.org", None),
        ("two@@example.org", None),
        ("missing@tld", None),
        ("spaces in@example.org", None),
        ("", None),
        ("x" * 250 + "@example.org", None),
        (None, None),
        (42, None),
    ],
)
def test_normalize_email(value: object, expected: str | None) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+44 (0)20 7946-0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("0612345678", "FR", "+33612345678"),
        (14155552671, "US", "+14155552671"),
        ("020 7946 0958", None, None),
        ("+44 20", None, None),
        ("12", "GB", None),
        ("not a phone", "GB", None),
        ("", "GB", None),
        (None, "GB", None),
        (True, "US", None),
    ],
)
def test_normalize_phone(value: object, region: str | None, expected: str | None) -> None:
    assert normalize_phone(value, region) == expected


def test_personal_traits() -> None:
    personal = {"email", "phone", "name", "first_name", "last_name", "firstName", "lastName"}
    more = {"address", "birthday", "age", "gender", "avatar", "username", "ip", "postal_code"}
    assert all(is_personal_trait(key) for key in personal | more)
    variants = {"Email", "e-mail", "phoneNumber", "full_name", "billing_address", "Mobile"}
    assert all(is_personal_trait(key) for key in variants)
    plain = ("plan", "company", "title", "lifetime_value")
    assert [key for key in plain if is_personal_trait(key)] == []
