"""Personal data at rest (ADR 0006): what a sealed value, a wrapped data key and a blind index
refuse. Copied onto another row, column, table or workspace, opened under another key or
tampered with, a ciphertext does not open."""

from __future__ import annotations

import os

import pytest

from storeloop.kit.crypto import (
    DecryptionError,
    InstanceCipher,
    WorkspaceCipher,
    new_data_key,
    row_aad,
    unwrap_data_key,
    wrap_data_key,
)
from storeloop.kit.ids import new_id

EMAIL = b"canary.person@example.com"


def test_a_sealed_value_opens_only_where_it_was_sealed() -> None:
    cipher = WorkspaceCipher(new_data_key())
    row, other_row = new_id(), new_id()
    sealed = cipher.seal(EMAIL, row_aad("profile_pii", row, "email"))
    assert EMAIL not in sealed
    assert cipher.open(sealed, row_aad("profile_pii", row, "email")) == EMAIL
    for elsewhere in (
        row_aad("profile_pii", other_row, "email"),  # another row
        row_aad("profile_pii", row, "phone"),  # another column
        row_aad("staff_users", row, "email"),  # another table
    ):
        with pytest.raises(DecryptionError):
            cipher.open(sealed, elsewhere)


def test_a_value_of_one_workspace_does_not_open_under_another() -> None:
    aad = row_aad("profile_pii", new_id(), "email")
    sealed = WorkspaceCipher(new_data_key()).seal(EMAIL, aad)
    with pytest.raises(DecryptionError):
        WorkspaceCipher(new_data_key()).open(sealed, aad)


@pytest.mark.parametrize("where", [1, 13, -1])
def test_a_tampered_value_does_not_open(where: int) -> None:
    """A byte changed in the nonce, the ciphertext or the tag."""
    cipher = WorkspaceCipher(new_data_key())
    aad = row_aad("profile_pii", new_id(), "email")
    sealed = bytearray(cipher.seal(EMAIL, aad))
    sealed[where] ^= 0x01
    with pytest.raises(DecryptionError):
        cipher.open(bytes(sealed), aad)


@pytest.mark.parametrize("value", [b"", b"\x01short", b"\x02" + bytes(40), EMAIL])
def test_what_is_not_a_storeloop_ciphertext_does_not_open(value: bytes) -> None:
    with pytest.raises(DecryptionError):
        WorkspaceCipher(new_data_key()).open(value, b"aad")


def test_a_data_key_unwraps_only_under_its_master_key_and_for_its_workspace() -> None:
    master, workspace = os.urandom(32), new_id()
    data_key = new_data_key()
    wrapped = wrap_data_key(master, workspace, data_key)
    assert data_key not in wrapped
    assert unwrap_data_key(master, workspace, wrapped) == data_key
    with pytest.raises(DecryptionError):
        unwrap_data_key(os.urandom(32), workspace, wrapped)
    with pytest.raises(DecryptionError):
        unwrap_data_key(master, new_id(), wrapped)


def test_sealing_twice_gives_two_ciphertexts() -> None:
    cipher = WorkspaceCipher(new_data_key())
    aad = row_aad("profile_pii", new_id(), "email")
    assert cipher.seal(EMAIL, aad) != cipher.seal(EMAIL, aad)


def test_blind_indexes_match_within_a_workspace_and_nowhere_else() -> None:
    data_key = new_data_key()
    one, same = WorkspaceCipher(data_key), WorkspaceCipher(data_key)
    other = WorkspaceCipher(new_data_key())
    value = EMAIL.decode()
    index = one.blind_index("email", value)
    assert index == same.blind_index("email", value)
    assert value not in index
    assert index != other.blind_index("email", value)
    assert index != one.blind_index("phone", value)
    assert index != one.blind_index("email", value + "x")


def test_instance_data_is_sealed_under_a_key_derived_from_the_master() -> None:
    master = os.urandom(32)
    aad = row_aad("staff_users", new_id(), "email")
    sealed = InstanceCipher(master).seal(EMAIL, aad)
    assert InstanceCipher(master).open(sealed, aad) == EMAIL
    with pytest.raises(DecryptionError):
        InstanceCipher(os.urandom(32)).open(sealed, aad)
    with pytest.raises(DecryptionError):  # the derived key, not the master key itself
        WorkspaceCipher(master).open(sealed, aad)
