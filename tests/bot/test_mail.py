"""bot.mail.compose: the Dutch mails to the organisation (composition only, no I/O)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from bot.mail.compose import (
    POLICY,
    MailAttachment,
    compose_case_mail,
    compose_notice,
    header_safe,
)
from tests.bot.mailbox import complaint_json

SENDER = "Klachtwijzer <klachtwijzer@steunpunt.example>"
RECIPIENT = "vertrouwenspersonen@regioverband.nl"
MESSAGE_ID = "<kw-2026-000123.1@steunpunt.example>"

ARABIC = "قال\u200d لي كلاماً \u200fغير لائق، وأنا\u200c خائفة."


def parse(raw: bytes) -> EmailMessage:
    """Re-read a mail with the strict policy: any defect raises."""
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def compose(doc: dict[str, Any], **kwargs: Any) -> EmailMessage:
    kwargs.setdefault("message_id", MESSAGE_ID)
    return parse(compose_case_mail(doc, sender=SENDER, recipient=RECIPIENT, **kwargs).as_bytes())


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    content: str = part.get_content()
    return content



@pytest.mark.parametrize(
    ("changes", "subject"),
    [
        (
            {"kind": "complaint", "schema": "B", "confidant_preference": "female"},
            "[KW-2026-000123] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)",
        ),
        (
            {"kind": "complaint", "schema": "A", "confidant_preference": None},
            "[KW-2026-000123] Klacht - Schema A",
        ),
        (
            {"kind": "mediation_request", "schema": "A", "confidant_preference": None},
            "[KW-2026-000123] Verzoek om bemiddeling - Schema A",
        ),
        (
            {"kind": "report", "schema": "B", "confidant_preference": None},
            "[KW-2026-000123] Melding (alleen registratie) - Schema B",
        ),
        (
            {"kind": "confidant_request", "schema": "B", "confidant_preference": "male"},
            "[KW-2026-000123] Verzoek vertrouwenspersoon - Schema B - voorkeur: man",
        ),
        (
            {"kind": "confidant_request", "schema": "B", "confidant_preference": "female"},
            "[KW-2026-000123] Verzoek vertrouwenspersoon - Schema B - voorkeur: vrouw",
        ),
        (
            {"kind": "confidant_request", "schema": "B", "confidant_preference": "none"},
            "[KW-2026-000123] Verzoek vertrouwenspersoon - Schema B - voorkeur: geen voorkeur",
        ),
    ],
)
def test_subject_names_reference_kind_schema_and_preference(
    mail_doc: Any, changes: dict[str, Any], subject: str
) -> None:
    """Each kind of submission gets its exact Dutch subject line."""
    msg = compose(mail_doc(**changes))
    assert msg["Subject"] == subject


def test_headers_are_the_documented_set(mail_doc: Any) -> None:
    """From, To, Subject, Date, Message-ID and Auto-Submitted are set; nothing else is added."""
    msg = compose(mail_doc())
    headers = {k: str(v) for k, v in msg.items() if k not in ("MIME-Version", "Content-Type")}
    assert headers == {
        "From": SENDER,
        "To": RECIPIENT,
        "Subject": "[KW-2026-000123] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)",
        "Date": "Thu, 05 Mar 2026 13:04:00 +0000",
        "Message-ID": MESSAGE_ID,
        "Auto-Submitted": "auto-generated",
    }


@pytest.mark.parametrize("kind", ["complaint", "mediation_request", "confidant_request", "report"])
def test_body_labels_every_field(mail_doc: Any, kind: str) -> None:
    """The body has a labelled line for every field, whatever the kind."""
    lines = body_of(compose(mail_doc(kind=kind))).splitlines()
    labels = [
        "Referentie",
        "Soort",
        "Schema",
        "Categorie",
        "Taal van de klager",
        "Klager",
        "Anoniem",
        "Vertegenwoordiger",
        "Betrokken medewerker(s)",
        "Wat is er gebeurd",
        "Wanneer",
        "Wat is al geprobeerd",
        "Contact",
        "Ontvankelijkheid",
        "Toestemming",
        "Kanaal",
        "Ontvangen op",
    ]
    missing = [label for label in labels if not any(ln.startswith(f"{label}:") for ln in lines)]
    assert missing == []


def test_body_values_are_in_dutch(mail_doc: Any) -> None:
    """Language names, unknown staff, contact, admissibility and deadlines read as Dutch."""
    lines = body_of(compose(mail_doc())).splitlines()
    expected = [
        "Referentie: KW-2026-000123",
        "Soort: Klacht",
        "Schema: B (ongewenst of grensoverschrijdend gedrag)",
        "Categorie: Seksuele intimidatie",
        "Taal van de klager: Oekraïens (uk)",
        "Klager: Олена Петренко",
        "Anoniem: nee",
        "Vertegenwoordiger: geen",
        "Betrokken medewerker(s): onbekend",
        "(letterlijk, in de eigen taal van de klager: Oekraïens (uk); niet vertaald)",
        "Wanneer: минулого вівторка (gelezen als datum: 3 maart 2026, 2026-03-03)",
        "Wat is al geprobeerd: besproken binnen de organisatie, dat heeft niet geholpen",
        "    Toelichting: Я говорила з координатором.",
        "Contact: telefoon: +31 6 12345678",
        "Ontvankelijkheid: ontvankelijk (001 art. 13.1)",
        "Toestemming: ja, de klager geeft toestemming om dit te delen met de vertrouwenspersonen",
        "Kanaal: Telegram",
        "Ontvangen op: 5 maart 2026 om 14:04 (Nederlandse tijd)",
    ]
    assert [line for line in expected if line not in lines] == []
    closing = [line for line in lines if line.startswith("Termijnen:")]
    assert len(closing) == 1
    assert ("binnen een week" in closing[0], "001 art. 14.1" in closing[0]) == (True, True)


def test_body_shows_representative_anonymity_and_email_contact(mail_doc: Any) -> None:
    """A representative with relation, an anonymous client and e-mail contact are labelled."""
    doc = mail_doc(
        kind="report",
        language="ar",
        representative={"name": "Sara", "relation": "dochter"},
        staff_involved="Jan (begeleider)",
        complainant={
            "name": None,
            "anonymous": True,
            "contact": {"method": "email", "value": "klant@example.org"},
        },
        admissibility={"status": "anonymous", "rule": "001 art. 13.3", "note": None},
    )
    lines = body_of(compose(doc)).splitlines()
    expected = [
        "Taal van de klager: Arabisch (ar)",
        "Klager: anoniem",
        "Anoniem: ja",
        "Vertegenwoordiger: Sara (relatie: dochter)",
        "Betrokken medewerker(s): Jan (begeleider)",
        "Contact: e-mail: klant@example.org",
    ]
    assert [line for line in expected if line not in lines] == []


def test_complaint_json_attachment_round_trips(mail_doc: Any) -> None:
    """complaint.json is attached as UTF-8 JSON and reads back equal to the document."""
    doc = mail_doc()
    msg = compose(doc)
    part = next(p for p in msg.iter_attachments() if p.get_filename() == "complaint.json")
    assert (part.get_content_type(), part.get_param("charset")) == ("application/json", "utf-8")
    assert complaint_json(msg) == doc


def test_complaint_json_is_readable_utf8_indented(mail_doc: Any) -> None:
    """complaint.json keeps Cyrillic readable (ensure_ascii=False) and is indented by 2."""
    doc = mail_doc()
    msg = compose(doc)
    part = next(p for p in msg.iter_attachments() if p.get_filename() == "complaint.json")
    raw = part.get_content()
    assert raw == json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def test_arabic_and_joiners_survive_in_body_and_json(mail_doc: Any) -> None:
    """Arabic text with U+200D, U+200C and U+200F reaches body and complaint.json unchanged."""
    doc = mail_doc(language="ar", description=ARABIC)
    msg = compose(doc)
    body = body_of(msg)
    assert (ARABIC in body, complaint_json(msg)["description"]) == (True, ARABIC)


def test_raw_mail_is_ascii_with_short_body_lines(mail_doc: Any) -> None:
    """The wire form is 7-bit, encoded body lines at most 76 characters, none over 998."""
    doc = mail_doc(language="ar", description=ARABIC * 20)
    files = [MailAttachment("x.jpg", "image/jpeg", bytes(range(256)) * 10)]
    raw = compose_case_mail(doc, sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID, attachments=files)
    data = raw.as_bytes()
    encoded = [p.get_payload() for p in parse(data).walk() if not p.is_multipart()]
    assert (
        data.isascii(),
        len(encoded),
        max(len(line) for payload in encoded for line in payload.splitlines()),
        max(len(line) for line in data.split(b"\r\n")) <= 998,
    ) == (True, 3, 76, True)


def test_subject_is_one_unfolded_line(mail_doc: Any) -> None:
    """A 70-77 character subject stays on the Subject line (no leading space when read back)."""
    raw = compose_case_mail(mail_doc(), sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID)
    subject = b"Subject: [KW-2026-000123] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)"
    assert subject + b"\r\n" in raw.as_bytes()


def test_header_injection_in_email_contact_adds_no_header(mail_doc: Any) -> None:
    """An e-mail contact `a@b.nl\\r\\nBcc: x@y` neither adds a Bcc nor becomes Reply-To."""
    doc = mail_doc(complainant={"contact": {"method": "email", "value": "a@b.nl\r\nBcc: x@y"}})
    raw = compose_case_mail(doc, sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID)
    data = raw.as_bytes()
    head = data.split(b"\r\n\r\n", 1)[0]
    msg = parse(data)
    assert (msg["Bcc"], msg["Reply-To"], b"Bcc" in head) == (None, None, False)


def test_valid_email_contact_becomes_reply_to_without_bidi(mail_doc: Any) -> None:
    """A client's e-mail address is the Reply-To, with a U+202E override stripped."""
    doc = mail_doc(complainant={"contact": {"method": "email", "value": "\u202eklant@example.org"}})
    msg = compose(doc)
    assert msg["Reply-To"] == "klant@example.org"


def test_phone_contact_sets_no_reply_to(mail_doc: Any) -> None:
    """Only an e-mail contact becomes Reply-To; a phone number does not."""
    assert compose(mail_doc())["Reply-To"] is None


def test_header_safe_strips_line_breaks_controls_and_bidi() -> None:
    """header_safe removes CR/LF, C0/C1 controls, bidi overrides/isolates and marks."""
    text = "a\r\nb\u202ec\u2066d\u200fe\x85f\x00g\u200eh\u2069"
    assert header_safe(text) == "a b c d e f g h"


def test_reference_with_line_break_cannot_inject_headers(mail_doc: Any) -> None:
    """Even a malformed reference cannot break out of the Subject header."""
    msg = compose(mail_doc(reference="KW-1\r\nBcc: x@y\u202e"))
    assert (msg["Subject"], msg["Bcc"]) == (
        "[KW-1 Bcc: x@y] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)",
        None,
    )


def test_lone_surrogate_does_not_crash(mail_doc: Any) -> None:
    """A lone surrogate in the client's text becomes U+FFFD in body and complaint.json."""
    doc = mail_doc(description="kapot \ud800 teken", complainant={"name": "Ali \udfff"})
    msg = compose(doc)
    body = body_of(msg)
    assert (
        "kapot \ufffd teken" in body,
        "Klager: Ali \ufffd" in body.splitlines(),
        complaint_json(msg)["description"],
    ) == (True, True, "kapot \ufffd teken")


def test_client_files_get_generated_names(mail_doc: Any) -> None:
    """Client files are attached as bijlage-N.ext, never under the client's file name."""
    files = [
        MailAttachment("Olena Petrenko paspoort.jpeg", "image/jpeg", b"\xff\xd8\xff\x00jpeg"),
        MailAttachment("verklaring.PDF", "application/x-unknown", b"%PDF-1.4"),
        MailAttachment("Olena\r\nBcc: x.sh", "text/html\r\nX: y", b"<p>x</p>"),
    ]
    msg = compose(mail_doc(), attachments=files)
    got = [
        (p.get_filename(), p.get_content_type(), p.get_content())
        for p in msg.iter_attachments()
        if p.get_filename() != "complaint.json"
    ]
    assert got == [
        ("bijlage-1.jpg", "image/jpeg", b"\xff\xd8\xff\x00jpeg"),
        ("bijlage-2.pdf", "application/x-unknown", b"%PDF-1.4"),
        ("bijlage-3.bin", "application/octet-stream", b"<p>x</p>"),
    ]


def test_same_message_id_on_every_composition(mail_doc: Any) -> None:
    """A retry composed with the stored Message-ID carries that same id."""
    doc = mail_doc()
    ids = [compose(doc, message_id=MESSAGE_ID)["Message-ID"] for _ in range(2)]
    assert ids == [MESSAGE_ID, MESSAGE_ID]


def test_generated_message_id_uses_sender_domain(mail_doc: Any) -> None:
    """Without a stored id, a fresh one is made on the sender's domain."""
    msg = compose_case_mail(mail_doc(), sender=SENDER, recipient=RECIPIENT)
    assert str(msg["Message-ID"]).endswith("@steunpunt.example>")


def test_withdrawal_notice(mail_doc: Any) -> None:
    """The withdrawal notice names the reference and 002 §4.1, and carries no attachment."""
    msg = parse(
        compose_notice(
            "KW-2026-000123",
            "withdrawal",
            sender=SENDER,
            recipient=RECIPIENT,
            message_id=MESSAGE_ID,
        ).as_bytes()
    )
    body = body_of(msg)
    assert (
        msg["Subject"],
        msg["Message-ID"],
        "KW-2026-000123" in body,
        "002 §4.1" in body,
        list(msg.iter_attachments()),
    ) == ("[KW-2026-000123] Klacht ingetrokken", MESSAGE_ID, True, True, [])


def test_erasure_notice_asks_to_destroy_copies() -> None:
    """The erasure notice cites 001 art. 17.4 and asks the mailbox to destroy its copies."""
    msg = parse(
        compose_notice(
            "KW-2026-000123", "erasure", sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID
        ).as_bytes()
    )
    body = body_of(msg)
    assert (
        msg["Subject"],
        "001 art. 17.4" in body,
        "kopieën vernietigen" in body,
        msg["Auto-Submitted"],
    ) == ("[KW-2026-000123] Verzoek om vernietiging van gegevens", True, True, "auto-generated")
