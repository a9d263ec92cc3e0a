"""The mails Klachtwijzer sends to the organisation: pure composition, no I/O. (The register's
daily digest is composed in `bot/mail/digest.py`, with the helpers here.)

Mails to the organisation are written in Dutch, its working language (GLOSSARY.md); they are not
client-facing, so the Dutch labels live here as constants rather than in the gettext catalogs.

Boundary rules:
- Anything the client typed that could land in a header goes through `header_safe` (no CR/LF, no
  control or bidi characters), so a client cannot add a header (e.g. `Bcc:`) or reorder the subject.
- The client's own words stay unchanged in the body; only lone surrogates (which cannot be encoded)
  are replaced by U+FFFD, here and nowhere else. The exact record is the attached `complaint.json`.
- Client files are attached under generated names (`bijlage-1.jpg`), never under their own name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.dates import format_datetime as babel_format_datetime

# Strict: a defect while building or re-reading a message is an error, not a silent repair.
POLICY = SMTP.clone(raise_on_defect=True)
# What a finished message carries: bodies were already encoded at 76 characters a line under
# POLICY; headers are only folded beyond 998. (Python folds a 70-77 character Subject onto its own
# continuation line, which reads back with a leading space and breaks mailbox filters on `[KW-`.)
WIRE_POLICY = POLICY.clone(max_line_length=998)
# Quoted-printable and base64 lines of at most 76 characters (RFC 2045 6.7, 6.8).
_BUILD_POLICY = POLICY.clone(max_line_length=76)

# --- Dutch labels (the organisation's working language) -----------------------------------------

KIND_LABELS: Mapping[str, str] = {
    "complaint": "Klacht",
    "mediation_request": "Verzoek om bemiddeling",
    "confidant_request": "Verzoek vertrouwenspersoon",
    "report": "Melding (alleen registratie)",
    # 002 §2.3, 003 §5: dissatisfaction solved in a talk, registered for the full picture.
    "signal": "Signaal (opgelost in een gesprek)",
}
SCHEMA_LABELS: Mapping[str, str] = {
    "A": "A (ontevredenheid of conflict met begeleiding)",
    "B": "B (ongewenst of grensoverschrijdend gedrag)",
}
CATEGORY_LABELS: Mapping[str, str] = {
    "conflict": "Meningsverschil of conflict met begeleider",
    "help": "Niet goed geholpen",
    "discrimination": "Discriminatie",
    "bullying": "Pesten",
    "aggression": "Agressie",
    "sexual_harassment": "Seksuele intimidatie",
    "other": "Anders",
    "unsure": "Weet de klager niet",
}
PREFERENCE_LABELS: Mapping[str, str] = {
    "female": "vrouw",
    "male": "man",
    "none": "geen voorkeur",
}
STEPS_LABELS: Mapping[str, str] = {
    "helped": "besproken binnen de organisatie, dat heeft geholpen",
    "not_helped": "besproken binnen de organisatie, dat heeft niet geholpen",
    "not_tried": "nog niet besproken binnen de organisatie",
}
ADMISSIBILITY_LABELS: Mapping[str, str] = {
    "admissible": "ontvankelijk",
    "possibly_out_of_time": "mogelijk niet-ontvankelijk (termijn verstreken)",
    "anonymous": "anoniem: wordt geregistreerd, niet in behandeling genomen",
    "report_only": "melding: alleen registratie",
}
SHARE_LABELS: Mapping[str, str] = {
    "committee": "de klachtencommissie",
    "confidants": "de vertrouwenspersonen",
}
CHANNEL_LABELS: Mapping[str, str] = {
    "telegram": "Telegram",
    "whatsapp": "WhatsApp",
    "terminal": "terminal",
}
UNKNOWN = "onbekend"
NOT_GIVEN = "niet opgegeven"
YES = "ja"
NO = "nee"

# The organisation works in Dutch time; times are shown there (the ISO value is in complaint.json).
try:
    _ORG_TZ: Any = ZoneInfo("Europe/Amsterdam")
except ZoneInfoNotFoundError:  # pragma: no cover - no tz database on this machine
    _ORG_TZ = UTC

# --- header safety ------------------------------------------------------------------------------

# C0 and C1 controls (CR/LF included), DEL, bidi embeddings/overrides/isolates (U+202A-U+202E,
# U+2066-U+2069), directional marks (U+200E, U+200F, U+061C), line/paragraph separators, BOM.
_HEADER_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"\s+")
# A plain ASCII address, good enough to decide whether to offer it as Reply-To.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")

_EXTENSIONS: Mapping[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}


# Extensions taken from the client's file name when the content type is not one we know.
_SAFE_SUFFIXES = frozenset(_EXTENSIONS.values()) | {".jpeg", ".odt", ".ods", ".xlsx", ".opus", ".oga"}


def scrub_surrogates(text: str) -> str:
    """Replace lone surrogates (which no encoder accepts) with U+FFFD; everything else unchanged."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def header_safe(text: str) -> str:
    """Make user-typed text safe for a header: no CR/LF, control or bidi characters, one line."""
    cleaned = _HEADER_UNSAFE.sub(" ", scrub_surrogates(text))
    return _SPACES.sub(" ", cleaned).strip()


def reply_address(value: str | None) -> str | None:
    """The client's e-mail address if it looks like a plain, valid one; otherwise None."""
    if not value:
        return None
    candidate = header_safe(value)
    if len(candidate) > 254 or _ADDRESS.fullmatch(candidate) is None:
        return None
    return candidate


def new_message_id(sender: str) -> str:
    """A fresh Message-ID on the sender's domain (no DNS lookup); store it to resend the same id."""
    domain = sender.rpartition("@")[2].strip(" >") or "klachtwijzer.invalid"
    return make_msgid(domain=header_safe(domain) or "klachtwijzer.invalid")


# --- attachments --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailAttachment:
    """A client file to attach. `filename` only hints the extension; it never reaches the mail."""

    filename: str
    content_type: str
    data: bytes


def _content_type(value: str) -> tuple[str, str]:
    cleaned = header_safe(value).lower().split(";", 1)[0].strip()
    if _CONTENT_TYPE.fullmatch(cleaned) is None or cleaned.startswith("multipart/"):
        cleaned = "application/octet-stream"
    maintype, _, subtype = cleaned.partition("/")
    return maintype, subtype


def safe_attachment_name(index: int, content_type: str, filename: str = "") -> str:
    """`bijlage-<n><ext>`: the extension from the content type, else from the file name's suffix."""
    maintype, subtype = _content_type(content_type)
    suffix = _EXTENSIONS.get(f"{maintype}/{subtype}")
    if suffix is None:
        dot = filename.rfind(".")
        hint = filename[dot:].lower() if dot >= 0 else ""
        suffix = hint if hint in _SAFE_SUFFIXES else ".bin"
    return f"bijlage-{index}{suffix}"


# --- helpers ------------------------------------------------------------------------------------


def _scrub(value: Any) -> Any:
    """A copy of a JSON-like value with lone surrogates replaced in every string (keys included)."""
    if isinstance(value, str):
        return scrub_surrogates(value)
    if isinstance(value, Mapping):
        return {scrub_surrogates(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _inline(value: str) -> str:
    """A client value on one labelled line: continuation lines indented, content unchanged."""
    return "\n    ".join(value.splitlines()) if value else value


def language_name(code: str | None) -> str:
    """The language's name in Dutch (`uk` -> `Oekraïens`), via Babel."""
    if not code:
        return UNKNOWN
    try:
        name = Locale.parse(code).get_display_name("nl")
    except (ValueError, UnknownLocaleError):
        name = None
    return f"{name} ({code})" if name else code


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _dutch_datetime(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = babel_format_datetime(aware, "d MMMM y 'om' HH:mm", tzinfo=_ORG_TZ, locale="nl")
    return f"{local} (Nederlandse tijd)"


def _parsed_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return f"{format_date(parsed, format='long', locale='nl')}, {value}"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- subject and body ---------------------------------------------------------------------------


def case_subject(doc: Mapping[str, Any]) -> str:
    """`[KW-2026-000123] Klacht - Schema B - vertrouwenspersoon gevraagd (vrouw)` and the like."""
    reference = header_safe(str(doc.get("reference") or UNKNOWN))
    kind = str(doc.get("kind") or "")
    parts = [header_safe(KIND_LABELS.get(kind, kind or UNKNOWN))]
    schema = _text(doc.get("schema"))
    if schema:
        parts.append(f"Schema {header_safe(schema)}")
    preference = doc.get("confidant_preference")
    if kind == "confidant_request":
        parts.append(f"voorkeur: {PREFERENCE_LABELS.get(str(preference), 'geen voorkeur')}")
    elif preference in PREFERENCE_LABELS:
        parts.append(f"vertrouwenspersoon gevraagd ({PREFERENCE_LABELS[str(preference)]})")
    return f"[{reference}] " + " - ".join(parts)


def _contact_line(contact: Mapping[str, Any]) -> str:
    method = contact.get("method")
    value = _text(contact.get("value"))
    if method == "phone":
        return f"telefoon: {_inline(value) if value else NOT_GIVEN}"
    if method == "email":
        return f"e-mail: {_inline(value) if value else NOT_GIVEN}"
    if method == "chat":
        return "via deze chat (Klachtwijzer); de klager leest antwoorden in de chat"
    return UNKNOWN


def case_body(doc: Mapping[str, Any], attachment_names: Sequence[str] = ()) -> str:
    """The plain-text Dutch body: every field labelled, the client's words verbatim."""
    kind = str(doc.get("kind") or "")
    complainant = _dict(doc.get("complainant"))
    representative = doc.get("representative")
    steps = _dict(doc.get("steps_taken"))
    dates = _dict(doc.get("incident_dates"))
    admissibility = _dict(doc.get("admissibility"))
    consent = _dict(doc.get("consent"))
    language = _text(doc.get("language"))
    preference = doc.get("confidant_preference")
    received = _when(doc.get("created_at"))

    lines: list[str] = [
        f"Via Klachtwijzer is een {KIND_LABELS.get(kind, 'bericht').lower()} binnengekomen.",
        "",
        f"Referentie: {doc.get('reference') or UNKNOWN}",
        f"Soort: {KIND_LABELS.get(kind, kind or UNKNOWN)}",
        f"Schema: {SCHEMA_LABELS.get(str(doc.get('schema')), str(doc.get('schema') or UNKNOWN))}",
        f"Categorie: {CATEGORY_LABELS.get(str(doc.get('category')), UNKNOWN)}",
        f"Taal van de klager: {language_name(language)}",
        "Vertrouwenspersoon gevraagd: "
        + (f"ja, voorkeur: {PREFERENCE_LABELS[str(preference)]}" if preference in PREFERENCE_LABELS else NO),
        "",
    ]

    anonymous = bool(complainant.get("anonymous"))
    name = _text(complainant.get("name"))
    lines.append(f"Klager: {_inline(name) if name else ('anoniem' if anonymous else NOT_GIVEN)}")
    lines.append(f"Anoniem: {YES if anonymous else NO}")
    if isinstance(representative, Mapping):
        rep_name = _text(representative.get("name")) or NOT_GIVEN
        relation = _text(representative.get("relation")) or NOT_GIVEN
        lines.append(f"Vertegenwoordiger: {_inline(rep_name)} (relatie: {_inline(relation)})")
    else:
        lines.append("Vertegenwoordiger: geen")
    staff = _text(doc.get("staff_involved"))
    lines.append(f"Betrokken medewerker(s): {_inline(staff) if staff else UNKNOWN}")
    lines.append("")

    description = doc.get("description")
    lines.append("Wat is er gebeurd:")
    if isinstance(description, str) and description.strip():
        lines.append(
            f"(letterlijk, in de eigen taal van de klager: {language_name(language)}; niet vertaald)"
        )
        lines.append("-----")
        lines.append(description)
        lines.append("-----")
    else:
        lines.append(NOT_GIVEN)
    lines.append("")

    when_text = _text(dates.get("text"))
    when = _inline(when_text) if when_text else NOT_GIVEN
    parsed = _parsed_date(dates.get("parsed"))
    lines.append(f"Wanneer: {when}" + (f" (gelezen als datum: {parsed})" if parsed else ""))
    talked = steps.get("talked")
    steps_text = _text(steps.get("text"))
    lines.append(f"Wat is al geprobeerd: {STEPS_LABELS.get(str(talked), NOT_GIVEN)}")
    if steps_text:
        lines.append(f"    Toelichting: {_inline(steps_text)}")
    lines.append(f"Contact: {_contact_line(_dict(complainant.get('contact')))}")
    lines.append("")

    status = str(admissibility.get("status"))
    rule = _text(admissibility.get("rule"))
    note = _text(admissibility.get("note"))
    admissible = ADMISSIBILITY_LABELS.get(status, UNKNOWN)
    if rule:
        admissible += f" ({rule})"
    if note:
        admissible += f"; {_inline(note)}"
    lines.append(f"Ontvankelijkheid: {admissible}")
    if consent.get("given"):
        share = SHARE_LABELS.get(str(consent.get("share_with")), UNKNOWN)
        lines.append(f"Toestemming: ja, de klager geeft toestemming om dit te delen met {share}")
    else:
        lines.append("Toestemming: nee")
    lines.append(f"Noodinformatie (112) getoond: {YES if doc.get('emergency_shown') else NO}")
    lines.append(f"Bijlagen: {', '.join(attachment_names) if attachment_names else 'geen'}")
    lines.append("    (de volledige gegevens staan in de bijlage complaint.json)")
    channel = str(doc.get("channel") or "")
    lines.append(f"Kanaal: {CHANNEL_LABELS.get(channel, channel or UNKNOWN)}")
    lines.append(f"Ontvangen op: {_dutch_datetime(received) if received else UNKNOWN}")
    lines.append("")

    lines.append(
        "Termijnen: stuur de klager binnen een week een ontvangstbevestiging "
        "(001 art. 14.1); ontbreekt informatie, geef de klager twee weken om die aan te vullen "
        "(001 art. 14.3)."
    )
    if kind == "report" or status == "report_only":
        lines.append(
            "Dit is een melding: de klager wil alleen registratie, geen verdere actie (001 art. 17.5)."
        )
    if anonymous or status == "anonymous":
        lines.append(
            "Anonieme klachten worden geregistreerd maar niet in behandeling genomen (001 art. 13.3)."
        )
    lines.append("")
    lines.append("Dit bericht is automatisch verstuurd door Klachtwijzer.")
    return scrub_surrogates("\n".join(lines) + "\n")


# --- messages -----------------------------------------------------------------------------------


def _base_message(
    *, sender: str, recipient: str, subject: str, message_id: str, date: datetime | None
) -> EmailMessage:
    msg = EmailMessage(policy=_BUILD_POLICY)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = header_safe(subject)
    moment = date or datetime.now(UTC)
    msg["Date"] = format_datetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    safe_id = header_safe(message_id)
    if _MESSAGE_ID.fullmatch(safe_id) is None:
        raise ValueError("message_id must look like <local@domain>")
    msg["Message-ID"] = safe_id
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _finish(msg: EmailMessage) -> EmailMessage:
    for part in msg.walk():
        part.policy = WIRE_POLICY
    return msg


def complaint_json_bytes(doc: Mapping[str, Any]) -> bytes:
    """`complaint.json` as attached: UTF-8, not ASCII-escaped, indented by 2."""
    return json.dumps(_scrub(doc), ensure_ascii=False, indent=2).encode("utf-8")


def compose_case_mail(
    doc: Mapping[str, Any],
    *,
    sender: str,
    recipient: str,
    attachments: Sequence[MailAttachment] = (),
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The mail forwarding one registered case (its `complaint.json` document) to the mailbox.

    Pass the stored `message_id` on every retry so the mailbox sees one message, not several.
    `date` defaults to the document's `created_at`.
    """
    names = [safe_attachment_name(i, a.content_type, a.filename) for i, a in enumerate(attachments, start=1)]
    msg = _base_message(
        sender=sender,
        recipient=recipient,
        subject=case_subject(doc),
        message_id=message_id or new_message_id(sender),
        date=date or _when(doc.get("created_at")),
    )
    contact = _dict(_dict(doc.get("complainant")).get("contact"))
    if contact.get("method") == "email":
        reply_to = reply_address(_text(contact.get("value")))
        if reply_to:
            msg["Reply-To"] = reply_to

    msg.set_content(case_body(doc, names), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_attachment(
        complaint_json_bytes(doc),
        maintype="application",
        subtype="json",
        filename="complaint.json",
        params={"charset": "utf-8"},
    )
    for name, attachment in zip(names, attachments, strict=True):
        maintype, subtype = _content_type(attachment.content_type)
        msg.add_attachment(bytes(attachment.data), maintype=maintype, subtype=subtype, filename=name)
    return _finish(msg)


NOTICE_SUBJECTS: Mapping[str, str] = {
    "withdrawal": "Klacht ingetrokken",
    "erasure": "Verzoek om vernietiging van gegevens",
}


def notice_body(reference: str, purpose: Literal["withdrawal", "erasure"]) -> str:
    """The Dutch notice text; it names the reference and nothing else about the client."""
    ref = header_safe(reference)
    if purpose == "withdrawal":
        text = [
            f"De klager heeft de klacht met referentie {ref} ingetrokken via Klachtwijzer.",
            "",
            "De klacht vervalt en wordt niet verder behandeld (002 §4.1). Een ingetrokken klacht "
            "wordt wel geregistreerd (001 art. 17.5).",
        ]
    elif purpose == "erasure":
        text = [
            f"De klager van de zaak met referentie {ref} heeft via Klachtwijzer gevraagd om "
            "vernietiging van zijn of haar gegevens (001 art. 17.4).",
            "",
            "Klachtwijzer vernietigt zijn eigen gegevens over deze klager. Wilt u ook uw "
            "kopieën vernietigen: deze mail en eerdere mails met deze referentie, hun bijlagen "
            "(waaronder complaint.json) en uw registratie en dossier over deze zaak.",
        ]
    else:  # pragma: no cover - guarded by the type
        raise ValueError("unknown notice purpose")
    text += ["", "Dit bericht is automatisch verstuurd door Klachtwijzer."]
    return "\n".join(text) + "\n"


def compose_notice(
    reference: str,
    purpose: Literal["withdrawal", "erasure"],
    *,
    sender: str,
    recipient: str,
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell the mailbox a case was withdrawn (`002` §4.1) or must be destroyed (`001` art. 17.4)."""
    body = notice_body(reference, purpose)
    msg = _base_message(
        sender=sender,
        recipient=recipient,
        subject=f"[{header_safe(reference)}] {NOTICE_SUBJECTS[purpose]}",
        message_id=message_id or new_message_id(sender),
        date=date,
    )
    msg.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    return _finish(msg)


def reply_body(reference: str, text: str, language: str | None) -> str:
    """The client's answer to a message from staff, verbatim, in Dutch around it."""
    ref = header_safe(reference)
    return "\n".join([
        f"De klager van de zaak met referentie {ref} heeft in de chat geantwoord op uw bericht.",
        "",
        f"Antwoord (letterlijk, in de eigen taal van de klager: {language_name(language)}; "
        "niet vertaald):",
        "-----",
        text,
        "-----",
        "",
        f"Terugschrijven in de chat: klachtwijzer case message {ref} \"...\"",
        "Dit bericht is automatisch verstuurd door Klachtwijzer.",
    ]) + "\n"


def compose_reply(
    reference: str,
    text: str,
    *,
    language: str | None,
    sender: str,
    recipient: str,
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Mail the client's answer to the case's mailbox (001 art. 14.3: missing information)."""
    msg = _base_message(
        sender=sender,
        recipient=recipient,
        subject=f"[{header_safe(reference)}] Antwoord van de klager",
        message_id=message_id or new_message_id(sender),
        date=date,
    )
    msg.set_content(reply_body(reference, text, language), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    return _finish(msg)
