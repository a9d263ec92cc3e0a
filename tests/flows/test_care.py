"""Issue 14.9 and 14.10: what a person typed or chose is handled with care.

After /erase the messenger's language still leads the way; a photo never replaces the typed story;
a story over the length limit is kept, in parts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from flows import rules
from flows.engine import Engine
from flows.i18n import Catalogs
from flows.model import (
    Attachment,
    Choice,
    Command,
    DossierLoaded,
    Event,
    Start,
    Text,
)
from tests.flows import helpers

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
# A formal complaint up to "What happened?" (001 art. 12: the description is required).
TO_DESCRIPTION: list[Event] = [
    Start("en"), Choice("lang_en"), Choice("help"), Choice("talk_not_helped"),
    Choice("request_no"), Text("Omar"), Text("Jan"),
]


# Every step of these tests happens at NOW.
run = partial(helpers.run, now=NOW)


def photo(caption: str | None = None) -> Attachment:
    return Attachment("photo", "ref-1", 1000, "image/jpeg", caption=caption)


# --- 14.9: after /erase -----------------------------------------------------------------------


def test_after_erase_the_picker_follows_the_messenger_language(engine: Engine,
                                                                catalogs: Catalogs) -> None:
    """After /erase the next message is answered in the messenger's language, preselected."""
    conv = run(engine, [Start("uk"), Choice("lang_en"), Choice("help")]).conversation
    erased = run(engine, [Command("erase"), Choice("yes")], conv).conversation
    message = engine.step(erased, Text("hello"), NOW).messages[-1]
    uk = catalogs.get("uk")
    assert message.text == uk._("Choose your language.")
    labels = [b.label for row in message.buttons for b in row]
    assert "✓ Українська" in labels and "English" in labels


def test_dossier_after_erase_names_no_language(engine: Engine, catalogs: Catalogs) -> None:
    """/dossier after /erase names no language: none is stored any more."""
    conv = run(engine, [Start("uk"), Choice("lang_en"), Command("erase"), Choice("yes")]).conversation
    shown = engine.step(conv, DossierLoaded(()), NOW).messages[0].text
    for lang in ("nl", "uk", "ar", "en"):
        assert catalogs.get(lang)._("Language: {language}").split(":")[0] not in shown
    chosen = run(engine, [Start("uk"), Choice("lang_en")]).conversation
    assert "Language: English" in engine.step(chosen, DossierLoaded(()), NOW).messages[0].text


# --- 14.10 (a): a file never replaces the typed answer ------------------------------------------


def test_photo_alone_does_not_answer_what_happened(engine: Engine, catalogs: Catalogs) -> None:
    """A photo at "What happened?" is added; the question stays and the bot asks for words."""
    conv = run(engine, TO_DESCRIPTION).conversation
    assert conv.state == "complaint_description"
    result = engine.step(conv, photo(), NOW)
    en = catalogs.get("en")
    assert result.conversation.state == "complaint_description"
    assert "description" not in result.conversation.data["answers"]
    assert en._("We added your photo.") in result.messages[0].text
    assert en._("Please also type in words what happened.") in result.messages[0].text


def test_caption_at_a_text_question_counts_as_typed(engine: Engine) -> None:
    """A caption at a question that takes text is the typed answer; the photo is added too."""
    conv = run(engine, TO_DESCRIPTION).conversation
    result = engine.step(conv, photo("He shouted at me."), NOW)
    assert result.conversation.data["answers"]["description"] == "He shouted at me."
    assert result.conversation.data["attachments"][0]["ref"] == "ref-1"
    assert result.conversation.state == "complaint_when"


def test_caption_at_a_button_question_never_presses_a_button(engine: Engine) -> None:
    """At a question with buttons only, a caption ("1") is not taken as pressing a button."""
    conv = run(engine, [*TO_DESCRIPTION, Text("x"), Text("yesterday"), Text("nothing")]).conversation
    assert conv.state == "complaint_contact"
    result = engine.step(conv, photo("1"), NOW)
    assert result.conversation.state == "complaint_contact"
    assert "contact" not in result.conversation.data["answers"]


# --- 14.10 (b): a long story is kept, in parts ----------------------------------------------------


def test_long_story_is_kept_and_more_can_follow(engine: Engine, catalogs: Catalogs) -> None:
    """A story over the limit is kept whole; more parts follow until "Done"; they are joined."""
    en = catalogs.get("en")
    conv = run(engine, TO_DESCRIPTION).conversation
    first = "word " * (rules.MAX_LONG_TEXT // 5 + 10)
    kept = engine.step(conv, Text(first), NOW)
    assert kept.messages[0].text == en._("Your text is long. We kept all of it.")
    assert kept.conversation.state == "complaint_description"
    assert kept.messages[-1].button_ids() == ["parts_done"]
    more = engine.step(kept.conversation, Text("And then he left."), NOW)
    assert more.messages[0].text == en._("We added this to your text.")
    done = engine.step(more.conversation, Choice("parts_done"), NOW).conversation
    assert done.state == "complaint_when"
    assert done.data["answers"]["description"] == first + "\n\nAnd then he left."
    assert "parts" not in done.data


def test_story_beyond_all_parts_says_where_it_was_cut(engine: Engine) -> None:
    """Only beyond the total limit is a story cut, and the client is told its last kept words."""
    conv = run(engine, TO_DESCRIPTION).conversation
    result = engine.step(conv, Text("word " * (rules.MAX_PARTS_TEXT // 5 + 100)), NOW)
    kept = result.conversation.data["answers"]["description"]
    assert len(kept) <= rules.MAX_PARTS_TEXT and kept.endswith("word")
    assert rules.last_words(kept) in result.messages[0].text


def test_short_field_still_refuses_a_too_long_text(engine: Engine) -> None:
    """A name over its limit is refused as before: a name is not a story."""
    conv = run(engine, TO_DESCRIPTION[:5]).conversation
    result = engine.step(conv, Text("x" * (rules.MAX_SHORT_TEXT + 1)), NOW)
    assert result.conversation == conv
