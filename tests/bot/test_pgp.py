"""bot.mail.pgp: PGP/MIME encryption of forwarded mails with a real key pair, over a real SMTP server."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import gnupg  # type: ignore[import-untyped]
import pytest

from bot.mail import pgp
from bot.mail.compose import (
    POLICY,
    MailAttachment,
    case_body,
    complaint_json_bytes,
    compose_case_mail,
    compose_notice,
)
from bot.mail.outbox import SmtpTransport

SENDER = "bot@steunpunt.example"
RECIPIENT = "vertrouwenspersonen@regioverband.nl"
MESSAGE_ID = "<kw-2026-000123.1@steunpunt.example>"
NAME = "Олена Петренко"
DESCRIPTION = "Волонтер говорив мені неприємні речі."
PHOTO = b"\x89PNG\r\n\x1a\n" + b"photo-of-the-bruise-" * 50
KIND_WORDS = ("Klacht -", "Schema B", "vertrouwenspersoon", "Seksuele", "intimidatie", "vrouw")
PROTECTED = b'; protected-headers="v1"'


@dataclass(frozen=True)
class Keys:
    """A real key pair (ed25519 + cv25519) and a signing-only key, in the test's own GNUPGHOME."""

    home: Path
    public: str
    secret: str
    fingerprint: str
    sign_only: str
    other_public: str
    expired: str

    def gpg(self) -> Any:
        return gnupg.GPG(gnupghome=str(self.home))

    def decrypt(self, armoured: str) -> bytes:
        result = self.gpg().decrypt(armoured)
        assert result.ok, result.status
        return bytes(result.data)


def _generate(gpg: Any, email: str, *, encrypt: bool = True, **extra: Any) -> str:
    params: dict[str, Any] = {
        "key_type": "EDDSA", "key_curve": "ed25519", "name_email": email, "no_protection": True,
        "expire_date": 0,
    }
    if encrypt:
        params |= {"subkey_type": "ECDH", "subkey_curve": "cv25519"}
    key = gpg.gen_key(gpg.gen_key_input(**(params | extra)))
    assert key.fingerprint, key.status
    return str(key.fingerprint)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    fingerprint = _generate(gpg, "vertrouwenspersonen@regioverband.nl")
    sign_only = _generate(gpg, "signing@regioverband.nl", encrypt=False)
    other = _generate(gpg, "committee@regioverband.nl")
    # Made in 2020 with one day of validity: expired now.
    past = gnupg.GPG(gnupghome=str(home), options=["--faked-system-time", "20200101T000000!"])
    expired = _generate(past, "expired@regioverband.nl", expire_date="1d")
    try:
        yield Keys(
            home=home,
            public=gpg.export_keys(fingerprint),
            secret=gpg.export_keys(fingerprint, secret=True, expect_passphrase=False),
            fingerprint=fingerprint,
            sign_only=gpg.export_keys(sign_only),
            other_public=gpg.export_keys(other),
            expired=gpg.export_keys(expired),
        )
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture
def key(keys: Keys) -> pgp.PublicKey:
    return pgp.load_public_key(keys.public, mailbox="confidants")


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def case_mail(mail_doc: Any, **changes: Any) -> tuple[dict[str, Any], EmailMessage]:
    doc = mail_doc(**changes)
    mail = compose_case_mail(
        doc, sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID,
        attachments=[MailAttachment("../../bruise.png", "image/png", PHOTO)],
    )
    return doc, mail


async def send(smtp_server: Any, mail: EmailMessage) -> bytes:
    transport = SmtpTransport(smtp_server.host, smtp_server.port, tls="none", timeout=5)
    await transport.send(bytes(mail), sender=SENDER, recipients=[RECIPIENT], message_id=MESSAGE_ID)
    [received] = smtp_server.handler.received
    return bytes(received.content)


def visible_texts(raw: bytes) -> list[str]:
    """Every header value and every decoded body a mail server on the way can read."""
    msg = parse(raw)
    texts = [str(v) for part in msg.walk() for v in part.values()]
    for part in msg.walk():
        if not part.is_multipart():
            texts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return texts


def encrypted_part(raw: bytes) -> str:
    return str(parse(raw).get_payload()[1].get_payload())


# --- the mail on the wire ------------------------------------------------------------------------


async def test_mail_servers_on_the_way_cannot_read_the_complaint(
    mail_doc: Any, key: pgp.PublicKey, smtp_server: Any
) -> None:
    """Over real SMTP, nothing of the client, the complaint, complaint.json or the kind is readable."""
    doc, mail = case_mail(mail_doc)
    raw = await send(smtp_server, pgp.encrypt_mail(mail, key))

    secrets = [NAME, DESCRIPTION, "Другий рядок", "12345678", "минулого вівторка", "complaint.json",
               doc["reference"] + "\"", "photo-of-the-bruise", *KIND_WORDS]
    for text in [raw.decode("latin-1"), *visible_texts(raw)]:
        assert [s for s in secrets if s in text] == []
    assert NAME.encode() not in raw and DESCRIPTION.encode() not in raw
    assert json.dumps(NAME).encode() not in raw and complaint_json_bytes(doc)[:40] not in raw


async def test_encrypted_mail_is_pgp_mime_with_routing_headers_only(
    mail_doc: Any, key: pgp.PublicKey, smtp_server: Any
) -> None:
    """RFC 3156 layout; outside only routing headers and a neutral subject that keeps the reference."""
    _, mail = case_mail(mail_doc)
    outer = parse(await send(smtp_server, pgp.encrypt_mail(mail, key)))

    assert outer.defects == []
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer.get_param("protocol") == "application/pgp-encrypted"
    version, payload = outer.get_payload()
    assert version.get_content_type() == "application/pgp-encrypted"
    assert version.get_payload().strip() == "Version: 1"
    assert payload.get_content_type() == "application/octet-stream"
    assert payload.get_payload().startswith("-----BEGIN PGP MESSAGE-----")
    assert [k for k in outer.keys() if k not in ("MIME-Version", "Content-Type")] == [
        "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"]
    assert str(outer["Subject"]) == "[KW-2026-000123] Versleuteld bericht"
    assert (str(outer["Message-ID"]), str(outer["Date"])) == (MESSAGE_ID, str(mail["Date"]))
    assert (str(outer["From"]), str(outer["To"])) == (SENDER, RECIPIENT)


async def test_decrypting_gives_back_the_exact_original_mail(
    mail_doc: Any, key: pgp.PublicKey, keys: Keys, smtp_server: Any
) -> None:
    """With the private key the mailbox gets the original entity: subject, body, complaint.json, files."""
    doc, mail = case_mail(mail_doc)
    raw = await send(smtp_server, pgp.encrypt_mail(mail, key))
    plain = keys.decrypt(encrypted_part(raw))

    assert plain.replace(PROTECTED, b"", 1) == bytes(mail)
    inner = parse(plain)
    assert inner.get_param("protected-headers") == "v1"
    assert str(inner["Subject"]) == str(mail["Subject"])
    assert str(inner["Subject"]) == "[KW-2026-000123] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)"
    body = inner.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == case_body(doc, ["bijlage-1.png"])
    files = {p.get_filename(): p.get_payload(decode=True) for p in inner.iter_attachments()}
    assert files == {"complaint.json": complaint_json_bytes(doc), "bijlage-1.png": PHOTO}
    assert json.loads(files["complaint.json"])["complainant"]["name"] == NAME


async def test_reply_to_with_the_clients_address_stays_inside(
    mail_doc: Any, key: pgp.PublicKey, keys: Keys, smtp_server: Any
) -> None:
    """The client's e-mail address (Reply-To) is not readable outside, and is there after decryption."""
    _, mail = case_mail(mail_doc, complainant={"contact": {"method": "email", "value": "olena@mail.example"}})
    assert str(mail["Reply-To"]) == "olena@mail.example"
    raw = await send(smtp_server, pgp.encrypt_mail(mail, key))

    assert b"olena" not in raw
    assert parse(raw)["Reply-To"] is None
    assert str(parse(keys.decrypt(encrypted_part(raw)))["Reply-To"]) == "olena@mail.example"


def test_notice_is_encrypted_with_its_reference_only_outside(key: pgp.PublicKey, keys: Keys) -> None:
    """A withdrawal notice (single text part) gets the same treatment: neutral subject, exact inside."""
    notice = compose_notice("KW-2026-000123", "withdrawal", sender=SENDER, recipient=RECIPIENT,
                            message_id=MESSAGE_ID)
    raw = bytes(pgp.encrypt_mail(notice, key))

    assert str(parse(raw)["Subject"]) == "[KW-2026-000123] Versleuteld bericht"
    assert b"ingetrokken" not in raw
    plain = keys.decrypt(encrypted_part(raw))
    assert plain.replace(PROTECTED, b"", 1) == bytes(notice)
    assert str(parse(plain)["Subject"]) == "[KW-2026-000123] Klacht ingetrokken"


def test_encrypting_leaves_the_original_mail_as_it_was(mail_doc: Any, key: pgp.PublicKey) -> None:
    """The caller's message is not changed: same bytes before and after, no protected-headers marker."""
    _, mail = case_mail(mail_doc)
    before = bytes(mail)
    pgp.encrypt_mail(mail, key)
    assert bytes(mail) == before


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[KW-2026-000123] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)",
         "[KW-2026-000123] Versleuteld bericht"),
        ("[Klachtwijzer] Dagoverzicht register 23-11-2026: 2 termijnen",
         "[Klachtwijzer] Versleuteld bericht"),
        ("Seksuele intimidatie", "Versleuteld bericht"),
        ("[Seksuele intimidatie door begeleider Jan de Vries op 3 maart in de keuken] x",
         "Versleuteld bericht"),
        ("", "Versleuteld bericht"),
    ],
)
def test_neutral_subject_keeps_only_a_short_reference_tag(subject: str, expected: str) -> None:
    """Only a short `[reference]` tag survives; anything else is replaced."""
    assert pgp.neutral_subject(subject) == expected


def test_encryption_logs_nothing_personal(
    mail_doc: Any, key: pgp.PublicKey, caplog: pytest.LogCaptureFixture
) -> None:
    """Even at DEBUG (python-gnupg's own logging included) no client data reaches the log."""
    caplog.set_level(logging.DEBUG)
    _, mail = case_mail(mail_doc)
    pgp.encrypt_mail(mail, key)
    text = caplog.text
    assert [s for s in (NAME, DESCRIPTION, "12345678", "Klachtwijzer is een", *KIND_WORDS) if s in text] == []


def test_a_failing_encryption_raises_and_names_no_content(mail_doc: Any, keys: Keys) -> None:
    """A key whose fingerprint does not match its text cannot be used: EncryptionError, no content."""
    _, mail = case_mail(mail_doc)
    forged = pgp.PublicKey("0" * 40, keys.public, "confidants")
    with pytest.raises(pgp.EncryptionError) as info:
        pgp.encrypt_mail(mail, forged)
    assert "0" * 40 in str(info.value) and NAME not in str(info.value)


# --- temporary homes ------------------------------------------------------------------------------


def _processes_mentioning(path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(cmdline)
    return found


def test_temporary_homes_are_removed_and_no_agent_is_left(
    mail_doc: Any, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a key and encrypting leave no file in the temporary directory and no gpg process."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    key = pgp.load_public_key(keys.public, mailbox="confidants")
    _, mail = case_mail(mail_doc)
    pgp.encrypt_mail(mail, key)
    with pytest.raises(ValueError, match="private"):
        pgp.load_public_key(keys.secret.replace("PRIVATE KEY BLOCK", "PUBLIC KEY BLOCK"))

    assert list(scratch.iterdir()) == []
    assert _processes_mentioning(scratch) == []


def test_temporary_home_is_private_and_removed() -> None:
    """Each gpg call gets its own GNUPGHOME with mode 0700, gone afterwards."""
    with pgp.temporary_gpg() as gpg:
        home = Path(gpg.gnupghome)
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not home.exists()


# --- loading keys ---------------------------------------------------------------------------------


def test_load_public_key_reads_a_real_key(keys: Keys) -> None:
    """A real public key loads with its fingerprint; its text stays out of repr."""
    key = pgp.load_public_key(keys.public, mailbox="committee")
    assert (key.fingerprint, key.mailbox, key.expires) == (keys.fingerprint, "committee", None)
    assert "BEGIN PGP" not in repr(key)


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("secret", "private (secret) key"),
        ("secret_relabelled", "contains a private (secret) key"),
        ("sign_only", "cannot encrypt"),
        ("expired", "expired"),
        ("two_keys", "holds 2 keys"),
        ("garbage", "not an ASCII-armoured OpenPGP public key"),
        ("damaged", "no OpenPGP key could be read"),
        ("empty", "empty"),
        ("binary", "not an ASCII-armoured OpenPGP public key"),
    ],
)
def test_unusable_keys_are_refused_naming_the_mailbox(keys: Keys, which: str, reason: str) -> None:
    """Private keys, signing-only, expired, several keys, garbage and damaged text: clear ValueError."""
    public = keys.public
    texts = {
        "secret": keys.secret,
        "secret_relabelled": keys.secret.replace("PRIVATE KEY BLOCK", "PUBLIC KEY BLOCK"),
        "sign_only": keys.sign_only,
        "expired": keys.expired,
        "two_keys": public + keys.other_public,
        "garbage": "hello, this is not a key\n",
        "damaged": public[:120] + "AAAA" + public[200:],
        "empty": " \n",
        "binary": "\x99\x01\x0d\x04\x00",
    }
    with pytest.raises(ValueError) as info:
        pgp.load_public_key(texts[which], mailbox="committee")
    message = str(info.value)
    assert message.startswith("OpenPGP key for mailbox 'committee': ")
    assert reason in message


def _config(tmp_path: Path, table: str) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "organisation.toml"
    path.write_text(table, encoding="utf-8")
    return path, tomllib.loads(table)


def test_load_mailbox_keys_reads_key_files_relative_to_the_config(keys: Keys, tmp_path: Path) -> None:
    """`[mailbox_keys] confidants = "keys/confidants.asc"` gives that mailbox its key."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "confidants.asc").write_text(keys.public, encoding="ascii")
    path, raw = _config(tmp_path, '[mailbox_keys]\nconfidants = "keys/confidants.asc"\n')

    loaded = pgp.load_mailbox_keys(path, raw, known={"committee", "confidants"})
    assert {name: k.fingerprint for name, k in loaded.items()} == {"confidants": keys.fingerprint}
    assert pgp.load_mailbox_keys(path, {}, known={"committee"}) == {}


@pytest.mark.parametrize(
    ("table", "file_text", "reason"),
    [
        ('[mailbox_keys]\nboard = "k.asc"\n', None, "unknown mailbox 'board'"),
        ('[mailbox_keys]\ncommittee = "missing.asc"\n', None, "mailbox 'committee'"),
        ('[mailbox_keys]\ncommittee = ""\n', None, "mailbox_keys.committee must be the path"),
        ('mailbox_keys = "k.asc"\n', None, "must be a table"),
        ('[mailbox_keys]\ncommittee = "k.asc"\n', "secret", "private (secret) key"),
        ('[mailbox_keys]\ncommittee = "k.asc"\n', "binary", "is not text"),
    ],
)
def test_load_mailbox_keys_refuses_bad_entries_clearly(
    keys: Keys, tmp_path: Path, table: str, file_text: str | None, reason: str
) -> None:
    """Unknown mailbox, missing or empty path, private key or binary key file: ValueError naming it."""
    if file_text == "secret":
        (tmp_path / "k.asc").write_text(keys.secret, encoding="ascii")
    elif file_text == "binary":
        (tmp_path / "k.asc").write_bytes(b"\x99\x01\x0d\x04\xff\xfe")
    path, raw = _config(tmp_path, table)
    with pytest.raises(ValueError) as info:
        pgp.load_mailbox_keys(path, raw, known={"committee", "confidants"})
    assert str(info.value).startswith(f"{path}: ")
    assert reason in str(info.value)


def test_keys_by_address_maps_mailbox_names_to_addresses(keys: Keys) -> None:
    """The service looks keys up by the address it sends to; conflicting keys for one address refused."""
    key = pgp.load_public_key(keys.public, mailbox="confidants")
    other = pgp.load_public_key(keys.other_public, mailbox="committee")
    mailboxes = {"committee": "Klachten@Regio.example", "confidants": "vp@regio.example"}
    assert pgp.keys_by_address(mailboxes, {"confidants": key}) == {"vp@regio.example": key}
    with pytest.raises(ValueError, match="different OpenPGP keys"):
        pgp.keys_by_address({"committee": "a@x.example", "confidants": "a@x.example"},
                            {"confidants": key, "committee": other})


def test_missing_gpg_binary_is_a_clear_configuration_error(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without gpg on PATH a configured key is refused with what to install, not a traceback."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValueError, match=r"gpg is not available \(Debian: apt-get install gnupg\)"):
        pgp.load_public_key(keys.public, mailbox="committee")


def test_gpg_binary_is_installed() -> None:
    """The gpg binary that python-gnupg drives is on PATH (Debian package `gnupg`)."""
    assert shutil.which("gpg") is not None
    assert os.access(str(shutil.which("gpg")), os.X_OK)


async def test_conversation_mail_to_a_keyed_mailbox_arrives_encrypted(
    keys: Keys, tmp_path: Path, app_factory: Any, settings_for: Any, smtp_server: Any
) -> None:
    """With a key for the confidants' mailbox in the organisation config, the client's request
    reaches it encrypted end to end, and decrypts to the same complaint.json."""
    from bot.root.app import App
    from tests.bot.client import Client
    from tests.bot.mailbox import complaint_json

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "confidants.asc").write_text(keys.public, encoding="utf-8")
    config = tmp_path / "org.toml"
    config.write_text('name = "Test"\n[mailbox_keys]\nconfidants = "keys/confidants.asc"\n',
                      encoding="utf-8")
    app: App = await app_factory(settings_for(config=config, smtp_host=smtp_server.host,
                                              smtp_port=smtp_server.port, smtp_tls="none"))
    client = Client(app.service)
    await client.start(hint="en")
    # The first question chooses route and category at once (issue 14).
    for button in ("lang_en", "aggression", "talk_not_tried", "pref_female"):
        await client.press(button)
    await client.type("Olena Petrenko")
    for button in ("contact_chat", "skip", "confirm"):
        await client.press(button)
    assert await app.worker.run_once() == 1

    [received] = smtp_server.handler.received
    assert b"Olena" not in received.content and b"complaint.json" not in received.content
    inner = parse(keys.decrypt(encrypted_part(received.content)))
    doc = complaint_json(inner)
    assert (doc["kind"], doc["complainant"]["name"]) == ("confidant_request", "Olena Petrenko")
