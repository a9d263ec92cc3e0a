"""Telegram end to end: the REAL python-telegram-bot and the REAL aiogram against a local Bot API stand-in.

Every conversation test runs for both libraries (and the relay in both modes): the same updates, the
same expectations. Mail goes through a real aiosmtpd server, data into a real SQLite file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.telegram.core import CallbackCodec, TelegramCore, TelegramOptions, state_code
from bot.channels.telegram.run import run_telegram
from bot.root.app import App, build_app
from bot.root.settings import Settings
from storage.handoffs import HandoffRecord
from tests.bot.mailbox import complaint_json, mails
from tests.bot.telegram_stub import BotApiStub, Sent, callback_update, message_update, user
from tests.bot.whatsapp_helpers import free_port
from tests.conftest import Clock

TOKEN = "123456789:AAE-klachtwijzer-test-token-abcdefghij"
SECRET = "webhook-secret-0123456789"
CLIENT, FEMALE_1, FEMALE_2, MALE, COORDINATOR, STRANGER = 4101, 501, 502, 503, 900, 4999
FAST = TelegramOptions(poll_timeout=1, per_chat_rate=1000.0, per_chat_burst=100, flood_max=60,
                       flood_window=60.0, expiry_interval=3600.0, time_scale=0.01)
ORG = """
name = "Steunpunt Vluchtelingen De Bilt"

[telegram]
confidants = [
  { id = 501, gender = "female" },
  { id = 502, gender = "female" },
  { id = 503, gender = "male" },
]
coordinators = [900]

[handoff]
timeout_minutes = 30
"""
LIBRARIES = ["ptb", "aiogram"]




@dataclass
class Harness:
    """One running bot (one library, one mode) on the stub, and the people who talk to it."""

    stub: BotApiStub
    settings: Settings
    clock: Clock
    options: TelegramOptions = FAST
    app: App | None = None
    core: TelegramCore | None = None
    task: asyncio.Task[None] | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def a(self) -> App:
        assert self.app is not None
        return self.app

    @property
    def c(self) -> TelegramCore:
        assert self.core is not None
        return self.core

    @property
    def webhook(self) -> bool:
        return self.settings.telegram_mode == "webhook"

    async def start(self) -> None:
        self.app = await build_app(self.settings, clock=self.clock)
        self.stop_event = asyncio.Event()
        ready = asyncio.Event()

        def started(core: TelegramCore) -> None:
            self.core = core
            ready.set()

        self.task = asyncio.create_task(
            run_telegram(self.app, self.stop_event, options=self.options, started=started))
        waiter = asyncio.create_task(ready.wait())
        # Generous: the first aiogram start imports the library (about 5 s, more on a busy machine).
        done, _ = await asyncio.wait({waiter, self.task}, timeout=120,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            self.task.result()  # raises what went wrong
        assert waiter in done, "the bot did not start"

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
            self.task = None
        if self.app is not None:
            await self.app.close()
            self.app = None
        self.core = None

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        """POST an update to the bot's webhook, as Telegram does; returns the HTTP status."""
        url = str(self.settings.telegram_webhook_url)
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with aiohttp.ClientSession() as session, session.post(
                url, json=update, headers=headers) as response:
            return response.status

    async def deliver(self, update: dict[str, Any], *, again: bool = False) -> None:
        if self.webhook:
            assert await self.post(update) == 200
        else:
            await self.stub.push({**update, "_again": True} if again else update)
        await self.settle(update["update_id"])

    async def settle(self, update_id: int) -> None:
        """Wait until the bot handled this update and sent everything it queued."""
        for _ in range(2000):
            if self.core is not None and update_id in self.core.processed:
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError(f"update {update_id} was not handled")
        await self.c.idle()

    def person(self, user_id: int, language: str | None, name: str) -> Person:
        return Person(self, user(user_id, language, name))


@dataclass
class Person:
    h: Harness
    user: dict[str, Any]

    @property
    def chat(self) -> int:
        return int(self.user["id"])

    def inbox(self) -> list[Sent]:
        return self.h.stub.to(self.chat)

    async def _send(self, update: dict[str, Any]) -> list[Sent]:
        before = len(self.inbox())
        await self.h.deliver(update)
        return self.inbox()[before:]

    async def say(self, text: str) -> list[Sent]:
        return await self._send(message_update(self.h.stub.next_update_id(), self.user, text=text))

    async def file(self, kind: str, data: bytes, caption: str | None = None) -> list[Sent]:
        file_id = self.h.stub.add_file(data, f"{kind}/f{len(self.h.stub.files)}")
        content: dict[str, Any] = {
            "photo": {"photo": [{"file_id": file_id, "file_unique_id": "x", "width": 9,
                                 "height": 9, "file_size": len(data)}]},
            "voice": {"voice": {"file_id": file_id, "file_unique_id": "x", "duration": 2,
                                "mime_type": "audio/ogg", "file_size": len(data)}},
        }[kind]
        if caption:
            content["caption"] = caption
        return await self._send(message_update(self.h.stub.next_update_id(), self.user, **content))

    def with_button(self, button_id: str) -> Sent:
        for sent in reversed(self.inbox()):
            if button_id in sent.button_ids():
                return sent
        raise AssertionError(f"no message with button {button_id!r}; shown: "
                             f"{[s.button_ids() for s in self.inbox()[-3:]]}")

    async def press(self, button_id: str) -> list[Sent]:
        return await self.press_later(self.hold(button_id))

    def hold(self, button_id: str) -> tuple[Sent, str]:
        """A button as shown now, to press later (an app that did not refresh its screen)."""
        sent = self.with_button(button_id)
        data = next(b["callback_data"] for row in sent.keyboard for b in row
                    if b["callback_data"].split("|", 1)[0] == button_id)
        return sent, data

    async def press_later(self, held: tuple[Sent, str]) -> list[Sent]:
        sent, data = held
        return await self._send(callback_update(self.h.stub.next_update_id(), self.user, sent, data))

    def last_text(self) -> str:
        return "\n".join(s.text or s.caption or "" for s in self.inbox()[-4:])


@pytest.fixture
async def stub() -> AsyncIterator[BotApiStub]:
    server = BotApiStub(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def make_harness(
    tmp_path: Path, stub: BotApiStub, smtp_server: Any, clock: Clock
) -> Callable[..., Harness]:
    config = tmp_path / "organisation.toml"
    config.write_text(ORG, encoding="utf-8")

    def make(library: str, mode: str = "polling", **overrides: Any) -> Harness:
        port = free_port()
        values: dict[str, Any] = dict(
            data_dir=tmp_path / "data", mail_from="bot@klachtwijzer.test", config=config,
            smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none",
            telegram_bot_token=TOKEN, telegram_library=library, telegram_api_base=stub.base,
            telegram_mode=mode, telegram_webhook_url=f"http://127.0.0.1:{port}/telegram-hook",
            telegram_webhook_secret=SECRET, telegram_listen_host="127.0.0.1",
            telegram_listen_port=port,
        )
        values.update(overrides)
        return Harness(stub, Settings(**values), clock)

    return make


@pytest.fixture
async def running(make_harness: Callable[..., Harness]) -> AsyncIterator[Callable[..., Any]]:
    """Start harnesses; every one started is stopped at the end."""
    started: list[Harness] = []

    async def start(library: str, mode: str = "polling", **overrides: Any) -> Harness:
        harness = make_harness(library, mode, **overrides)
        await harness.start()
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.stop()




def ar(app: App) -> Any:
    return app.catalogs.get("ar")


async def begin(client: Person, lang: str, category: str) -> None:
    """Language, then the first question: one press chooses route and category (issue 14)."""
    await client.say("/start")
    await client.press(f"lang_{lang}")
    await client.press(category)


async def arabic_confidant_request(client: Person) -> list[Sent]:
    await begin(client, "ar", "sexual_harassment")
    await client.press("talk_not_tried")
    await client.press("pref_female")
    await client.press("anonymous")
    await client.press("contact_chat")
    await client.say("مشكلة مع متطوع")
    return await client.press("confirm")


def transcript(stub: BotApiStub, chats: dict[int, str]) -> str:
    """Everything the bot sent to these chats, in order, for the report."""
    lines = []
    for sent in stub.sent:
        if sent.chat_id in chats:
            body = sent.text if sent.kind == "text" else f"[{sent.kind}] {sent.caption or ''}"
            buttons = " ".join(f"[{b['text']}]" for row in sent.keyboard for b in row)
            lines.append(f"-> {chats[sent.chat_id]}: {body} {buttons}".rstrip())
    return "\n".join(lines)


# --- the conversations, for both libraries ------------------------------------------------------


@pytest.mark.parametrize("mode", ["polling", "webhook"])
@pytest.mark.parametrize("library", LIBRARIES)
async def test_schema_b_arabic_female_confidant_relays_both_ways(
    running: Any, library: str, mode: str, smtp_server: Any
) -> None:
    """Schema B in Arabic: female confidants get the offer, the first to accept relays both ways."""
    h: Harness = await running(library, mode)
    stub, app = h.stub, h.a
    client = h.person(CLIENT, "ar", "Layla")
    first, second, man = (h.person(FEMALE_1, "nl", "Anna"), h.person(FEMALE_2, "nl", "Bea"),
                          h.person(MALE, "nl", "Carl"))
    t, nl = ar(app), app.catalogs.get("nl")

    reply = await arabic_confidant_request(client)
    assert any("\n".join([
        t._("Step {step} of {total}: a confidant.\n"
            "A confidant listens to you and helps you to find a solution. The confidant is on "
            "your side. You do not have to give your name.").format(step=2, total=4),
        t._("A confidant keeps what you say secret. There is one exception: a possible crime. "
            "The confidant must report that to the board of the organisation."),
        t._("Do you want a confidant? You may choose a woman or a man.")]) in (s.text or "")
        for s in client.inbox())
    assert any(t.ngettext(
        "We are now looking for a confidant ({preference}) who can chat with you here. Please "
        "wait. This can take up to {minutes} minute.",
        "We are now looking for a confidant ({preference}) who can chat with you here. Please "
        "wait. This can take up to {minutes} minutes.", 30).format(
        preference=t._("a woman"), minutes=30) in (s.text or "") for s in reply)
    offers = {p.chat: [s for s in p.inbox() if "ho:accept" in str(s.button_ids())]
              for p in (first, second, man)}
    assert (len(offers[FEMALE_1]), len(offers[FEMALE_2]), len(offers[MALE])) == (1, 1, 0)
    offer = offers[FEMALE_1][0].text or ""
    assert "Layla" not in offer and str(CLIENT) not in offer and "مشكلة مع متطوع" in offer

    # The client writes while waiting: kept, and passed on once a confidant accepts.
    await client.say("هل يوجد أحد؟")
    stale = first.hold(offers[FEMALE_1][0].button_ids()[0])
    accepted = await second.press(offers[FEMALE_2][0].button_ids()[0])
    assert nl._("You are now connected with {client}. What you write here goes to the client. "
                "The client sees you as: {label}.").split("{")[0] in (accepted[0].text or "")
    assert any("هل يوجد أحد؟" in (s.text or "") for s in accepted)
    await h.c.idle()
    closed = nl._("This request is no longer open. Another confidant accepted it, or the time "
                  "ran out.")
    assert (offers[FEMALE_1][0].keyboard, (offers[FEMALE_1][0].text or "").endswith(closed)) == (
        [], True)  # the other confidant's offer lost its Accept button and says why
    late = await first.press_later(stale)
    assert [s.text for s in late][-1] == nl._(
        "This request is no longer open. Another confidant accepted it, or the time ran out.")
    assert any(nl._("Another confidant accepted the request of {client}.").split("{")[0]
               in (s.text or "") for s in first.inbox())
    connected = client.inbox()[-1].text or ""
    hid = _handoff_id(client)
    assert t._("Your confidant (a woman)") in connected and "Bea" not in connected

    # Relay both ways: text, a photo and a voice note.
    await client.say("أحتاج مساعدة")
    assert second.inbox()[-1].text is not None and "أحتاج مساعدة" in second.inbox()[-1].text
    assert "Layla" not in (second.inbox()[-1].text or "")
    await second.say("Ik ben er. Wat is er gebeurd?")
    assert client.inbox()[-1].text == "\u200f" + t._("Your confidant (a woman)") + \
        ": \u2068Ik ben er. Wat is er gebeurd?\u2069"
    await client.file("photo", b"\xff\xd8PHOTO-BYTES")
    assert (second.inbox()[-1].kind, second.inbox()[-1].data) == ("photo", b"\xff\xd8PHOTO-BYTES")
    await second.file("voice", b"OggS-VOICE")
    assert (client.inbox()[-1].kind, client.inbox()[-1].data) == ("voice", b"OggS-VOICE")
    assert list((app.settings.data_dir / "files").glob("*")) == []  # relayed files are not kept

    # The confidant shares her name; the client does not.
    await second.press(f"ho:share:{hid}")
    assert "Bea" in (client.inbox()[-1].text or "")

    # The confidant ends it; the client is reminded Telegram knows both accounts, keeps the text.
    ended = await second.say("/end")
    assert nl._("You ended the conversation with {client}.").split("{")[0] in (ended[-1].text or "")
    text = client.inbox()[-1].text or ""
    assert t._("We did not show your account to the confidant. But Telegram itself still knows "
               "both accounts.") in text
    await client.press(f"ho:keep:{hid}")
    assert t._("We added the text of the conversation to your file. You can see it with "
               "/dossier and erase it with /erase.") in (client.inbox()[-1].text or "")
    async with app.db.unit_of_work(read_only=True) as uow:
        [case] = await uow.cases.for_conversation(
            (await uow.conversations.get("telegram", str(CLIENT))).id)  # type: ignore[union-attr]
    assert case.payload is not None
    [kept] = case.payload["confidant_conversations"]
    assert [(line["from"], line["kind"], line["text"]) for line in kept] == [
        ("client", "text", "هل يوجد أحد؟"),
        ("client", "text", "أحتاج مساعدة"),
        ("confidant", "text", "Ik ben er. Wat is er gebeurd?"),
        ("client", "photo", None),
        ("confidant", "voice", None),
        ("confidant", "shared", None),
    ]
    # The client sees the kept chat in their file, word for word (issue 3: nothing hidden).
    dossier = "\n".join(s.text or "" for s in await client.say("/dossier"))
    you, her = t._("You"), t._("Your confidant")
    assert "\n".join([
        t._("Your conversation with the confidant on {date}:").format(date=t.date(app.clock())),
        f"– {you}: {t.quote('هل يوجد أحد؟')}",
        f"– {you}: {t.quote('أحتاج مساعدة')}",
        f"– {her}: {t.quote('Ik ben er. Wat is er gebeurd?')}",
        f"– {you}: {t._('(a photo)')}",
        f"– {her}: {t._('(a voice message)')}",
        f"– {her}: {t._('(name shared)')}",
    ]) in dossier

    # The mail to the confidants' mailbox was sent all the same (000).
    await app.worker.run_once()
    [mail] = mails(smtp_server)
    assert mail["To"] == "vertrouwenspersonen@regioverband.nl"
    assert complaint_json(mail)["channel"] == "telegram"
    if os.environ.get("KW_TRANSCRIPT") and (library, mode) == ("ptb", "polling"):
        text = transcript(stub, {CLIENT: "client", FEMALE_1: "confidant A", FEMALE_2: "confidant B"})
        await asyncio.to_thread(Path(os.environ["KW_TRANSCRIPT"]).write_text, text, "utf-8")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_answer_to_staff_during_a_confidant_chat_goes_to_the_mailbox(
    running: Any, library: str, smtp_server: Any
) -> None:
    """While a confidant chat is open, the answer to a staff message is not relayed to the
    confidant: it goes to the case's mailbox; the next text is relayed again."""
    from bot.services import register

    h: Harness = await running(library)
    client = h.person(CLIENT, "ar", "Layla")
    confidant = h.person(FEMALE_1, "nl", "Anna")
    await arabic_confidant_request(client)
    offer = next(s for s in confidant.inbox() if "ho:accept" in str(s.button_ids()))
    await confidant.press(offer.button_ids()[0])
    async with h.a.db.unit_of_work(read_only=True) as uow:
        conversation = await uow.conversations.get("telegram", str(CLIENT))
        assert conversation is not None and conversation.id is not None
        [case] = await uow.cases.for_conversation(conversation.id)
    await register.send_message(h.a, case.reference, "Welke dag was het?")
    await h.c.idle()
    await client.press(f"rp_answer:{case.reference}")
    seen_by_confidant = len(confidant.inbox())
    await client.say("يوم الاثنين")
    await client.say("شكرا")
    relayed = [s.text or "" for s in confidant.inbox()[seen_by_confidant:]]
    assert (any("يوم الاثنين" in text for text in relayed),
            any("شكرا" in text for text in relayed)) == (False, True)
    await h.a.worker.run_once()
    answers = [m for m in mails(smtp_server) if m["Subject"].endswith("Antwoord van de klager")]
    assert [m["To"] for m in answers] == ["vertrouwenspersonen@regioverband.nl"]


def _handoff_id(person: Person) -> int:
    for sent in reversed(person.inbox()):
        for button_id in sent.button_ids():
            if button_id.startswith("ho:"):
                return int(button_id.rsplit(":", 1)[1])
    raise AssertionError("no handoff button")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_schema_a_ukrainian_complaint_with_photo(
    running: Any, library: str, smtp_server: Any
) -> None:
    """Schema A in Ukrainian with a photo and its caption: the photo reaches the mail as an attachment."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "uk", "Olena")
    await begin(client, "uk", "help")
    await client.press("skip_to_complaint")
    await client.say("Олена Петренко")
    await client.say("Ян")
    reply = await client.file("photo", b"\xff\xd8\xff\xe0JPEGDATA", caption="Волонтер кричав на мене.")
    uk = h.a.catalogs.get("uk")
    # Issue 14.10: the caption travels with the photo and answers "What happened?", said plainly.
    [added] = [s.text for s in reply if s.text and uk._("We added your photo.") in s.text]
    assert uk._("We read the text you sent with it as your answer.") in added
    await client.say("10-11-2026")
    await client.say("Нічого")
    await client.press("contact_chat")
    await client.press("confirm")
    assert "KW-2026-" in client.last_text()
    await h.a.worker.run_once()
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert (doc["kind"], doc["schema"], doc["language"], doc["channel"]) == (
        "complaint", "A", "uk", "telegram")
    assert doc["description"] == "Волонтер кричав на мене."
    assert [(a["kind"], a["size"], a["content_type"]) for a in doc["attachments"]] == [
        ("photo", 12, "image/jpeg")]
    photos = [p.get_content() for p in mail.iter_attachments() if p.get_content_type() == "image/jpeg"]
    assert photos == [b"\xff\xd8\xff\xe0JPEGDATA"]
    stored = list((h.a.settings.data_dir / "files").iterdir())
    assert len(stored) == 1 and b"JPEGDATA" not in stored[0].read_bytes()  # encrypted at rest


@pytest.mark.parametrize("library", LIBRARIES)
async def test_redelivered_update_has_one_effect(running: Any, library: str) -> None:
    """The same update delivered twice (same update_id) is handled once."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "en", "Sam")
    await client.say("/start")
    sent = client.with_button("lang_en")
    data = next(b["callback_data"] for row in sent.keyboard for b in row
                if b["callback_data"].startswith("lang_en|"))
    update = callback_update(h.stub.next_update_id(), client.user, sent, data)
    await h.deliver(update)
    count = len(client.inbox())
    await h.deliver(update, again=True)
    assert len(client.inbox()) == count
    async with h.a.db.unit_of_work(read_only=True) as uow:
        stored = await uow.conversations.get("telegram", str(CLIENT))
    assert stored is not None and stored.state == "triage"
    assert h.stub.methods().count("answerCallbackQuery") == 2  # the spinner stops both times


@pytest.mark.parametrize("library", LIBRARIES)
async def test_forged_and_foreign_callbacks_are_refused(running: Any, library: str) -> None:
    """A forged or another chat's callback gets a polite answer and changes nothing."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "uk", "Olena")
    await client.say("/start")
    before = len(h.stub.sent)
    uk = h.a.catalogs.get("uk")
    refusal = uk._("This button is no longer valid. Please use the buttons below.")
    forged = callback_update(h.stub.next_update_id(), client.user, None, "lang_uk||AAAAAAAAAAA")
    await h.deliver(forged)
    other = CallbackCodec(TOKEN, []).encode(STRANGER, "lang_uk", "language")
    await h.deliver(callback_update(h.stub.next_update_id(), client.user, None, other))
    answers = [c.params.get("text") for c in h.stub.calls if c.method == "answerCallbackQuery"]
    assert answers == [refusal, refusal]
    assert len(h.stub.sent) == before
    async with h.a.db.unit_of_work(read_only=True) as uow:
        stored = await uow.conversations.get("telegram", str(CLIENT))
    assert stored is not None and stored.state == "language"


@pytest.mark.parametrize("library", LIBRARIES)
async def test_stale_button_is_refused_and_pressed_buttons_are_marked(running: Any, library: str) -> None:
    """A pressed keyboard is replaced by '✓ label'; an older question's button is refused politely."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "en", "Sam")
    await client.say("/start")
    picker = client.with_button("lang_en")
    old = next(b["callback_data"] for row in picker.keyboard for b in row
               if b["callback_data"].startswith("lang_nl|"))
    await client.press("lang_en")
    assert picker.keyboard == [] and (picker.text or "").endswith("\n\n✓ English")
    reply = await client._send(callback_update(h.stub.next_update_id(), client.user, None, old))
    assert reply[0].text == "This button is no longer valid. Please use the buttons below."
    async with h.a.db.unit_of_work(read_only=True) as uow:
        stored = await uow.conversations.get("telegram", str(CLIENT))
    assert stored is not None and (stored.state, stored.language) == ("triage", "en")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_429_retry_after_is_waited_out(running: Any, library: str) -> None:
    """A 429 answer with retry_after is waited out and the message is sent after all."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "en", "Sam")
    h.stub.fail("sendMessage", retry_after=3)
    reply = await client.say("/start")
    assert [s.button_ids()[:1] for s in reply] == [["lang_nl"]]
    assert h.c.pacer.retry_waits == [3]
    assert h.stub.methods().count("sendMessage") == 2  # refused once, then sent


@pytest.mark.parametrize("library", LIBRARIES)
async def test_staff_commands(running: Any, library: str) -> None:
    """A stranger's /signals is refused and audited; a coordinator gets an anonymised CSV and counts."""
    h: Harness = await running(library)
    stranger = h.person(STRANGER, "ar", "X")
    reply = await stranger.say("/signals")
    assert [s.text for s in reply] == ["\u200f" + ar(h.a)._(
        "This command is only for staff of the organisation.")]
    async with h.a.db.unit_of_work(read_only=True) as uow:
        entries = await uow.audit.list()
    assert [(e.actor, e.action, e.detail) for e in entries[:1]] == [
        (f"telegram:{STRANGER}", "staff_command_refused", "signals")]

    client = h.person(CLIENT, "uk", "Olena")
    await begin(client, "uk", "bullying")
    await client.press("talk_not_tried")
    await client.press("pref_male")
    await client.say("Олена")
    await client.press("contact_phone")
    await client.say("+31 6 12345678")
    await client.press("skip")
    await client.press("confirm")

    coordinator = h.person(COORDINATOR, "nl", "Coby")
    [document] = await coordinator.say("/signals")
    rows = list(csv.reader(io.StringIO(document.data.decode("utf-8-sig"))))
    assert rows[0] == ["reference", "kind", "schema", "language", "channel", "month", "status"]
    assert [r[1:] for r in rows[1:]] == [
        ["confidant_request", "B", "uk", "telegram", "2026-11", "received"]]
    assert b"Olena" not in document.data and str(CLIENT).encode() not in document.data
    [stats] = await coordinator.say("/stats")
    assert "confidant_request: 1" in (stats.text or "")
    assert h.stub.to(MALE) == []  # contact by phone: no live chat offered


@pytest.mark.parametrize("library", LIBRARIES)
async def test_restart_in_the_middle_resumes(running: Any, library: str) -> None:
    """The process stops halfway through a complaint; after a restart the conversation goes on."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "en", "Sam")
    await begin(client, "en", "help")
    await client.press("skip_to_complaint")
    await h.stop()
    await h.start()
    reply = await client.say("Sam Jansen")
    assert reply[-1].text == "Who is it about? Write the name of the volunteer or staff member. " \
                             "More than one person? Write all names."
    back = await client.say("/start")
    assert back[0].text == "Welcome back. This is where you were:"


@pytest.mark.parametrize("library", LIBRARIES)
async def test_webhook_refuses_wrong_or_missing_secret(running: Any, library: str) -> None:
    """Webhook mode: the secret token is set with setWebhook; requests without it change nothing."""
    h: Harness = await running(library, "webhook")
    [hook] = [c for c in h.stub.calls if c.method == "setWebhook"]
    assert (hook.params["url"], hook.params["secret_token"]) == (
        str(h.settings.telegram_webhook_url), SECRET)
    update = message_update(h.stub.next_update_id(), user(CLIENT, "en", "Sam"), text="/start")
    statuses = [await h.post(update, secret="wrong"), await h.post(update, secret=None)]
    assert all(status in (401, 403) for status in statuses)
    await asyncio.sleep(0.05)
    assert h.c.processed == type(h.c.processed)() and h.stub.to(CLIENT) == []
    assert await h.post(update) == 200
    await h.settle(update["update_id"])
    assert len(h.stub.to(CLIENT)) == 1


@pytest.mark.parametrize("library", LIBRARIES)
async def test_command_menu_per_language(running: Any, library: str) -> None:
    """setMyCommands is set for nl, uk, ar, en (and the default) with translated descriptions."""
    h: Harness = await running(library)
    calls = [c for c in h.stub.calls if c.method == "setMyCommands" and "scope" not in c.params]
    by_language = {c.params.get("language_code"): c.params["commands"] for c in calls}
    assert sorted(by_language, key=str) == sorted(["nl", "uk", "ar", "en", None], key=str)
    for language in ("nl", "uk", "ar", "en"):
        t = h.a.catalogs.get(language)
        assert [(c["command"], c["description"]) for c in by_language[language]] == [
            ("start", t._("Start or continue")), ("help", t._("Help")),
            ("language", t._("Language")), ("dossier", t._("My file")),
            ("withdraw", t._("Withdraw")), ("erase", t._("Erase my data"))]


@pytest.mark.parametrize("library", LIBRARIES)
async def test_staff_get_their_own_command_menu(running: Any, library: str) -> None:
    """Confidants and coordinators get their own translated menu in their private chat only."""
    h: Harness = await running(library)
    scoped: dict[tuple[int, str | None], list[tuple[str, str]]] = {}
    for call in h.stub.calls:
        if call.method == "setMyCommands" and "scope" in call.params:
            assert call.params["scope"]["type"] == "chat"
            key = (call.params["scope"]["chat_id"], call.params.get("language_code"))
            scoped[key] = [(c["command"], c["description"]) for c in call.params["commands"]]
    assert sorted({chat for chat, _ in scoped}) == sorted([FEMALE_1, FEMALE_2, MALE, COORDINATOR])
    assert sorted({language for _, language in scoped}, key=str) == sorted(
        ["nl", "uk", "ar", "en", None], key=str)
    for language in ("nl", "uk", "ar", "en", None):
        st = h.a.catalogs.get(language or "nl")
        assert (scoped[(MALE, language)], scoped[(COORDINATOR, language)]) == (
            [("end", st._("End the conversation")), ("help", st._("Help"))],
            [("signals", st._("Download the anonymised signals (CSV)")),
             ("stats", st._("Signal counts"))])


@pytest.mark.parametrize("library", LIBRARIES)
async def test_staff_menu_for_someone_who_never_opened_the_bot_does_not_stop_it(
    make_harness: Callable[..., Harness], library: str
) -> None:
    """A confidant who never opened the bot ("chat not found") gets no menu; the bot runs on."""
    h = make_harness(library, "polling")
    h.stub.unknown_chats.add(FEMALE_1)
    await h.start()
    try:
        client = h.person(CLIENT, "en", "Sara")
        reply = await client.say("/start")
        chats = {c.params["scope"]["chat_id"] for c in h.stub.calls
                 if c.method == "setMyCommands" and "scope" in c.params}
        assert (len(reply) > 0, sorted(chats)) == (True, sorted([FEMALE_1, FEMALE_2, MALE, COORDINATOR]))
    finally:
        await h.stop()


@pytest.mark.parametrize("library", LIBRARIES)
async def test_handoff_timeout_tells_the_client(running: Any, library: str, smtp_server: Any,
                                                clock: Clock) -> None:
    """Nobody accepts in time: the client is told, the confidants too, and the mail stands."""
    h: Harness = await running(library)
    client = h.person(CLIENT, "ar", "Layla")
    await arabic_confidant_request(client)
    await client.say("مرحبا")
    clock.advance(minutes=31)
    await h.c.expire_handoffs()
    await h.c.idle()
    t = ar(h.a)
    text = client.inbox()[-1].text or ""
    assert t._("No confidant was free to chat with you now. Your request was already sent by "
               "e-mail. A confidant will contact you.") in text
    assert "ho:retry" in client.inbox()[-1].button_ids()[0]
    nl = h.a.catalogs.get("nl")
    for chat in (FEMALE_1, FEMALE_2):
        assert nl._("The request of {client} is no longer open.").split("{")[0] in (
            h.stub.to(chat)[-1].text or "")
    late = await h.person(FEMALE_1, "nl", "Anna").press(
        h.stub.to(FEMALE_1)[0].button_ids()[0])
    assert late[-1].text == nl._(
        "This request is no longer open. Another confidant accepted it, or the time ran out.")
    await h.a.worker.run_once()
    assert len(mails(smtp_server)) == 1


@pytest.mark.parametrize("library", LIBRARIES)
async def test_flood_limit_and_big_file(running: Any, library: str) -> None:
    """Too many messages at once get one translated notice; a file over the limit is refused."""
    options = TelegramOptions(**{**FAST.__dict__, "flood_max": 3})
    h: Harness = await running(library, max_attachment_bytes=100_000)
    h.c.flood.limit = options.flood_max
    client = h.person(CLIENT, "uk", "Olena")
    await client.say("/start")
    big = await client.file("photo", b"x" * 100_001)
    uk = h.a.catalogs.get("uk")
    assert [s.text for s in big] == [uk._(  # the configured limit, in Ukrainian number format
        "This file is too big. The limit is {size} MB. Please send a smaller file.").format(
            size="0,1")]
    await client.say("1")
    flood = await client.say("2")
    assert [s.text for s in flood] == [uk._(
        "You sent many messages very quickly. I could not read the last ones. Please wait a "
        "minute, then send them again.")]
    assert await client.say("3") == []
    assert list((h.a.settings.data_dir / "files").glob("*")) == []


@pytest.mark.parametrize("library", LIBRARIES)
async def test_same_update_ten_times_is_no_flood(running: Any, library: str) -> None:
    """The same update delivered 10 times (flood limit 3) gets one reply and no flood notice."""
    h: Harness = await running(library)
    h.c.flood.limit = 3
    client = h.person(CLIENT, "en", "Sam")
    await client.say("/start")
    before = len(client.inbox())
    update = message_update(h.stub.next_update_id(), client.user, text="/help")
    await h.deliver(update)
    reply = [s.text for s in client.inbox()[before:]]
    for _ in range(9):
        await h.deliver(update, again=True)
    texts = [s.text or "" for s in client.inbox()[before:]]
    assert texts == reply and not any("many messages" in t for t in texts)
    assert "many messages" not in (await client.say("/help"))[0].text  # still below the limit


@pytest.mark.parametrize("library", LIBRARIES)
async def test_debug_logging_holds_no_personal_data(running: Any, library: str) -> None:
    """At DEBUG (configure_logging), no record of any logger holds the client's name or story."""
    from bot.root.app import configure_logging

    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level
                          for name in logging.root.manager.loggerDict})
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    try:
        configure_logging("DEBUG")
        root.addHandler(handler)
        h: Harness = await running(library)
        client = h.person(CLIENT, "en", "Zebulon Quackenbush")
        await begin(client, "en", "help")
        await client.press("skip_to_complaint")
        await client.say("Zebulon Quackenbush")
        await client.press("staff_unknown")
        await client.say("The parrot story of Wobbleton happened at the desk.")
        await h.c.idle()
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)
    assert records  # the handler at DEBUG saw the run
    leaked = [r.name for r in records
              if "Quackenbush" in _record_text(r) or "Wobbleton" in _record_text(r)]
    assert leaked == []


def _record_text(record: logging.LogRecord) -> str:
    try:
        return f"{record.getMessage()} {record.exc_text or ''} {record.__dict__}"
    except Exception:  # a record whose arguments do not format: look at its parts
        return f"{record.msg} {record.args} {record.__dict__}"


@pytest.mark.parametrize("library", LIBRARIES)
async def test_token_and_ids_never_logged(running: Any, library: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """At INFO, no log line holds the bot token, a chat id or the client's words."""
    caplog.set_level(logging.INFO)
    h: Harness = await running(library)
    client = h.person(CLIENT, "en", "Sam")
    await begin(client, "en", "help")
    await client.say("/signals")
    text = caplog.text
    assert (TOKEN in text, str(CLIENT) in text, "Sam" in text) == (False, False, False)


# --- the parts, without a library ---------------------------------------------------------------


async def test_first_to_accept_wins_under_concurrency(
    app_factory: Any, settings_for: Any, clock: Clock
) -> None:
    """Eight confidants claim one offer at the same moment: exactly one claim succeeds."""
    app: App = await app_factory(settings_for())
    async with app.db.unit_of_work() as uow:
        from storage import StoredConversation

        conv = await uow.conversations.save(
            StoredConversation(channel="telegram", chat_id="1", state="done"))
        assert conv.id is not None
        rec = await uow.handoffs.add(HandoffRecord(
            conversation_id=conv.id, preference="none", data={"pseudonym": "K7QM"},
            created_at=clock(), expires_at=clock()))
        await uow.commit()
    assert rec.id is not None
    handoff_id: int = rec.id

    async def claim(confidant: int) -> bool:
        async with app.db.unit_of_work() as uow:
            won = await uow.handoffs.claim(handoff_id, confidant, clock())
            await asyncio.sleep(0.01)  # hold the transaction open a little
            await uow.commit()
            return won

    results = await asyncio.gather(*(claim(600 + n) for n in range(8)))
    async with app.db.unit_of_work(read_only=True) as uow:
        stored = await uow.handoffs.get(handoff_id)
    assert sorted(results) == [False] * 7 + [True]
    assert stored is not None and stored.confidant_id == 600 + results.index(True)


def test_callback_data_fits_in_64_bytes() -> None:
    """The longest button ids with the longest state name fit Telegram's 64 bytes, and decode."""
    codec = CallbackCodec(TOKEN, ["confidant_request_description_optional"])
    for button_id in ("edit_representative_relation", "wd_KW-2026-000123", "ho:accept:999999999999"):
        data = codec.encode(-1001234567890, button_id, "confidant_request_description_optional")
        assert len(data.encode()) <= 64
        assert codec.decode(-1001234567890, data) == (button_id,
                                                      "confidant_request_description_optional")
    assert state_code("summary") != state_code("edit")



@pytest.mark.parametrize("library", LIBRARIES)
async def test_sixty_messages_in_ten_seconds_are_throttled(running: Any, library: str) -> None:
    """60 messages from one client in a burst: the first 20 (the production limit) are answered,
    then one translated notice, then nothing more, and nothing crashes."""
    h: Harness = await running(library)
    h.c.flood.limit = TelegramOptions().flood_max
    client = h.person(CLIENT, "en", "Sam")
    answers = [await client.say("/help") for _ in range(60)]
    en = h.a.catalogs.get("en")
    notice = en._("You sent many messages very quickly. I could not read the last ones. Please wait "
                  "a minute, then send them again.")
    assert [len(a) > 0 for a in answers] == [True] * 21 + [False] * 39
    assert [s.text for s in answers[20]] == [notice]
    assert all(notice not in (s.text or "") for a in answers[:20] for s in a)


HOSTILE_NAMES = ["../../x", "/etc/passwd", "n" * 300 + ".pdf", "x\u202efdp.exe", "a\x00b.pdf"]


@pytest.mark.parametrize("library", LIBRARIES)
async def test_hostile_file_names_never_choose_where_files_land(
    running: Any, library: str, smtp_server: Any, tmp_path: Path
) -> None:
    """Documents named `../../x`, `/etc/passwd`, 300 bytes or `x<RLO>fdp.exe` are stored under random
    names in the data dir only, and reach the mail as bijlage-N with a safe extension."""
    h: Harness = await running(library)
    before = {p for p in tmp_path.rglob("*") if "files" not in p.parts}
    client = h.person(CLIENT, "en", "Sam")
    await begin(client, "en", "help")
    await client.press("skip_to_complaint")
    await client.say("Sam")
    await client.say("Jan")
    for number, name in enumerate(HOSTILE_NAMES):
        file_id = h.stub.add_file(b"%PDF-" + bytes([number]), f"documents/file_{number}")
        document = {"file_id": file_id, "file_unique_id": f"u{number}", "file_name": name,
                    "mime_type": "application/x-msdownload" if name.endswith(".exe")
                    else "application/pdf", "file_size": 6}
        await client._send(message_update(h.stub.next_update_id(), client.user, document=document))
    await client.say("It happened.")
    for button in ("when_unknown", "tried_nothing", "contact_chat", "confirm"):
        await client.press(button)
    await h.a.worker.run_once()

    stored = sorted(p.name for p in (h.a.settings.data_dir / "files").iterdir())
    assert [len(n) for n in stored] == [32] * len(HOSTILE_NAMES)
    after = {p for p in tmp_path.rglob("*") if "files" not in p.parts}
    assert {p for p in after - before if not str(p).startswith(str(h.a.settings.data_dir))} == set()
    [mail] = mails(smtp_server)
    names = [p.get_filename() for p in mail.iter_attachments()]
    assert names == ["complaint.json", "bijlage-1.pdf", "bijlage-2.pdf", "bijlage-3.pdf",
                     "bijlage-4.bin", "bijlage-5.pdf"]  # the .exe is never named as one
