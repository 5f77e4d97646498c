"""API keys and passwords: generated with a recognisable prefix, stored only as hashes.

API keys carry 256 bits of randomness, so a fast SHA-256 is a sound verifier for them and keeps
the ingestion path cheap; staff passwords are low-entropy and get argon2id.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

WRITE_KEY_PREFIX = "slw_"
SECRET_KEY_PREFIX = "sls_"
DISPLAY_PREFIX_CHARS = 12

_password_hasher = PasswordHasher()


def generate_api_key(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_CHARS]


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
