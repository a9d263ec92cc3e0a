"""An invitation to the staff desk by mail (issue 12), for any caller (the desk, the command line).

The one-time link goes into the outbox like every other mail, so a mail server that is down loses
nothing (`bot/mail/outbox.py` retries). It is mailed only when outgoing mail is set up and the link
points at an address the person can open (not this computer's loopback). The mail says only what
is true: who invited, for which organisation and role, that the link works once and for how long;
never a password. In the invitee's language, Dutch when none was chosen.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from bot.mail.compose import new_message_id
from bot.mail.invitation import compose_invitation
from bot.services.organisation import Organisation
from bot.services.ports import ServiceHost
from flows.i18n import N_
from flows.model import LANGUAGES
from storage import OutboxItem

log = logging.getLogger(__name__)

NO_MAIL = N_("Outgoing mail is not set up (SMTP_HOST), so the link was not mailed.")
NO_ADDRESS = N_("The desk's public address (DESK_PUBLIC_URL) is not set: this link only works on "
                "the server itself. It was not mailed.")


def why_not_mailed(link: str, *, mail_configured: bool) -> str | None:
    """Why this link cannot be mailed (a message id of the catalogs), or None when it can."""
    if not mail_configured:
        return NO_MAIL
    host = (urlsplit(link).hostname or "").lower()
    if host in ("", "localhost") or host.endswith(".localhost"):
        return NO_ADDRESS
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified or address.is_link_local:
        return NO_ADDRESS
    return None


def invitation_text(app: ServiceHost, *, link: str, language: str, role: str,
                    organisation: Organisation, inviter: str | None,
                    valid: timedelta) -> tuple[str, str]:
    """The subject and body in `language` (Dutch if unknown); `role` is a message id."""
    t = app.catalogs.get(language if language in LANGUAGES else "nl")
    hours = max(1, int(valid.total_seconds() // 3600))
    name = organisation.name
    who = (t._("{inviter} invites you to the staff desk of {organisation}.").format(
        inviter=inviter, organisation=name) if inviter else
        t._("You are invited to the staff desk of {organisation}.").format(organisation=name))
    who += " " + t._("Your role: {role}.").format(role=t._(role))
    subject = t._("Invitation to the Klachtwijzer staff desk of {organisation}").format(
        organisation=name)
    body = "\n\n".join([
        t._("Hello,"),
        who,
        t._("Open this link to choose your password and set up the second factor:") + "\n" + link,
        t.ngettext("The link works once, for {count} hour. After that, ask an administrator for a "
                   "new link.", "The link works once, for {count} hours. After that, ask an "
                   "administrator for a new link.", hours).format(count=hours),
        t._("For the second factor you need an app on your phone that makes login codes."),
        t._("You choose your password yourself. It is not in this mail."),
        t._("Did you not expect this mail? Then do not open the link."),
        t._("This mail was sent automatically by Klachtwijzer."),
    ]) + "\n"
    return subject, body


async def queue_invitation(app: ServiceHost, *, email: str, link: str, language: str, role: str,
                           organisation: Organisation, inviter: str | None, valid: timedelta,
                           actor: str) -> None:
    """Put the invitation mail in the outbox (the running bot's worker sends it); audited."""
    subject, body = invitation_text(app, link=link, language=language, role=role,
                                    organisation=organisation, inviter=inviter, valid=valid)
    now = app.clock()
    sender = app.mail_from
    message_id = new_message_id(sender)
    mail = compose_invitation(subject, body, language=language if language in LANGUAGES else "nl",
                              sender=sender, recipient=email, message_id=message_id, date=now)
    async with app.db.unit_of_work() as uow:
        account = await uow.staff.by_email(email)
        await uow.outbox.add(OutboxItem(purpose="invitation", recipient=email, message_id=message_id,
                                        raw=bytes(mail), next_attempt_at=now, created_at=now))
        await uow.audit.record(now, actor, "desk_invitation_mailed", None,
                               f"account {account.id}" if account else None)
        await uow.commit()
    log.info("desk: invitation mail queued for account %s", account.id if account else "?")
