"""Issue 14, points 1 and 2: the words never promise more secrecy than the rules allow, and a client
who met unwanted behaviour or is unsure is never sent to the person or their manager first.
Issue 11: for each bundled procedure, the texts name its own receiver and rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.engine import Engine
from flows.i18n import load_catalogs
from flows.model import LANGUAGES, Choice, Conversation, Event, Start, StepResult, Text
from flows.procedure import default_procedure_path, load_procedure
from flows.turn import Turn

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


def texts(engine: Engine, lang: str, *buttons: str | Event) -> list[str]:
    """Every text the client sees from /start through the given buttons (or typed answers)."""
    result = StepResult(Conversation(), ())
    seen: list[str] = []
    events: list[Event] = [Start(lang), Choice(f"lang_{lang}"),
                           *(Choice(b) if isinstance(b, str) else b for b in buttons)]
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
    """The confidant step and the consent to send to the confidants (the summary, where Send is the
    consent) both name the crime exception (001 art. 5.2)."""
    seen = texts(engine, lang, "aggression", "talk_not_tried")
    assert CRIME[lang] in seen[-1] and BOARD[lang] in seen[-1]
    t = engine.catalogs.get(lang)
    consent = texts(engine, lang, "aggression", "talk_not_tried", "pref_female", Text("Olena"),
                    "contact_chat", "skip")[-1]
    assert t._("We send this to the confidants. Only the confidants read it.") in consent
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


# --- each bundled procedure's welcome, out-of-time, anonymous and consent texts ------------------
# (issue 11): who reads, who decides, what a confidant must pass on, true for each procedure.

PROCEDURES = default_procedure_path().parent
COMMITTEE = {"en": "committee", "nl": "commissie", "uk": "коміс", "ar": "لجنة"}
MANAGER = {"en": "manager", "nl": "leidinggevende", "uk": "керівник", "ar": "المسؤول المباشر"}
ORGANISATION = {"en": "organisation", "nl": "organisatie", "uk": "Організація", "ar": "المنظمة"}
DANGER = {"en": "danger", "nl": "gevaar", "uk": "небезпека", "ar": "خطر"}
CONFIDANT = {"en": "confidant", "nl": "vertrouwenspersoon", "uk": "довірен", "ar": "الموثوق"}
HEARD = "A formal complaint is also shown to the person it is about, so that they can answer."


def engine_for(name: str) -> Engine:
    """An engine for a bundled procedure (regioverband, lentl, coaching)."""
    return Engine(load_procedure(PROCEDURES / f"{name}.toml"), load_catalogs(), organisation="Test")


def welcome(name: str, lang: str) -> str:
    return texts(engine_for(name), lang)[-2]


@pytest.mark.parametrize("lang", ["en", "uk"])
def test_default_welcome_names_the_committee_and_the_crime_exception(lang: str) -> None:
    """001 art. 5.2, 14.4, 14.9: the committee reads it, the person hears it, a crime goes to the board."""
    text = welcome("regioverband", lang)
    assert COMMITTEE[lang] in text and CRIME[lang] in text and BOARD[lang] in text
    assert PERSON_HEARS[lang] in text


@pytest.mark.parametrize("lang", ["nl", "uk", "ar"])
def test_lentl_welcome_names_the_manager_not_a_committee_nor_a_confidant(lang: str) -> None:
    """002 §4.1, §4.2: the manager reads it, the employee hears it, records may be looked up; no
    committee reads it here and no confidant's secrecy is promised."""
    text = welcome("lentl", lang)
    t = load_catalogs().get(lang)
    assert MANAGER[lang] in text and t._(HEARD) in text
    assert t._("To talk about your complaint, the employee or the manager may look up your "
               "information in the systems of the organisation.") in text
    assert COMMITTEE[lang] not in text and CRIME[lang] not in text and BOARD[lang] not in text
    assert CONFIDANT[lang] not in text


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_coaching_welcome_names_the_confidant_and_danger_not_a_crime(lang: str) -> None:
    """004 step 2: only the confidant reads it; what must be passed on is danger, talked about
    together; no committee, no board, no complaint shown to anyone."""
    text = welcome("coaching", lang)
    t = load_catalogs().get(lang)
    assert CONFIDANT[lang] in text and DANGER[lang] in text
    assert CRIME[lang] not in text and BOARD[lang] not in text and t._(HEARD) not in text
    assert COMMITTEE[lang] not in text


OLD_COMPLAINT = {
    # 000 Schema A step 3, incident two years before NOW.
    "regioverband": ("help", "skip_to_complaint"),
    # 002 §3.1 none of the exclusions, §2 the talk did not help, §4.2 the complaint.
    "lentl": ("help", "excl_none", "talk_not_helped"),
}


def out_of_time(name: str, lang: str) -> str:
    engine = engine_for(name)
    result = engine.step(Conversation(), Start(lang), NOW)
    events: list[Event] = [Choice(f"lang_{lang}"), *(Choice(b) for b in OLD_COMPLAINT[name]),
                           Text("Sara Haddad"), Text("Jan de Vries"), Text("It went wrong."),
                           Text("10-11-2024")]
    for event in events:
        result = engine.step(result.conversation, event, NOW)
    assert result.conversation.state == "admissibility"
    return result.messages[-1].text


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_default_out_of_time_says_the_committee_decides(lang: str) -> None:
    """001 art. 13.1: one year, and the committee decides; Schema A has no other limits to name."""
    text = out_of_time("regioverband", lang)
    assert COMMITTEE[lang] in text and "12" in text
    assert len(text.splitlines()) == 1


@pytest.mark.parametrize("lang", ["nl", "uk", "ar"])
def test_lentl_out_of_time_says_the_organisation_decides_and_names_002_limits(lang: str) -> None:
    """002 §3.1: 12 months, 36 for youth care, none for sexual harassment; the organisation
    decides, no committee is named."""
    text = out_of_time("lentl", lang)
    t = load_catalogs().get(lang)
    assert ORGANISATION[lang] in text and COMMITTEE[lang] not in text
    assert t.ngettext("Is it about “{category}”? Then the limit is {count} month.",
                      "Is it about “{category}”? Then the limit is {count} months.", 36).format(
        category=t.quote(t._("Youth care")), count=36) in text
    assert t._("Is it about “{category}”? Then there is no time limit.").format(
        category=t.quote(t._("Sexual harassment"))) in text


@pytest.mark.parametrize("lang", ["en", "uk"])
def test_lentl_anonymous_complaint_is_passed_on_not_handled_by_a_committee(lang: str) -> None:
    """002 §3.1: an anonymous complaint may be passed on to the organisation, but is not handled."""
    seen = texts(engine_for("lentl"), lang, "help", "excl_none", "talk_not_helped",
                 "who_anonymous")
    assert ORGANISATION[lang] in seen[-1] and COMMITTEE[lang] not in seen[-1]


def test_coaching_asks_no_date_and_has_no_limit() -> None:
    """004 names no time limit and its request asks no date: no out-of-time text can appear."""
    procedure = load_procedure(PROCEDURES / "coaching.toml")
    assert all("when" not in form.fields for form in procedure.forms.values())
    assert procedure.limit_for("help") is None


CONSENT = {
    # procedure: (form, schema, the word that must be there, the word that must not)
    "regioverband": ("complaint", "A", COMMITTEE, MANAGER),
    "lentl": ("complaint", "main", MANAGER, COMMITTEE),
    "coaching": ("confidant_request", "steps", DANGER, CRIME),
}


@pytest.mark.parametrize("lang", ["nl", "ar"])
@pytest.mark.parametrize("name", sorted(CONSENT))
def test_consent_question_names_the_receiver_of_each_procedure(name: str, lang: str) -> None:
    """The consent question says who receives it and their rule: the committee (001 art. 14.4),
    the manager and the employee (002 §4.2), or the confidant and danger (004 step 2)."""
    engine = engine_for(name)
    form, schema, present, absent = CONSENT[name]
    conv = Conversation(state=f"{form}_consent", language=lang,
                        data={"schema": schema, "form": form, "answers": {"who": "self"}})
    turn = Turn(engine=engine, conv=conv, t=engine.catalogs.get(lang), now=NOW)
    message = engine.renderer.render(turn)
    assert present[lang] in message.text and absent[lang] not in message.text
    assert [b.id for row in message.buttons for b in row] == ["consent_yes", "consent_no"]
