"""Envelope encryption of personal data at rest, and keyed hashes (blind indexes) for look-ups.

Each workspace has a random 256-bit data key, stored only wrapped (AES-256-GCM) by the instance
master key. Values are sealed with AES-256-GCM under the data key with the row's identity as
associated data, so a ciphertext copied onto another row or column fails to open. Blind indexes
are HMAC-SHA256 under a key derived from the data key, so equal values can be found without
storing them in clear, and indexes of one workspace say nothing about another's.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext did not open under this key and associated data."""


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(master_key: bytes, workspace_id: uuid.UUID, data_key: bytes) -> bytes:
    return Sealer(master_key).seal(data_key, b"storeloop:data-key:" + workspace_id.bytes)


def unwrap_data_key(master_key: bytes, workspace_id: uuid.UUID, wrapped: bytes) -> bytes:
    return Sealer(master_key).open(wrapped, b"storeloop:data-key:" + workspace_id.bytes)


def row_aad(table: str, row_id: uuid.UUID | str, column: str) -> bytes:
    row = row_id.bytes if isinstance(row_id, uuid.UUID) else row_id.encode()
    return table.encode() + b"\x00" + row + b"\x00" + column.encode()


class Sealer:
    """AES-256-GCM with a random nonce, a version byte in front."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise DecryptionError("not a storeloop ciphertext")
        try:
            return self._aead.decrypt(sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :], aad)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc


class WorkspaceCipher(Sealer):
    """Seals and opens one workspace's personal data, and computes its blind indexes."""

    def __init__(self, data_key: bytes) -> None:
        super().__init__(data_key)
        self._index_key = _derive(data_key, b"storeloop:blind-index")

    def blind_index(self, kind: str, normalized_value: str) -> str:
        message = kind.encode() + b"\x00" + normalized_value.encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()[:32]


class InstanceCipher(WorkspaceCipher):
    """Seals instance-level personal data (staff accounts) under a key derived from the master."""

    def __init__(self, master_key: bytes) -> None:
        super().__init__(_derive(master_key, b"storeloop:instance-data"))
