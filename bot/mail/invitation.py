"""The invitation to the staff desk as a mail to the invited person (issue 12).

Its words come translated from the service (`bot/services/invitations.py`), in the invitee's
language; this module only builds the message, with the same header safety and policies as the
other mails (`bot/mail/compose.py`). It holds a one-time link, so the outbox keeps it encrypted and
drops it once sent.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from bot.mail.compose import (
    _base_message,
    _finish,
    header_safe,
    new_message_id,
    scrub_surrogates,
)

__all__ = ["compose_invitation"]


def compose_invitation(
    subject: str,
    body: str,
    *,
    language: str,
    sender: str,
    recipient: str,
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A plain-text mail in `language` (its Content-Language header) to the invited person."""
    msg = _base_message(sender=sender, recipient=recipient, subject=subject,
                        message_id=message_id or new_message_id(sender), date=date)
    msg.set_content(scrub_surrogates(body), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    msg["Content-Language"] = header_safe(language)  # after set_content, which clears Content-*
    return _finish(msg)
