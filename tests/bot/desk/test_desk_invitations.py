"""Invitations to the desk by mail: through the outbox to a real SMTP server (aiosmtpd), in the
invitee's language, saying only what is true; never a loopback link; the link always shown too."""

from __future__ import annotations

import email
import os
import re
import sqlite3
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bot.desk.web import DESK
from bot.root.app import App
from bot.root.cli import cli
from tests.bot.desk.conftest import Desk

LINK = re.compile(r"https://desk\.example\.nl/enrol/[\w-]{43}")


def _mailing(desk: Desk, **changes: Any) -> None:
    """The desk with outgoing mail set up and a public address (unless `changes` say otherwise)."""
    desk.config = replace(desk.config, **{"mail": True, "public_url": "https://desk.example.nl",
                                          **changes})
    desk.server.app[DESK].config = desk.config


def _mail(content: bytes) -> tuple[EmailMessage, str]:
    message = email.message_from_bytes(content, policy=default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    return message, str(body.get_content())


async def test_administrator_invites_and_the_link_goes_by_mail_in_the_persons_language(
        app: App, desk: Desk, web: Any, smtp_server: Any) -> None:
    """The page shows the link and says a mail is on its way; the mail waits in the outbox while
    the mail server refuses (451) and is delivered later, in Ukrainian, with the same link, who
    invited, the organisation, the role and the 72 hours, and no password; the link enrols."""
    _mailing(desk)
    admin = await desk.person("beheer@desk.test", "administrator")
    boss = web()
    await boss.login(admin)
    await boss.get("/accounts")
    assert await boss.post("/accounts", {"email": "Olena@Desk.Test", "role": "confidant",
                                         "language": "uk"}) == (303, "/accounts")
    _status, page = await boss.get("/accounts")
    shown = LINK.search(page)
    assert shown and "Er is een e-mail met deze link onderweg naar olena@desk.test." in page
    smtp_server.handler.replies = ["451 4.3.0 try again later"]
    assert await app.worker.run_once() == 0 and smtp_server.handler.received == []
    desk.clock.advance(seconds=120)
    await app.worker.run_once()
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["olena@desk.test"]
    message, body = _mail(received.content)
    assert message["Content-Language"] == "uk" and "Klachtwijzer" in message["Subject"]
    assert LINK.findall(body) == [shown.group(0)]
    for words in ("beheer@desk.test", app.organisation.name, "Довірена особа", "протягом 72 годин",
                  "Пароль ви обираєте самі"):
        assert words in body, words
    assert "correct horse" not in body
    token = shown.group(0).rsplit("/", 1)[1]
    status, enrol = await web().get(f"/enrol/{token}")
    assert status == 200 and 'id="password"' in enrol
    async with app.db.unit_of_work(read_only=True) as uow:
        person = await uow.staff.by_email("olena@desk.test")
        actions = [(a.action, a.actor) for a in await uow.audit.list(100)]
    assert person is not None and person.language == "uk"
    assert ("desk_invitation_mailed", "desk#1") in actions


async def test_no_mail_without_a_public_address_or_outgoing_mail(
        app: App, desk: Desk, web: Any, smtp_server: Any) -> None:
    """Without DESK_PUBLIC_URL the link is this computer's loopback: it is shown with a line
    saying why it was not mailed, and nothing goes into the outbox; the same without SMTP."""
    admin = await desk.person("beheer@desk.test", "administrator")
    boss = web()
    await boss.login(admin)
    for changes, line in (({"public_url": None}, "Het openbare adres van de balie"),
                          ({"mail": False}, "Uitgaande mail is niet ingesteld")):
        _mailing(desk, **changes)
        await boss.get("/accounts")
        await boss.post("/accounts", {"email": f"{changes and next(iter(changes))}@desk.test",
                                      "role": "secretary"})
        _status, page = await boss.get("/accounts")
        assert "/enrol/" in page and line in page and "onderweg" not in page
    await app.worker.run_once()
    assert smtp_server.handler.received == []
    async with app.db.unit_of_work(read_only=True) as uow:
        assert [a for a in await uow.audit.list(100) if a.action == "desk_invitation_mailed"] == []


def test_staff_invite_with_mail_queues_the_link_and_still_prints_it(tmp_path: Path) -> None:
    """`staff invite --mail` prints the link and puts the mail in the outbox for the running bot;
    without DESK_PUBLIC_URL it prints the link and one line saying why it was not mailed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "MAIL_", "DATABASE_", "DESK_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(tmp_path / "data"), SMTP_HOST="127.0.0.1")
    done = CliRunner().invoke(cli, ["staff", "invite", "nieuw@desk.test", "--role", "coordinator",
                                    "--mail", "--language", "ar"],
                              env={**env, "DESK_PUBLIC_URL": "https://desk.example.nl"})
    assert done.exit_code == 0, done.output
    assert LINK.match(done.stdout) and "in the outbox for nieuw@desk.test" in done.stdout
    with sqlite3.connect(tmp_path / "data" / "klachtwijzer.db") as conn:
        rows = conn.execute("SELECT purpose, recipient, status FROM outbox").fetchall()
    assert rows == [("invitation", "nieuw@desk.test", "pending")]
    loopback = CliRunner().invoke(cli, ["staff", "invite", "ander@desk.test", "--role", "secretary",
                                        "--mail"], env=env)
    assert loopback.exit_code == 0 and "/enrol/" in loopback.stdout
    assert "not mailed: The desk's public address (DESK_PUBLIC_URL) is not set" in loopback.output
