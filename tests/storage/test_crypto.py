"""Encryption helpers and key loading."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from storage import Cipher, DecryptionError, generate_key, load_key

TRICKY_TEXTS = [
    "nul\x00byte",
    "lone \ud800 surrogate",
    "\u0634\u0643\u0648\u0649 \u200f\u0645\u0646 \u0627\u0644\u0645\u0648\u0638\u0641\u200d!",
    "Олена Коваленко",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_json_round_trip_keeps_every_character(cipher: Cipher, text: str) -> None:
    """encrypt_json/decrypt_json give back exactly the text, incl. NUL, surrogates, bidi marks."""
    obj = {"text": text, "list": [text, 1, None, True]}
    assert cipher.decrypt_json(cipher.encrypt_json(obj)) == obj


def test_bytes_round_trip_and_token_hides_plaintext(cipher: Cipher) -> None:
    """encrypt/decrypt round-trip bytes and the token does not contain the plaintext."""
    data = b"Fatima Haddad, room 12"
    token = cipher.encrypt(data)
    assert (b"Fatima" in token, cipher.decrypt(token)) == (False, data)


def test_wrong_key_fails_clearly(cipher: Cipher) -> None:
    """Decrypting with another key raises DecryptionError naming the likely cause."""
    token = cipher.encrypt(b"secret")
    with pytest.raises(DecryptionError, match="wrong encryption key"):
        Cipher([generate_key()]).decrypt(token)


def test_rotation_first_key_encrypts_all_keys_decrypt() -> None:
    """With keys 'new,old' old tokens still decrypt and new tokens need the new key."""
    old, new = generate_key(), generate_key()
    old_token = Cipher([old]).encrypt(b"before")
    rotated = Cipher.from_string(f"{new}, {old}")
    new_token = rotated.encrypt(b"after")
    assert (rotated.decrypt(old_token), Cipher([new]).decrypt(new_token)) == (b"before", b"after")


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    """Without an env key a 0600 secret.key is created (created=True) and reused afterwards."""
    data_dir = tmp_path / "missing" / "data"
    first, created_first = load_key(data_dir, None)
    second, created_second = load_key(data_dir, "")
    key_file = data_dir / "secret.key"
    mode = stat.S_IMODE(key_file.stat().st_mode)
    token = first.encrypt(b"x")
    assert (created_first, created_second, mode, second.decrypt(token)) == (
        True,
        False,
        0o600,
        b"x",
    )


def test_env_key_wins_over_key_file(tmp_path: Path) -> None:
    """A given env key is used and no key file is written."""
    key = generate_key()
    cipher, created = load_key(tmp_path, key)
    token = Cipher([key]).encrypt(b"y")
    assert (created, cipher.decrypt(token), (tmp_path / "secret.key").exists()) == (
        False,
        b"y",
        False,
    )


@pytest.mark.parametrize("bad", ["not-a-key", "abc,def", "A" * 40, " , "])
def test_malformed_env_key_raises_clear_value_error(tmp_path: Path, bad: str) -> None:
    """A malformed env key raises ValueError that explains the format and does not echo the key."""
    with pytest.raises(ValueError, match=r"encryption key") as info:
        load_key(tmp_path, bad)
    assert ("not-a-key" in str(info.value), "abc" in str(info.value)) == (False, False)


def test_malformed_key_file_raises_value_error(tmp_path: Path) -> None:
    """A corrupt secret.key is reported as such instead of being replaced."""
    (tmp_path / "secret.key").write_text("garbage\n")
    with pytest.raises(ValueError, match=r"secret\.key"):
        load_key(tmp_path, None)


def test_generate_key_is_valid_and_random() -> None:
    """generate_key returns distinct 44-character keys that Cipher accepts."""
    a, b = generate_key(), generate_key()
    Cipher([a])
    assert (len(a), a == b) == (44, False)


def test_repr_hides_keys() -> None:
    """repr(Cipher) shows the number of keys, never the key."""
    key = generate_key()
    assert repr(Cipher([key])) == "Cipher(<1 key(s)>)"
