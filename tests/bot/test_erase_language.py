"""Issue 14.9: after /erase nothing is kept, and the next message is still in the client's language."""

from __future__ import annotations

from typing import Any

from bot.root.app import App
from flows.model import Choice, Command, Start, Text


async def test_after_erase_the_next_message_is_in_the_messengers_language(app: App) -> None:
    """Erase stores nothing; the next message (with the messenger's code) gets the Ukrainian picker."""
    service = app.service
    await service.handle("telegram", "77", Start("uk-UA"), hint="uk-UA")
    await service.handle("telegram", "77", Choice("lang_uk"))
    await service.handle("telegram", "77", Command("erase"))
    reply = await service.handle("telegram", "77", Choice("yes"))
    assert reply.messages  # the erase is confirmed to the client
    async with app.db.unit_of_work(read_only=True) as uow:
        assert await uow.conversations.get("telegram", "77") is None  # nothing kept
    after = await service.handle("telegram", "77", Text("привіт"), hint="uk-UA")
    uk = app.catalogs.get("uk")
    text = "\n".join(m.text for m in after.messages)
    assert uk._("Choose your language.") in text
    labels = [b.label for m in after.messages for row in m.buttons for b in row]
    assert "✓ Українська" in labels
    async with app.db.unit_of_work(read_only=True) as uow:
        stored: Any = await uow.conversations.get("telegram", "77")
    assert stored.language is None  # only the picker: no language is stored until chosen


async def test_without_a_hint_a_new_chat_asks_in_all_languages(app: App) -> None:
    """A channel that knows no language (WhatsApp, the terminal) still gets the four-language picker."""
    after = await app.service.handle("whatsapp", "3161234", Text("hello"))
    text = "\n".join(m.text for m in after.messages)
    for lang in ("nl", "uk", "ar", "en"):
        assert app.catalogs.get(lang)._("Choose your language.") in text
