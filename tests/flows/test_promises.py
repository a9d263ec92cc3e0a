"""Issue 14, points 1 and 2: the words never promise more secrecy than the rules allow, and a client
who met unwanted behaviour or is unsure is never sent to the person or their manager first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.engine import Engine
from flows.model import LANGUAGES, Choice, Conversation, Event, Start, StepResult

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)

# A word for "crime" (001 art. 5.2) and for "the person it is about" hearing the complaint
# (001 art. 14.4, 14.9), in each language; a text that promises secrecy must name them.
CRIME = {"en": "crime", "nl": "strafbaar feit", "uk": "злочин", "ar": "جريمة"}
BOARD = {"en": "board", "nl": "bestuur", "uk": "правління", "ar": "مجلس إدارة"}
PERSON_HEARS = {"en": "person it is about", "nl": "persoon over wie", "uk": "людина",
                "ar": "الشخص"}
# What the Schema A talk step tells the client to do, in each language.
GO_TO_PERSON = {"en": "First talk with the person", "nl": "Praat eerst met de persoon",
                "uk": "Спершу поговоріть із людиною", "ar": "أولًا التحدث مع الشخص"}


def texts(engine: Engine, lang: str, *buttons: str) -> list[str]:
    """Every text the client sees from /start through the given buttons."""
    result = StepResult(Conversation(), ())
    seen: list[str] = []
    events: list[Event] = [Start(lang), Choice(f"lang_{lang}"), *(Choice(b) for b in buttons)]
    for event in events:
        result = engine.step(result.conversation, event, NOW)
        seen += [m.text for m in result.messages]
    return seen


@pytest.mark.parametrize("lang", LANGUAGES)
def test_privacy_notice_names_both_limits(engine: Engine, lang: str) -> None:
    """The welcome says the person concerned sees a formal complaint and a confidant reports crimes."""
    welcome, _triage = texts(engine, lang)[-2:]
    assert CRIME[lang] in welcome and BOARD[lang] in welcome
    assert PERSON_HEARS[lang] in welcome


@pytest.mark.parametrize("lang", LANGUAGES)
def test_confidant_texts_name_the_one_exception(engine: Engine, lang: str) -> None:
    """The confidant step and the consent to send to the confidants both name the crime exception."""
    seen = texts(engine, lang, "aggression", "talk_not_tried")
    assert CRIME[lang] in seen[-1] and BOARD[lang] in seen[-1]
    t = engine.catalogs.get(lang)
    consent = t._("We send this to the confidants. Only the confidants read it. They keep it "
                  "secret, with one exception: they must report a possible crime to the "
                  "board of the organisation.")
    assert CRIME[lang] in consent and BOARD[lang] in consent


@pytest.mark.parametrize("lang", LANGUAGES)
def test_committee_consent_says_the_person_will_hear_it(engine: Engine, lang: str) -> None:
    """Consent to send to the committee says the person concerned will hear what it says."""
    t = engine.catalogs.get(lang)
    consent = t._("We send this to the complaints committee. Only the committee reads it. The "
                  "person it is about will hear what it says, so that they can answer.")
    assert PERSON_HEARS[lang] in consent.lower()
    assert "нікому не розголошує" not in consent  # the promise the rules do not allow


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("path", [("aggression",), ("unsure",)])
def test_unwanted_behaviour_and_unsure_never_go_to_the_person_first(
    engine: Engine, lang: str, path: tuple[str, ...]
) -> None:
    """Schema B and 'not sure' open with the confidant, and never tell the client to face the person."""
    seen = texts(engine, lang, *path)
    step_one = seen[-1]
    assert GO_TO_PERSON[lang] not in step_one
    t = engine.catalogs.get(lang)
    assert step_one.splitlines()[1].startswith(
        t._(
            "Step {step} of {total}: talk about it, if you want.\n"
            "A confidant can help you. You can go to a confidant now. If you feel safe, you "
            "may first talk about it with someone at the organisation. You choose.\n"
            "Did you already talk about it with someone?"
        ).splitlines()[1]
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_dissatisfaction_still_starts_with_the_talk(engine: Engine, lang: str) -> None:
    """Schema A (000 step 1) still asks to talk with the person, then the manager, first."""
    seen = texts(engine, lang, "help")
    assert GO_TO_PERSON[lang] in seen[-1]
