"""Staff write to a client in the chat (`case message`), the client answers there, the answer reaches
the case's mailbox (001 art. 14.3: missing information), and both stay in the client's file until
they erase it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.root.app import App
from bot.services import register
from flows.model import Choice
from storage.schema import outbox
from tests.bot.mailbox import mails
from tests.bot.register_helpers import RecordingChannel, file_complaint
from tests.conftest import Clock

QUESTION = "Коли саме це сталося? Напишіть, будь ласка, дату."  # staff may write in any language
ANSWER = "10 листопада, біля 15:00, у центрі на Stationsweg"


async def test_staff_ask_in_the_chat_and_the_answer_reaches_the_mailbox(
    app: App, chat: RecordingChannel, clock: Clock, smtp_server: Any
) -> None:
    """A question reaches the client word for word with an Answer button; the answer is mailed
    verbatim to the case's mailbox, recorded with 14.3, and both show in /dossier."""
    client, ref = await file_complaint(app, "ua-msg", lang="uk")
    uk = app.catalogs.get("uk")
    await app.worker.run_once()  # the complaint itself
    clock.advance(days=3)
    change = await register.send_message(app, ref, QUESTION, actor="secretaris",
                                         asks_information=True)
    assert change.delivery == "sent"
    [(chat_id, message)] = chat.delivered
    assert (chat_id, message.text, message.button_ids()) == (
        "ua-msg",
        uk._("A message about {reference}:").format(reference=uk.ltr(ref)) + "\n" + uk.quote(QUESTION),
        [f"rp_answer:{ref}", "cmd:dossier"],
    )

    prompt = await client.send(Choice(f"rp_answer:{ref}"))
    assert [m.text for m in prompt] == [uk._(
        "Type your answer in one message. We send it to the people who handle {reference}."
    ).format(reference=uk.ltr(ref))]
    thanks = await client.type(ANSWER)
    assert thanks[0].text == uk._(
        "Thank you. We sent your answer about {reference}.").format(reference=uk.ltr(ref))

    await app.worker.run_once()
    reply = mails(smtp_server)[-1]
    body = reply.get_body().get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert (reply["Subject"], reply["To"]) == (f"[{ref}] Antwoord van de klager",
                                               "klachtencommissie@regioverband.nl")
    assert f"-----\n{ANSWER}\n-----" in body and "Oekraïens" in body and QUESTION not in body

    view = await register.case_view(app, ref)
    assert [(e.action, e.actor, e.note) for e in view.events] == [
        ("message", "secretaris", QUESTION), ("info_requested", "secretaris", None),
        ("client_reply", "client", ANSWER)]
    await client.command("dossier")
    dossier = client.text()
    line = uk._("{date}, {who}: {text}")
    assert uk._("Messages about this case:") + "\n" + "\n".join([
        "– " + line.format(date=uk.date(clock.now), who=uk._("The organisation"),
                           text=uk.quote(QUESTION)),
        "– " + line.format(date=uk.date(clock.now), who=uk._("You"), text=uk.quote(ANSWER)),
    ]) in dossier


async def test_answer_can_be_cancelled_and_forged_buttons_change_nothing(
    app: App, chat: RecordingChannel, smtp_server: Any
) -> None:
    """Blank and too long answers are asked again, Cancel sends nothing, and another client's
    Answer button for this case is refused."""
    client, ref = await file_complaint(app, "c-own")
    stranger, _ = await file_complaint(app, "c-stranger")
    en = app.catalogs.get("en")
    await register.send_message(app, ref, "Can you send us the date?")
    await client.send(Choice(f"rp_answer:{ref}"))
    blank = await client.type(" \u200b ")
    long = await client.type("x" * 2001)
    assert [blank[0].text, long[0].text, long[1].button_ids()] == [
        en._("I did not receive any text. Please type your answer."),
        en._("Your text is too long: {length} characters. The limit is {limit}. Please make it "
             "shorter. Nothing was saved.").format(length=2001, limit=2000),
        [f"rp_cancel:{ref}"]]
    cancelled = await client.send(Choice(f"rp_cancel:{ref}"))
    assert cancelled[0].text == en._("OK. We did not send anything.")
    await client.type("10 November")  # no longer an answer: the engine handles it as usual
    forged = await stranger.send(Choice(f"rp_answer:{ref}"))
    assert forged[0].text == en._(
        "This button is no longer valid. Please use the buttons below.")
    await stranger.type("I am not the client of this case")
    await app.worker.run_once()
    assert [m["Subject"] for m in mails(smtp_server) if "Antwoord" in m["Subject"]] == []
    view = await register.case_view(app, ref)
    assert [e.action for e in view.events] == ["message"]


async def test_refused_messages_say_why(app: App, chat: RecordingChannel) -> None:
    """Empty, too long, a signal, or an erased dossier: refused in Dutch, nothing stored or sent."""
    client, ref = await file_complaint(app, "c-ref")
    with pytest.raises(register.RegisterError, match="het bericht is leeg"):
        await register.send_message(app, ref, " \u202e\u200b ")
    with pytest.raises(register.RegisterError, match="te lang: 2001 tekens"):
        await register.send_message(app, ref, "x" * 2001)
    signal = await register.add_case(app)
    with pytest.raises(register.RegisterError, match="niet via een chat bereikbaar"):
        await register.send_message(app, signal.reference, "Hallo")
    await client.command("erase")
    await client.press("yes")
    with pytest.raises(register.RegisterError, match="niet via een chat bereikbaar"):
        await register.send_message(app, ref, "Hallo")
    assert chat.delivered == []
    assert [e.action for e in (await register.case_view(app, ref)).events] == []


async def test_erase_destroys_messages_answers_and_sent_mails(
    app: App, chat: RecordingChannel, smtp_server: Any
) -> None:
    """/erase destroys the complaint, its mails in the outbox (sent ones too), the staff messages
    and the answers; the mailbox gets only the request to destroy its copies."""
    client, ref = await file_complaint(app, "c-erase")
    await register.send_message(app, ref, "Which location?")
    await client.send(Choice(f"rp_answer:{ref}"))
    await client.type("Utrecht, Stationsweg")
    await app.worker.run_once()
    await client.command("erase")
    await client.press("yes")
    await app.worker.run_once()
    async with app.db.engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.purpose, outbox.c.status, outbox.c.raw.is_(None))
                                  .where(outbox.c.case_reference == ref))
    async with app.db.unit_of_work(read_only=True) as uow:
        events = await uow.register.events(ref)
    assert [tuple(row) for row in rows] == [("erasure", "sent", True)]  # sent: body not kept
    assert [(e.action, e.note) for e in events] == [("message", None), ("client_reply", None)]
    assert mails(smtp_server)[-1]["Subject"] == f"[{ref}] Verzoek om vernietiging van gegevens"
