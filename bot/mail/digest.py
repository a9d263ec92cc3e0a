"""The register's daily digest to the committee mailbox (issue 4), in Dutch: subject, body, mail.

Its lines name references, never people; `bot/services/register_reports.py` gathers them. Built
with the same header safety and policies as the other mails (`bot/mail/compose.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from babel import Locale
from babel.dates import format_date

from bot.mail.compose import _base_message, _finish, header_safe, new_message_id

__all__ = ["DIGEST_SECTIONS", "compose_digest", "digest_body", "digest_subject"]


DIGEST_SECTIONS: Mapping[str, str] = {
    "failed": "LET OP: mail die de mailserver van de organisatie definitief weigerde (wordt niet "
              "opnieuw verstuurd)",
    "deadlines": "Termijnen die verlopen zijn of binnen 3 dagen verlopen (001 art. 4.4, 14-16)",
    "manual": "Handmatig contact nodig: het bericht aan de cliënt kon niet via de chat",
    "attention": "Nazorg: de cliënt zegt dat het probleem niet (helemaal) is opgelost (003 §4)",
    "lapsed": "Vandaag vervallen: cliënt twee maanden onbereikbaar (002 §4.1)",
    "pending": "Berichten aan cliënten die nog wachten op de chat (draait `klachtwijzer run`?)",
}


def _dutch_date(day: Any) -> str:
    return str(format_date(day, format="full", locale=Locale.parse("nl_NL")))


def digest_subject(day: Any, counts: Mapping[str, int]) -> str:
    """E.g. `[Klachtwijzer] Dagoverzicht register 23-11-2026: 2 termijnen, 1 contact`."""
    parts = []
    if counts.get("failed"):
        n = counts["failed"]
        parts.append(f"{n} mail{'s' if n != 1 else ''} geweigerd")
    if counts.get("deadlines"):
        n = counts["deadlines"]
        parts.append(f"{n} termijn" + ("en" if n != 1 else ""))
    if counts.get("manual"):
        parts.append(f"{counts['manual']} handmatig contact")
    if counts.get("attention"):
        parts.append(f"{counts['attention']} nazorg")
    if counts.get("lapsed"):
        parts.append(f"{counts['lapsed']} vervallen")
    summary = ", ".join(parts) or "niets te melden"
    return f"[Klachtwijzer] Dagoverzicht register {day.strftime('%d-%m-%Y')}: {summary}"


def digest_body(day: Any, sections: Mapping[str, Sequence[str]]) -> str:
    """The digest text: one block per non-empty section. Lines name references, never people."""
    text = [f"Dagoverzicht van het klachtenregister, {_dutch_date(day)}.", ""]
    for key, title in DIGEST_SECTIONS.items():
        lines = sections.get(key) or ()
        if not lines:
            continue
        text.append(f"{title}:")
        text.extend(f"- {header_safe(line)}" for line in lines)
        text.append("")
    if len(text) == 2:
        text += ["Er is vandaag niets te melden.", ""]
    text += [
        "Details van een zaak: klachtwijzer case show <referentie>.",
        "Dit bericht is automatisch verstuurd door Klachtwijzer. Het bevat geen namen, "
        "contactgegevens of inhoud van klachten.",
    ]
    return "\n".join(text) + "\n"


def compose_digest(
    day: Any,
    sections: Mapping[str, Sequence[str]],
    *,
    sender: str,
    recipient: str,
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The daily digest mail to the committee mailbox, in Dutch."""
    counts = {key: len(lines) for key, lines in sections.items()}
    msg = _base_message(
        sender=sender,
        recipient=recipient,
        subject=digest_subject(day, counts),
        message_id=message_id or new_message_id(sender),
        date=date,
    )
    msg.set_content(digest_body(day, sections), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    return _finish(msg)
