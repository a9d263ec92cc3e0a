"""OpenPGP encryption of the mails to the organisation (PGP/MIME, RFC 3156), with python-gnupg.

A mailbox with a public key in the organisation config receives its mails encrypted, so the
complaint (body, `complaint.json`, the client's files) cannot be read on the mail servers on the way.

What stays outside, readable by every server on the way: the routing headers (From, To, Cc, Date,
Message-ID, In-Reply-To, References, Auto-Submitted), the MIME headers, and a neutral Subject that
keeps only the reference (`[KW-2026-000123] Versleuteld bericht`), because the real subject names the
kind of case (e.g. sexual harassment). Everything else, the real Subject and Reply-To (the client's
address) included, is inside: the encrypted part is the WHOLE original message with its headers,
marked `protected-headers="v1"` so mail programs (Thunderbird and others) show the inner Subject.

Every gpg call runs in its own temporary GNUPGHOME (mode 0700, removed afterwards) with `--batch`
and `--no-autostart`: no key is written anywhere else, and no gpg-agent or dirmngr is started (a
public key needs neither). The configured key is trusted explicitly (`--trust-model always`): the
organisation vouches for it by putting it in its config. Nothing here logs; error texts name the
mailbox, the key's fingerprint and gpg's status, never a mail's content.
"""

from __future__ import annotations

import contextlib
import copy
import re
import shutil
import tempfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import gnupg  # type: ignore[import-untyped]

from bot.mail.compose import WIRE_POLICY

NEUTRAL_SUBJECT = "Versleuteld bericht"
# Headers a mail server needs to route and thread the mail; everything else goes inside only.
ROUTING_HEADERS = frozenset(
    {"from", "to", "cc", "date", "message-id", "in-reply-to", "references", "auto-submitted"}
)
MAX_KEY_CHARS = 1_000_000  # a public key with many signatures is a few hundred kB at most

_PUBLIC_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_PUBLIC_END = "-----END PGP PUBLIC KEY BLOCK-----"
# The reference prefix of our subjects: `[KW-2026-000123]`, `[Klachtwijzer]`.
_SUBJECT_TAG = re.compile(r"\s*(\[[A-Za-z0-9 ._-]{1,64}\])")
# Every gpg call: our own options only, no agent or dirmngr started, nothing fetched from the net.
_GPG_OPTIONS = (
    "--no-options",
    "--no-autostart",
    "--no-auto-key-retrieve",
    "--auto-key-locate", "local",
    "--no-comments",
    "--no-emit-version",
)


class EncryptionError(RuntimeError):
    """gpg could not encrypt a mail to a configured key (e.g. the key expired since start-up)."""


@dataclass(frozen=True)
class PublicKey:
    """A validated OpenPGP public key that can encrypt; `armoured` is the text it was read from."""

    fingerprint: str
    armoured: str = field(repr=False)
    mailbox: str | None = None
    expires: datetime | None = None  # None: never


@contextlib.contextmanager
def temporary_gpg() -> Iterator[Any]:
    """A `gnupg.GPG` on a fresh private GNUPGHOME (mode 0700) that is removed afterwards."""
    home = tempfile.mkdtemp(prefix="kw-gpg-")  # created with mode 0700
    try:
        try:
            gpg = gnupg.GPG(gnupghome=home, options=list(_GPG_OPTIONS))
        except (OSError, ValueError) as exc:
            raise EncryptionError(
                "gpg is not available (Debian: apt-get install gnupg); it is needed because a "
                "mailbox has an OpenPGP key in the organisation config"
            ) from exc
        yield gpg
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _label(mailbox: str | None) -> str:
    return f"OpenPGP key for mailbox '{mailbox}'" if mailbox else "OpenPGP key"


def load_public_key(armoured: str, *, mailbox: str | None = None) -> PublicKey:
    """Read and check an ASCII-armoured public key: exactly one key, not secret, able to encrypt.

    Raises ValueError saying what is wrong and for which mailbox.
    """
    label = _label(mailbox)
    if not isinstance(armoured, str) or not armoured.strip():
        raise ValueError(f"{label}: the key text is empty")
    if len(armoured) > MAX_KEY_CHARS:
        raise ValueError(f"{label}: the key text is too large ({len(armoured)} characters)")
    if "PRIVATE KEY BLOCK" in armoured:
        raise ValueError(
            f"{label}: this is a private (secret) key. Give only the public key "
            "(gpg --armor --export <fingerprint>) and keep the private key away from the bot"
        )
    if _PUBLIC_BEGIN not in armoured or _PUBLIC_END not in armoured:
        raise ValueError(
            f"{label}: not an ASCII-armoured OpenPGP public key (expected a block starting with "
            f"'{_PUBLIC_BEGIN}'; export it with gpg --armor --export <fingerprint>)"
        )
    try:
        return _checked_key(armoured, label, mailbox)
    except EncryptionError as exc:  # no gpg on this machine: a configuration problem too
        raise ValueError(f"{label}: {exc}") from None


def _checked_key(armoured: str, label: str, mailbox: str | None) -> PublicKey:
    data = armoured.encode("utf-8")
    with temporary_gpg() as gpg:
        scanned = gpg.scan_keys_mem(data)
        types = [str(item.get("type")) for item in scanned]
        if "sec" in types or "ssb" in types:
            raise ValueError(f"{label}: the text contains a private (secret) key; give only the public key")
        if types.count("pub") != 1:
            if not types:
                raise ValueError(f"{label}: no OpenPGP key could be read from the text (damaged?)")
            raise ValueError(f"{label}: the text holds {types.count('pub')} keys; give exactly one")
        fingerprint = str(scanned[0].get("fingerprint") or "")
        imported = gpg.import_keys(data)
        if not fingerprint or fingerprint not in (imported.fingerprints or []):
            raise ValueError(f"{label}: gpg could not import the key ({imported.summary()})")
        [info] = gpg.list_keys(keys=[fingerprint])
        validity = str(info.get("trust") or "")
        if validity == "r":
            raise ValueError(f"{label}: key {fingerprint} has been revoked")
        if validity == "e":
            raise ValueError(f"{label}: key {fingerprint} has expired")
        if "E" not in str(info.get("cap") or ""):
            raise ValueError(
                f"{label}: key {fingerprint} cannot encrypt (a signing-only key, or its encryption "
                "subkey has expired or been revoked)"
            )
        trial = gpg.encrypt(b"klachtwijzer key check", [fingerprint], always_trust=True, armor=True)
        if not trial.ok:
            raise ValueError(f"{label}: gpg cannot encrypt to key {fingerprint} ({trial.status})")
    expires_at = str(info.get("expires") or "")
    expires = datetime.fromtimestamp(int(expires_at), UTC) if expires_at.isdigit() else None
    return PublicKey(fingerprint, armoured.strip() + "\n", mailbox, expires)


def neutral_subject(subject: str) -> str:
    """`[KW-2026-000123] Klacht - Schema B - ...` -> `[KW-2026-000123] Versleuteld bericht`."""
    match = _SUBJECT_TAG.match(subject or "")
    return f"{match.group(1)} {NEUTRAL_SUBJECT}" if match else NEUTRAL_SUBJECT


def _encrypt(plaintext: bytes, key: PublicKey) -> str:
    with temporary_gpg() as gpg:
        imported = gpg.import_keys(key.armoured.encode("utf-8"))
        if key.fingerprint not in (imported.fingerprints or []):
            raise EncryptionError(f"gpg could not import key {key.fingerprint} ({imported.summary()})")
        result = gpg.encrypt(plaintext, [key.fingerprint], always_trust=True, armor=True)
        if not result.ok or not result.data:
            raise EncryptionError(f"gpg could not encrypt to key {key.fingerprint} ({result.status})")
        return bytes(result.data).decode("ascii")


def encrypt_mail(msg: EmailMessage, key: PublicKey) -> EmailMessage:
    """`msg` as a PGP/MIME message (RFC 3156) to `key`; `msg` keeps its content and bytes.

    The encrypted entity is `msg` whole (headers, body, `complaint.json`, attachments) with
    `protected-headers="v1"` added to its Content-Type. Outside stay the routing headers and a
    neutral Subject with the reference only. Raises EncryptionError when gpg fails.
    """
    bytes(msg)  # serialise once, as sending does: a multipart gets its boundary now, inside and out
    inner = copy.deepcopy(msg)
    content_type = inner.get("Content-Type")
    if content_type is None:
        inner.set_param("protected-headers", "v1")
    else:  # in place, so the inner headers keep their order
        inner.replace_header("Content-Type", f'{content_type}; protected-headers="v1"')
    for part in inner.walk():
        part.policy = WIRE_POLICY
    armoured = _encrypt(bytes(inner), key)

    outer = EmailMessage(policy=WIRE_POLICY)
    for name, value in msg.items():
        lowered = name.lower()
        if lowered == "subject":
            outer["Subject"] = neutral_subject(str(value))
        elif lowered in ROUTING_HEADERS:
            outer[name] = value
    if "Subject" not in outer:
        outer["Subject"] = NEUTRAL_SUBJECT
    outer["MIME-Version"] = "1.0"
    outer["Content-Type"] = 'multipart/encrypted; protocol="application/pgp-encrypted"'
    outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)"

    version = MIMEPart(policy=WIRE_POLICY)
    version["Content-Type"] = "application/pgp-encrypted"
    version["Content-Description"] = "PGP/MIME version identification"
    version.set_payload("Version: 1\n")
    encrypted = MIMEPart(policy=WIRE_POLICY)
    encrypted["Content-Type"] = 'application/octet-stream; name="encrypted.asc"'
    encrypted["Content-Description"] = "OpenPGP encrypted message"
    encrypted["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    encrypted.set_payload(armoured)
    outer.set_payload([version, encrypted])
    return outer


def load_mailbox_keys(
    config_path: Path, raw: Mapping[str, Any], known: Collection[str] | None = None
) -> dict[str, PublicKey]:
    """The `[mailbox_keys]` table of the organisation TOML: mailbox name -> its public key.

    `committee = "keys/committee.asc"`; a relative path is relative to the config file. `known`
    (the procedure's mailbox names) refuses keys for mailboxes that do not exist. Raises ValueError
    naming the config file, the mailbox and what to fix.
    """
    table = raw.get("mailbox_keys", {})
    if not isinstance(table, Mapping):
        raise ValueError(f'{config_path}: [mailbox_keys] must be a table of mailbox = "key file"')
    keys: dict[str, PublicKey] = {}
    for name, value in table.items():
        if known is not None and name not in known:
            raise ValueError(
                f"{config_path}: [mailbox_keys] names unknown mailbox '{name}' (known: {sorted(known)})"
            )
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{config_path}: mailbox_keys.{name} must be the path of a public key file")
        key_path = config_path.parent / value
        try:
            if key_path.stat().st_size > MAX_KEY_CHARS:
                raise ValueError(f"{config_path}: key file for mailbox '{name}' ({key_path}) is too large")
            text = key_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"{config_path}: key file for mailbox '{name}' ({key_path}) cannot be read: "
                f"{exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise ValueError(
                f"{config_path}: key file for mailbox '{name}' ({key_path}) is not text; export the "
                "public key ASCII-armoured (gpg --armor --export <fingerprint>)"
            ) from None
        try:
            keys[name] = load_public_key(text, mailbox=name)
        except ValueError as exc:
            raise ValueError(f"{config_path}: {exc} (file {key_path})") from None
    return keys


def keys_by_address(mailboxes: Mapping[str, str], keys: Mapping[str, PublicKey]) -> dict[str, PublicKey]:
    """Mailbox name -> key to address -> key (lower-cased), the form the service looks up.

    Two mailbox names sharing one address must not name different keys.
    """
    result: dict[str, PublicKey] = {}
    for name, key in keys.items():
        address = mailboxes[name].strip().lower()
        other = result.get(address)
        if other is not None and other.fingerprint != key.fingerprint:
            raise ValueError(
                f"mailboxes sharing the address of '{name}' name different OpenPGP keys "
                f"({other.fingerprint}, {key.fingerprint})"
            )
        result[address] = key
    return result
