"""The WhatsApp channel end to end: real HTTP to the webhook (signed like Meta signs), a real Graph API
stand-in on 127.0.0.1, the real service, SQLite file and SMTP server."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from bot.channels.whatsapp import (
    BUTTON_TITLE_LIMIT,
    TEXT_LIMIT,
    render,
    shorten,
    split_text,
)
from bot.services import register
from flows.model import Button, OutMessage
from tests.bot.graph_stub import GraphStub
from tests.bot.mailbox import complaint_json, mails
from tests.bot.register_helpers import file_complaint
from tests.bot.test_conversations import ARABIC_LETTER
from tests.bot.whatsapp_helpers import (
    OGG_VOICE,
    VERIFY_TOKEN,
    Meta,
    Phone,
    StartWhatsApp,
    sign,
    stop_whatsapp,
    stored_conversation,
    within_limits,
)

# --- the conversation -------------------------------------------------------------------------


async def test_schema_b_arabic_with_list_and_voice_note(
    start_whatsapp: StartWhatsApp, smtp_server: Any, graph: GraphStub
) -> None:
    """Schema B in Arabic over WhatsApp: list messages, a voice note that reaches the mail attached."""
    meta = await start_whatsapp()
    app = meta.app
    ar = app.catalogs.get("ar")
    phone = Phone(meta, wa_id="31687654321")

    await phone.type("مرحبا")  # the first message opens the chat; its script suggests Arabic
    picker = phone.newest_interactive()
    assert picker["type"] == "list"
    assert picker["action"]["button"] == "🌐"
    assert [r["title"] for r in picker["action"]["sections"][0]["rows"]] == [
        "Nederlands", "Українська", "✓ العربية", "English"]
    await phone.press("lang_ar")
    # Issue 14: the language choice shows the privacy notice and the first question at once;
    # the first question chooses route and category, and carries "I am in danger now".
    assert ar._("Continue") not in [t for _k, _r, t in phone.choices().values()]
    first = phone.newest_interactive()
    assert first["type"] == "list"  # nine choices: a list message
    rows = first["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [
        "triage|help", "triage|conflict", "triage|discrimination", "triage|bullying",
        "triage|aggression", "triage|sexual_harassment", "triage|other", "triage|unsure",
        "triage|danger_yes"]
    assert first["action"]["button"] == ar._("Choose")
    await phone.press("sexual_harassment")
    await phone.press("talk_not_tried")
    await phone.press("pref_female")
    await phone.type("فاطمة")
    await phone.press("contact_chat")

    await phone.send_media("audio", "media-voice-1", OGG_VOICE, "audio/ogg; codecs=opus", voice=True)
    # Issue 14.10: a file never answers the question; the bot says what to do next.
    assert phone.text().splitlines() == [
        ar._("We added your voice message."),
        ar.ngettext("You have added {count} photo or document now.",
                    "You have added {count} photos or documents now.", 1).format(count=1),
        ar._("Please also type your answer to the question above."),
    ]
    await phone.type("ضايقني متطوع في الموعد.")
    await phone.press("confirm")
    receipt = phone.text()
    assert ARABIC_LETTER.search(receipt)
    assert "\u2068KW-2026-" in receipt
    await phone.press("finish")
    assert within_limits(graph.messages_to(phone.wa_id))
    assert graph.downloads == 1

    assert await app.worker.run_once() == 1
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert (doc["kind"], doc["schema"], doc["category"], doc["language"], doc["channel"]) == (
        "confidant_request", "B", "sexual_harassment", "ar", "whatsapp")
    assert doc["confidant_preference"] == "female"
    assert doc["complainant"]["name"] == "فاطمة"
    assert doc["description"] == "ضايقني متطوع في الموعد."
    assert [(a["kind"], a["size"], a["content_type"]) for a in doc["attachments"]] == [
        ("voice", len(OGG_VOICE), "audio/ogg; codecs=opus")]
    voice = [p for p in mail.iter_attachments()
             if p.get_content_type() == "audio/ogg"]
    assert [p.get_payload(decode=True) for p in voice] == [OGG_VOICE]


async def test_schema_a_dutch_mediation_with_typed_choices_and_photo(
    start_whatsapp: StartWhatsApp, smtp_server: Any, graph: GraphStub
) -> None:
    """Schema A in Dutch: typed number and typed label work, a photo with caption answers the question."""
    meta = await start_whatsapp()
    app = meta.app
    nl = app.catalogs.get("nl")
    phone = Phone(meta)

    await phone.type("Hallo")
    assert phone.text() == "\n".join(app.catalogs.get(lang)._("Choose your language.")
                                     for lang in ("nl", "uk", "ar", "en"))
    await phone.type("1")  # the number of the first choice: Nederlands
    assert nl._("Continue") not in [t for _k, _r, t in phone.choices().values()]
    await phone.type(nl._("A disagreement"))  # a typed label counts as pressing it
    await phone.press("talk_not_helped")
    await phone.press("request_yes")
    await phone.type("Piet Jansen")
    await phone.press("contact_phone")
    await phone.type("+31 6 12345678")
    photo = b"\xff\xd8\xff\xe0" + b"jpeg" * 100
    await phone.send_media("image", "media-photo-1", photo, "image/jpeg",
                           caption="Wij zijn het oneens over de afspraken.")
    # The caption answers the text question it was sent at, and the client is told so.
    assert nl._("We added your photo.") in phone.text()
    assert nl._("We read the text you sent with it as your answer.") in phone.text()
    await phone.press("confirm")
    assert nl._("Do you also want to make a formal complaint now? You can also do it later.") \
        in phone.text()
    await phone.press("finish")
    assert within_limits(graph.messages_to(phone.wa_id))

    assert await app.worker.run_once() == 1
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["Subject"] == f"[{doc['reference']}] Verzoek om bemiddeling - Schema A"
    assert (doc["kind"], doc["schema"], doc["language"], doc["category"], doc["channel"]) == (
        "mediation_request", "A", "nl", "conflict", "whatsapp")
    assert doc["complainant"] == {"name": "Piet Jansen", "anonymous": False,
                                  "contact": {"method": "phone", "value": "+31 6 12345678"}}
    assert doc["description"] == "Wij zijn het oneens over de afspraken."
    assert [(a["kind"], a["size"]) for a in doc["attachments"]] == [("photo", len(photo))]


# --- the webhook's guards ---------------------------------------------------------------------


async def test_verification_get(start_whatsapp: StartWhatsApp) -> None:
    """Meta's verification: the right token echoes the challenge; anything else gets 403."""
    meta = await start_whatsapp()
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    assert await meta.verify(**good) == (200, "1158201444")
    assert (await meta.verify(**{**good, "hub.verify_token": "guess"}))[0] == 403
    assert (await meta.verify(**{**good, "hub.mode": "unsubscribe"}))[0] == 403
    assert (await meta.verify(**{**good, "hub.challenge": "<script>"}))[0] == 403
    assert (await meta.verify(**{"hub.mode": "subscribe", "hub.challenge": "1"}))[0] == 403
    assert (await meta.verify())[0] == 403


async def test_forged_signature_changes_nothing(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """A POST with a missing, wrong or stale signature gets 403; nothing is stored or sent."""
    meta = await start_whatsapp()
    message = {"from": "31611111111", "id": "wamid.forged-1", "type": "text", "text": {"body": "hoi"}}
    payload = Meta.payload({"messages": [message]})
    body = json.dumps(payload).encode()
    tampered = body.replace(b"hoi", b"hai")
    assert await meta.post(body, signature=None) == 403
    assert await meta.post(body, signature="sha256=" + "0" * 64) == 403
    assert await meta.post(body, signature=sign(body, "another-app-secret")) == 403
    assert await meta.post(tampered, signature=sign(body)) == 403
    assert await meta.post(body, signature=sign(body).removeprefix("sha256=")) == 403
    assert await meta.post(body, signature="sha256=ünïcode") == 403
    await meta.channel.idle()
    assert graph.sent == []
    assert await stored_conversation(meta.app, "31611111111") is None
    # The message id was not recorded either: the real, signed delivery is handled.
    await meta.deliver(payload)
    assert len(graph.messages_to("31611111111")) == 1


async def test_redelivered_message_has_one_effect(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """Meta delivers at least once: the same wamid twice (also concurrently) is handled once."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    await phone.type("Hello")
    kind, raw, title = phone.choices()["lang_en"]
    press = {"from": phone.wa_id, "id": "wamid.same-1", "type": "interactive",
             "interactive": {"type": kind, kind: {"id": raw, "title": title}}}
    payload = Meta.payload({"messages": [press]})
    statuses = await asyncio.gather(meta.post(payload), meta.post(payload))
    await meta.channel.idle()
    await meta.deliver(payload)
    assert list(statuses) == [200, 200]
    # One answer (issue 14): the privacy notice, then the first question.
    assert [m["type"] for m in phone.collect()] == ["text", "interactive"]
    conversation = await stored_conversation(meta.app, phone.wa_id)
    assert conversation.state == "triage"


async def test_redelivery_after_restart_is_ignored(
    start_whatsapp: StartWhatsApp, graph: GraphStub
) -> None:
    """After a restart (nothing in memory) a redelivered wamid is still a no-op: the database knows it."""
    first = await start_whatsapp()
    phone = Phone(first)
    await phone.type("Hello")
    await phone.press("lang_en")
    kind, raw, title = phone.choices()["help"]  # the first question, shown with the language
    answer = {"from": phone.wa_id, "id": "wamid.restart-1", "type": "interactive",
              "interactive": {"type": kind, kind: {"id": raw, "title": title}}}
    await first.deliver(Meta.payload({"messages": [answer]}))
    assert (await stored_conversation(first.app, phone.wa_id)).state == "A_talk"
    await stop_whatsapp(first)

    second = await start_whatsapp(app=first.app)
    phone.meta = second
    phone.collect()
    await second.deliver(Meta.payload({"messages": [answer]}))
    assert phone.collect() == []
    assert (await stored_conversation(second.app, phone.wa_id)).state == "A_talk"


async def test_messages_are_marked_read_after_the_reply(
    start_whatsapp: StartWhatsApp, graph: GraphStub
) -> None:
    """Each client message gets its blue ticks once it was answered; a refused read receipt
    changes nothing else."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    first = await phone.type("Hallo")
    second = await phone.press("lang_nl")
    assert (graph.read, len(first) > 0, len(second) > 0) == (phone.wamids, True, True)
    graph.refuse_reads = True
    third = await phone.press("help")
    assert (graph.read, len(third) > 0) == (phone.wamids[:2], True)


async def test_status_callbacks_are_not_messages(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """Sent, delivered, read and failed statuses are counted and otherwise ignored."""
    meta = await start_whatsapp()
    statuses = [
        {"id": "wamid.stub-1", "status": kind, "timestamp": "1795339800", "recipient_id": "31622222222"}
        for kind in ("sent", "delivered", "read")
    ] + [{"id": "wamid.stub-2", "status": "failed", "timestamp": "1795339801",
          "recipient_id": "31622222222", "errors": [{"code": 131026, "title": "Undeliverable"}]}]
    await meta.deliver(Meta.payload({"statuses": statuses}))
    assert meta.channel.statuses == Counter({"sent": 1, "delivered": 1, "read": 1, "failed": 1})
    assert graph.sent == []
    assert await stored_conversation(meta.app, "31622222222") is None


async def test_other_phone_number_ignored(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """A change for another phone number of the same business account is not ours to answer."""
    meta = await start_whatsapp()
    message = {"from": "31633333333", "id": "wamid.other-1", "type": "text", "text": {"body": "hoi"}}
    await meta.deliver(Meta.payload({"messages": [message]}, phone_number_id="999"))
    assert graph.sent == []


async def test_stale_and_forged_buttons_refused(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """A button from an earlier question, or with a made-up id, is refused and the question repeated."""
    meta = await start_whatsapp()
    en = meta.app.catalogs.get("en")
    phone = Phone(meta)
    await phone.type("Hello")
    old = phone.choices()["lang_nl"]
    await phone.press("lang_en")
    await phone.press_raw(old[0], old[1])
    assert en._("This button is no longer valid. Please use the buttons below.") in phone.text()
    await phone.press_raw("button_reply", "privacy|erase_everything")
    assert en._("This button is no longer valid. Please use the buttons below.") in phone.text()
    await phone.press_raw("button_reply", "x" * 5000)
    assert en._("This button is no longer valid. Please use the buttons below.") in phone.text()
    assert (await stored_conversation(meta.app, phone.wa_id)).state == "triage"


async def test_unsupported_types_get_an_answer(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """Stickers, locations, contacts, reactions and unknown types get a clear answer in the language."""
    meta = await start_whatsapp()
    uk = meta.app.catalogs.get("uk")
    phone = Phone(meta)
    await phone.type("Привіт")
    await phone.press("lang_uk")
    expected = uk._("I can only read text, buttons, photos, documents and voice messages. "
                    "Please type your answer or use the buttons.")
    for message in (
        {"type": "sticker", "sticker": {"id": "st-1", "mime_type": "image/webp", "animated": False}},
        {"type": "location", "location": {"latitude": 52.1, "longitude": 5.2}},
        {"type": "contacts", "contacts": [{"name": {"formatted_name": "X"}}]},
        {"type": "reaction", "reaction": {"message_id": "wamid.stub-1", "emoji": "👍"}},
        {"type": "unsupported", "errors": [{"code": 131051}]},
    ):
        await phone._send(message)
        assert phone.text() == expected
    assert (await stored_conversation(meta.app, phone.wa_id)).state == "triage"


async def test_too_big_file_refused(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """A file over the limit is refused with the limit named, before it is downloaded; nothing kept."""
    meta = await start_whatsapp(max_attachment_bytes=2_000_000)
    en = meta.app.catalogs.get("en")
    phone = Phone(meta)
    for step in ("lang_en", "help", "skip_to_complaint"):
        if step == "lang_en":
            await phone.type("Hello")
        await phone.press(step)
    graph.add_media("media-big", b"x" * 10, "application/pdf", declared_size=3_000_000)
    await phone._send({"type": "document", "document": {"id": "media-big", "mime_type": "application/pdf",
                                                        "filename": "../../etc/passwd"}})
    assert en._("This file is too big. The limit is {size} MB. Please send a smaller file.").format(
        size=2) in phone.text()
    assert graph.downloads == 0
    files = meta.app.settings.data_dir / "files"
    assert not files.exists() or list(files.iterdir()) == []


async def test_too_big_file_names_a_limit_below_one_megabyte(
        start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """With a limit of 100 000 bytes the refusal says 0.1 MB (in the client's format), not 1 MB."""
    meta = await start_whatsapp(max_attachment_bytes=100_000)
    en = meta.app.catalogs.get("en")
    phone = Phone(meta)
    for step in ("lang_en", "help", "skip_to_complaint"):
        if step == "lang_en":
            await phone.type("Hello")
        await phone.press(step)
    graph.add_media("media-big", b"x" * 10, "application/pdf", declared_size=150_000)
    await phone._send({"type": "document", "document": {"id": "media-big",
                                                        "mime_type": "application/pdf"}})
    text = phone.text()
    assert en._("This file is too big. The limit is {size} MB. Please send a smaller file.").format(
        size="0.1") in text
    assert "limit is 1 MB" not in text


async def test_file_outside_a_form_is_not_kept(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """A photo sent while no form is open is answered and its stored copy removed at once."""
    meta = await start_whatsapp()
    en = meta.app.catalogs.get("en")
    phone = Phone(meta)
    await phone.type("Hello")
    await phone.press("lang_en")
    await phone.send_media("image", "media-early", b"\xff\xd8" * 50, "image/jpeg")
    assert en._("You can only add photos or documents while you write your complaint "
                "or request.") in phone.text()
    assert graph.downloads == 1
    assert list((meta.app.settings.data_dir / "files").iterdir()) == []


async def test_graph_error_is_retried(start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """A 500 from the Graph API is retried: the reply arrives once."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    graph.fail_next(500, 1, times=1)
    await phone.type("Hello")
    assert len(phone.last) == 1
    assert phone.newest_interactive()["type"] == "list"


# --- outgoing limits --------------------------------------------------------------------------


async def test_ukrainian_label_is_shortened_with_full_text_in_body(
    start_whatsapp: StartWhatsApp, graph: GraphStub
) -> None:
    """A Ukrainian label over 20 characters is cut at a word with an ellipsis; the body shows it whole."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    await phone.type("Привіт")
    await phone.press("lang_uk")
    long_label = "Так, проблему повністю вирішено"
    message = OutMessage(
        "Чи вирішено вашу проблему?",
        buttons=((Button("solved", long_label), Button("not_solved", "Ні")),),
    )
    assert await meta.app.channels.send("whatsapp", phone.wa_id, [message]) == "sent"
    phone.collect()
    interactive = phone.newest_interactive()
    titles = [b["reply"]["title"] for b in interactive["action"]["buttons"]]
    assert titles == ["Так, проблему…", "Ні"]
    assert all(len(title) <= BUTTON_TITLE_LIMIT for title in titles)
    assert interactive["body"]["text"] == f"Чи вирішено вашу проблему?\n\n1. {long_label}\n2. Ні"


def test_shorten_keeps_whole_words() -> None:
    """Shortening never splits a word when one fits, and always fits the limit."""
    assert shorten("Сексуальні домагання на роботі", 22) == "Сексуальні домагання…"
    assert shorten("Короткий", 20) == "Короткий"
    assert shorten("Найдовшесловобезпробілівувсьомутексті", 20) == "Найдовшесловобезпро…"
    assert len(shorten("نعم، لقد تم حل مشكلتي بالكامل الآن", 20)) <= 20


def test_long_text_split_at_lines() -> None:
    """A text over 4096 characters is sent in pieces cut at line breaks, none over the limit."""
    lines = [f"Regel {n}: " + " ".join(["woord"] * 20) for n in range(100)]
    pieces = split_text("\n".join(lines))
    assert len(pieces) == 4
    assert all(len(piece) <= TEXT_LIMIT for piece in pieces)
    assert "\n".join(pieces).split("\n") == lines


def test_more_than_ten_choices_split_evenly(tmp_path: Path) -> None:
    """Twelve choices become two list messages of six, numbered on, each row title within 24."""
    from flows.i18n import load_catalogs

    en = load_catalogs().get("en")
    buttons = tuple((Button(f"b{n}", f"Choice number {n} with quite a long label"),) for n in range(12))
    out = render(OutMessage("Pick one.", buttons=buttons), en, state="edit")
    rows = [[r["id"] for r in m["interactive"]["action"]["sections"][0]["rows"]] for m in out]
    assert rows == [[f"edit|b{n}" for n in range(6)], [f"edit|b{n}" for n in range(6, 12)]]
    assert "7. Choice number 6 with quite a long label" in out[1]["interactive"]["body"]["text"]
    assert within_limits(out)


def test_long_question_keeps_its_buttons() -> None:
    """A question too long for an interactive body goes first as text; the buttons keep its last line."""
    from flows.i18n import load_catalogs

    en = load_catalogs().get("en")
    summary = "Please check your answers:\n" + "What happened: " + "a" * 3000 + "\nIs everything correct?"
    buttons = ((Button("confirm", "Send"), Button("change", "Change"), Button("cancel", "Stop")),)
    out = render(OutMessage(summary, buttons=buttons), en, state="summary")
    assert [m["type"] for m in out] == ["text", "interactive"]
    assert out[0]["text"]["body"] == summary.rpartition("\n")[0]
    assert out[1]["interactive"]["body"]["text"] == "Is everything correct?"
    assert within_limits(out)


# --- the 24-hour window -----------------------------------------------------------------------


async def test_window_closed_uses_template_and_news_survives_a_restart(
    start_whatsapp: StartWhatsApp, graph: GraphStub, clock: Any
) -> None:
    """25 hours after the client's last message a status update goes out as the template with the
    reference; the news itself is shown once when the client writes again, even after a restart."""
    first = await start_whatsapp(template="klachtwijzer_update")
    phone = Phone(first)
    _client, ref = await file_complaint(first.app, phone.wa_id, lang="nl", channel="whatsapp")
    t = first.app.catalogs.get("nl")
    clock.advance(hours=25)
    change = await register.set_status(first.app, ref, "acknowledged")
    assert (change.delivery, change.method) == ("template", None)
    [template] = phone.collect()
    assert template["template"] == {
        "name": "klachtwijzer_update", "language": {"code": "nl"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": ref}]}]}
    await stop_whatsapp(first)

    second = await start_whatsapp(app=first.app)  # a new process: nothing kept in memory
    phone.meta = second
    sent = await phone.type("Wat is er?")
    texts = [m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"]
             for m in sent]
    news = t._("News about {reference}:").format(reference=ref) + "\n" + t._(
        "The complaints committee confirms that it got your complaint. The committee will now "
        "look into it.")
    assert (texts[0].startswith(news), len(texts) > 1) == (True, True)  # the news, then the reply
    again = await phone.type("Hallo?")
    assert not any(ref in str(m) for m in again)
    async with second.app.db.unit_of_work(read_only=True) as uow:
        [notification] = await uow.register.notifications(ref)
    assert (notification.delivery, notification.resolved_at) == ("template", clock.now)


async def test_window_closed_without_template_is_unavailable(
    start_whatsapp: StartWhatsApp, graph: GraphStub, clock: Any
) -> None:
    """Without a template, a message outside the window is not sent: the caller uses other contact."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    await phone.type("Hallo")
    phone.collect()
    clock.advance(hours=25)
    update = OutMessage("Er is nieuws over KW-2026-000042.")
    assert await meta.app.channels.send("whatsapp", phone.wa_id, [update]) == "unavailable"
    assert phone.collect() == []
    assert await meta.app.channels.send("whatsapp", "31600000000", [update]) == "unavailable"
