"""Normalising emails and phones before they become identity-graph nodes, and which traits are
personal (sealed) rather than plain."""

from __future__ import annotations

import re
from typing import Final

import phonenumbers

PERSONAL_TRAITS: Final = frozenset(
    {
        "email",
        "phone",
        "name",
        "first_name",
        "last_name",
        "firstName",
        "lastName",
        "address",
        "birthday",
        # Segment's other reserved traits that describe the person, and common spellings.
        "age",
        "gender",
        "avatar",
        "username",
        "user_name",
        "ip",
        "date_of_birth",
        "dateOfBirth",
        "postal_code",
        "postalCode",
    }
)

_NOT_A_LETTER: Final = re.compile(r"[^a-z]")
# Matched after lower-casing and dropping separators, so spelling variants are sealed too.
_PERSONAL_CANONICAL: Final = frozenset(
    {_NOT_A_LETTER.sub("", key.lower()) for key in PERSONAL_TRAITS}
    | {"fullname", "mobile", "street", "city", "zip", "zipcode", "dob", "surname"}
)
_PERSONAL_PARTS: Final = ("email", "phone", "address", "birth")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_EMAIL_LENGTH: Final = 254
_MAX_PHONE_INPUT_LENGTH: Final = 64


def normalize_email(value: object) -> str | None:
    """Stripped and lowercased, or None when it does not look like an address."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if len(email) > _MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        return None
    return email


def normalize_phone(value: object, default_region: str | None) -> str | None:
    """E.164 (``+441234567890``), or None when it is not a valid number.

    ``default_region`` (ISO 3166 alpha-2) reads numbers written without a country code.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > _MAX_PHONE_INPUT_LENGTH:
        return None
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted


def is_personal_trait(key: str) -> bool:
    return _canonical(key) in _PERSONAL_CANONICAL or any(
        part in _canonical(key) for part in _PERSONAL_PARTS
    )


def _canonical(key: str) -> str:
    """``Email``, ``e-mail`` and ``E_Mail`` all read as ``email``."""
    return _NOT_A_LETTER.sub("", key.lower())
