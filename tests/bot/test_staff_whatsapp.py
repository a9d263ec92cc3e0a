"""Coordinators' /signals and /stats on WhatsApp: real HTTP to the webhook, the Graph API stand-in
(the CSV is uploaded through its media endpoint), the real staff service and SQLite file; and the
`[[coordinators]]` config with WhatsApp numbers."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.whatsapp import run_whatsapp
from bot.root.app import App
from bot.services.organisation import ConfigError, load_organisation
from bot.services.staff import SIGNAL_FIELDS, StaffService, coordinator_addresses, stats_text
from tests.bot.graph_stub import GraphStub
from tests.bot.register_helpers import file_complaint
from tests.bot.whatsapp_helpers import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    Meta,
    Phone,
    free_port,
)

COORDINATOR = "31699990000"
CONFIDANT = "31633334444"
STRANGER = "31655556666"
CLIENT = "31611112222"
ORG = """
name = "Steunpunt Test"

[[confidants]]
gender = "female"
whatsapp = "+31 6 3333 4444"

[[coordinators]]
whatsapp = "+31 6 9999 0000"

[[coordinators]]
telegram = 900
"""
REFUSAL = "This command is only for staff of the organisation."


@pytest.fixture
async def meta(app_factory: Any, settings_for: Any, smtp_server: Any, graph: GraphStub,
               tmp_path: Path) -> AsyncIterator[Meta]:
    """The app with a WhatsApp coordinator and confidant, running `run_whatsapp` (the real entry)."""
    config = tmp_path / "organisation.toml"
    config.write_text(ORG, encoding="utf-8")
    settings = settings_for(
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none", config=config,
        whatsapp_token=TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=graph.base, whatsapp_listen_port=free_port())
    app: App = await app_factory(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_whatsapp(app, stop))
    async with aiohttp.ClientSession() as session:
        running = Meta(app, graph, f"http://127.0.0.1:{app.settings.whatsapp_listen_port}/webhook",
                       session, stop, task)
        for _ in range(500):  # until the listener answers
            assert not task.done(), task.exception()
            try:
                await running.verify()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
        yield running
        stop.set()
        await task


async def staff_audit(app: App) -> list[tuple[str, str, str | None]]:
    async with app.db.unit_of_work(read_only=True) as uow:
        entries = await uow.audit.list()
    return [(e.actor, e.action, e.detail) for e in entries if e.action.startswith("staff")]


async def conversation_of(app: App, wa_id: str) -> Any:
    async with app.db.unit_of_work(read_only=True) as uow:
        return await uow.conversations.get("whatsapp", wa_id)


async def test_coordinator_gets_stats_text_and_signals_csv(meta: Meta, graph: GraphStub) -> None:
    """The coordinator's number (written with + and spaces in the config) gets the counts as text
    and the anonymised CSV uploaded through the media endpoint, sent as a document with caption."""
    app = meta.app
    assert ("whatsapp", COORDINATOR) in coordinator_addresses(app.organisation)
    await file_complaint(app, "chat-1")  # Sara Haddad's complaint, on the terminal
    phone = Phone(meta, wa_id=COORDINATOR)

    [stats] = await phone.type("/stats")
    assert stats["type"] == "text"
    nl = app.catalogs.get("nl")  # no language known: the organisation's own
    today = app.clock().date()
    counted = await StaffService(app).signal_rows("/stats")
    assert len(counted) == 1
    assert stats["text"]["body"] == stats_text(nl, counted, today)

    [document] = await phone.type("/Signals")
    assert document["type"] == "document"
    sent = document["document"]
    assert sent["filename"] == f"signals-{today.isoformat()}.csv"
    assert sent["caption"] == nl.ngettext("{count} signal, anonymised.",
                                          "{count} signals, anonymised.", 1).format(count=1)
    assert graph.uploaded == [sent["id"]]
    upload = graph.upload_of(document)
    assert upload.mime_type == "text/plain"  # WhatsApp takes no text/csv; the name says .csv
    assert b"Sara Haddad" not in upload.data and b"Jan de Vries" not in upload.data
    parsed = list(csv.reader(io.StringIO(upload.data.decode("utf-8-sig"))))
    assert parsed[0] == list(SIGNAL_FIELDS) and len(parsed) == 2
    assert parsed[1][0].startswith("KW-")

    [empty] = await phone.type("/signals 2000-01-01 2000-12-31")  # a period without signals
    only_header = graph.upload_of(empty).data.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(only_header))) == [list(SIGNAL_FIELDS)]

    # No conversation was opened for the coordinator; each use is audited by address.
    assert await conversation_of(app, COORDINATOR) is None
    assert sorted(await staff_audit(app)) == [
        (f"whatsapp:{COORDINATOR}", "staff_signals", "signals"),
        (f"whatsapp:{COORDINATOR}", "staff_signals", "signals"),
        (f"whatsapp:{COORDINATOR}", "staff_stats", "stats")]


async def test_stranger_is_refused_and_audited_once(meta: Meta, graph: GraphStub) -> None:
    """A number that is not a coordinator's gets the refusal (English: no conversation, no
    language), no document, nothing uploaded; the same message delivered again does nothing."""
    app = meta.app
    message = {"from": STRANGER, "id": "wamid.stranger-signals-1", "timestamp": "1795339800",
               "type": "text", "text": {"body": "/signals 2026-01-01 2026-12-31"}}
    payload = Meta.payload({"contacts": [{"profile": {"name": "X"}, "wa_id": STRANGER}],
                            "messages": [message]})
    await meta.deliver(payload)
    meta.channel._recent.clear()  # as after a restart: only the database knows it was handled
    await meta.deliver(payload)
    sent = graph.messages_to(STRANGER)
    assert [m["type"] for m in sent] == ["text"]
    assert sent[0]["text"]["body"] == REFUSAL
    assert graph.uploaded == []
    assert await conversation_of(app, STRANGER) is None
    assert await staff_audit(app) == [(f"whatsapp:{STRANGER}", "staff_command_refused",
                                       "signals")]


async def test_client_and_confidant_typing_stats_are_refused(meta: Meta, graph: GraphStub) -> None:
    """A client typing /stats in their conversation gets the refusal in their language and nothing
    of the counts; their conversation stays where it was. A confidant who is no coordinator too."""
    app = meta.app
    await file_complaint(app, "chat-1")
    client = Phone(meta, wa_id=CLIENT)
    await client.type("Hallo")
    await client.press("lang_nl")
    before = await conversation_of(app, CLIENT)
    replies = await client.type("/stats")
    nl = app.catalogs.get("nl")
    assert [m["type"] for m in replies] == ["text"]
    assert replies[0]["text"]["body"] == nl._(REFUSAL)
    after = await conversation_of(app, CLIENT)
    assert (after.state, after.language) == (before.state, before.language)
    assert "KW-" not in client.text() and "1" not in client.text()
    assert graph.uploaded == []

    confidant = Phone(meta, wa_id=CONFIDANT)
    [refused] = await confidant.type("/signals")
    assert refused["text"]["body"] == REFUSAL
    assert graph.uploaded == []
    assert sorted(await staff_audit(app)) == [
        (f"whatsapp:{CLIENT}", "staff_command_refused", "stats"),
        (f"whatsapp:{CONFIDANT}", "staff_command_refused", "signals")]


# --- the config -------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "organisation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_coordinators_by_telegram_id_and_whatsapp_number(tmp_path: Path) -> None:
    """Numbers are kept as digits (like confidants'); both kinds are addresses; the old form works."""
    organisation = load_organisation(write(tmp_path, """
[telegram]
coordinators = [800]

[[coordinators]]
telegram = 900
whatsapp = "+31 6 1234 5678"

[[coordinators]]
whatsapp = "31687654321"
"""))
    assert organisation.coordinators == (800, 900)
    assert organisation.coordinator_numbers == ("31612345678", "31687654321")
    assert coordinator_addresses(organisation) == {
        ("telegram", "800"), ("telegram", "900"),
        ("whatsapp", "31612345678"), ("whatsapp", "31687654321")}


@pytest.mark.parametrize(("entry", "says"), [
    ("[[coordinators]]\n", "needs telegram = <user id> and/or whatsapp"),
    ('[[coordinators]]\nwhatsapp = "06-1234"\n', "whatsapp must be a phone number"),
    ('[[coordinators]]\nwhatsapp = "+31 6 12"\n', "whatsapp must be a phone number"),
    ('[[coordinators]]\ntelegram = "@anna"\n', "telegram must be a numeric user id"),
    ("[[coordinators]]\ntelegram = true\n", "telegram must be a numeric user id"),
    ("coordinators = [900]\n", "must be a table"),
    ("[telegram]\ncoordinators = [\"@anna\"]\n", "telegram.coordinators must be numeric"),
])
def test_config_errors_are_one_clear_line(tmp_path: Path, entry: str, says: str) -> None:
    path = write(tmp_path, entry)
    with pytest.raises(ConfigError) as raised:
        load_organisation(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(path)) and says in message
