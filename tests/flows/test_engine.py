"""The pure engine: state in, event in; state, messages and effects out. No I/O anywhere."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from flows.engine import LONG_FIELDS, Engine
from flows.i18n import Catalogs
from flows.model import (
    CaseRegistered,
    Choice,
    Command,
    Conversation,
    EraseDossier,
    Event,
    LoadDossier,
    Start,
    SubmitCase,
    Text,
)
from flows.procedure import default_procedure_path, load_procedure, parse_procedure
from tests.flows.helpers import run

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


B_CONFIDANT = [
    Start("ar"), Choice("lang_en"), Choice("aggression"), Choice("talk_not_tried"),
    Choice("pref_female"),
]


def test_step_does_not_change_its_input(engine: Engine) -> None:
    """`step` works on a copy: the caller's conversation is untouched (no hidden shared state)."""
    conv = run(engine, B_CONFIDANT).conversation
    before = copy.deepcopy(conv)
    engine.step(conv, Text("Olena"), NOW)
    assert conv == before


def test_language_preselected_from_messenger(engine: Engine, catalogs: Catalogs) -> None:
    """The picker marks the messenger's language and asks in it; an unknown code asks in all four."""
    result = run(engine, [Start("uk-UA")])
    [message] = result.messages
    assert message.text == catalogs.get("uk")._("Choose your language.")
    labels = [b.label for row in message.buttons for b in row]
    assert labels == ["Nederlands", "✓ Українська", "العربية", "English"]
    [message] = run(engine, [Start("fr")]).messages
    assert message.text.splitlines() == [
        catalogs.get(lang)._("Choose your language.") for lang in ("nl", "uk", "ar", "en")
    ]


def test_submit_effect_then_receipt(engine: Engine) -> None:
    """Confirming emits one SubmitCase for the right mailbox; the registered reference is shown."""
    result = run(engine, [*B_CONFIDANT, Text("Olena"), Choice("contact_chat"), Choice("skip"),
                          Choice("confirm")])
    [effect] = result.effects
    assert isinstance(effect, SubmitCase)
    assert effect.mailbox == "vertrouwenspersonen@regioverband.nl"
    assert effect.submission["kind"] == "confidant_request"
    assert result.conversation.state == "submitting"
    done = engine.step(result.conversation, CaseRegistered("KW-2026-000007", NOW), NOW)
    assert "KW-2026-000007" in done.messages[0].text
    assert done.conversation.state == "after_request"
    assert done.conversation.data["cases"][0]["reference"] == "KW-2026-000007"
    assert "answers" not in done.conversation.data  # the draft left with the case


def test_no_consent_sends_nothing(engine: Engine) -> None:
    """Cancel on the summary sends nothing, records 'no consent' and keeps the answers (000)."""
    result = run(engine, [*B_CONFIDANT, Text("Olena"), Choice("contact_chat"), Choice("skip"),
                          Choice("cancel")])
    assert result.effects == ()
    assert result.conversation.state == "no_consent"
    assert result.conversation.data["answers"]["name_or_anonymous"] == "Olena"
    assert result.conversation.data["answers"]["consent"] is False
    later = run(engine, [Choice("consent_yes"), Choice("confirm")], result.conversation)
    [effect] = later.effects
    assert isinstance(effect, SubmitCase) and effect.submission["consent"]["given"] is True


def test_summary_says_who_receives_it_and_that_send_is_consent(engine: Engine,
                                                               catalogs: Catalogs) -> None:
    """The summary names the receivers and says that pressing Send gives the consent."""
    t = catalogs.get("en")
    result = run(engine, [*B_CONFIDANT, Text("Olena"), Choice("contact_chat"), Choice("skip")])
    summary = result.messages[-1].text
    assert "Only the confidants read it." in summary
    assert t._("If you press “{button}”, you give your consent for this. Without your consent "
               "we send nothing.").format(button=t._("Send")) in summary


def test_talk_helped_ends_without_sending(engine: Engine) -> None:
    """Step 1 solved it: the conversation ends, nothing is sent."""
    result = run(engine, [Start(), Choice("lang_en"), Choice("help"), Choice("talk_helped")])
    assert (result.conversation.state, result.effects) == ("resolved", ())


def test_edit_a_field_from_the_summary(engine: Engine) -> None:
    """From the summary a field can be corrected; the rest stays and the summary comes back."""
    events: list[Event] = [*B_CONFIDANT, Text("Olena"), Choice("contact_chat"), Choice("skip"),
                           Choice("change"), Choice("edit_name_or_anonymous"),
                           Text("Olena P.")]
    result = run(engine, events)
    assert result.conversation.state == "summary"
    assert result.conversation.data["answers"]["name_or_anonymous"] == "Olena P."
    assert result.conversation.data["answers"]["contact"] == {"method": "chat", "value": None}


def test_commands_work_at_any_moment(engine: Engine) -> None:
    """Dossier asks the service to load it; erase asks for confirmation, then erases and resets."""
    conv = run(engine, B_CONFIDANT).conversation
    assert run(engine, [Command("dossier")], conv).effects == (LoadDossier(),)
    asked = run(engine, [Command("erase")], conv)
    assert (asked.conversation.state, asked.effects) == (conv.state, ())
    erased = run(engine, [Command("erase"), Choice("yes")], conv)
    assert erased.effects == (EraseDossier(),)
    # Issue 14.9: nothing is kept but the messenger's language hint (Start("ar") above).
    assert (erased.conversation.state, erased.conversation.language,
            erased.conversation.data) == ("language", None, {"hint": "ar"})


def test_restart_keeps_language_and_cases(engine: Engine) -> None:
    """Start again (confirmed) clears the draft but keeps the language and sent cases."""
    conv = run(engine, B_CONFIDANT).conversation
    conv.data["cases"] = [{"reference": "KW-2026-000001", "kind": "report", "status": "received",
                           "created_at": NOW.isoformat()}]
    result = run(engine, [Command("restart"), Choice("yes")], conv)
    assert result.conversation.state == "triage"
    assert result.conversation.language == "en"
    assert result.conversation.data["cases"] == conv.data["cases"]
    assert "schema" not in result.conversation.data


def test_stale_button_from_earlier_state_is_refused(engine: Engine, catalogs: Catalogs) -> None:
    """A button pressed on an older question is refused politely and changes nothing."""
    conv = run(engine, B_CONFIDANT).conversation
    result = engine.step(conv, Choice("consent_yes", state="triage"), NOW)
    assert result.conversation == conv
    assert result.messages[0].text == catalogs.get("en")._(
        "This button is no longer valid. Please use the buttons below.")


def _walk() -> list[Event]:
    """Every kind of prompt of the default procedure, in order, as one conversation."""
    return [
        Start("en"), Choice("lang_en"), Choice("help"),
        Choice("talk_not_helped"), Choice("request_no"), Choice("who_representative"), Text("Omar"),
        Text("Layla"), Text("mother"), Text("Jan"), Text("What happened"), Text("01-01-2020"),
        Choice("adm_send"), Text("Nothing"), Choice("contact_email"), Text("a@b.nl"),
        Choice("change"),
    ]


def hostile(catalogs: Catalogs) -> list[tuple[Event, str]]:
    uk = catalogs.get("uk")
    return [
        (Text(""), "empty"),
        (Text(" \u200b\u202e "), "empty"),
        (Text("x" * 100_000), "huge"),
        (Command("frobnicate"), "unknown command"),
        (Choice("forged:data"), "forged"),
        (Text(uk._("Yes, send it")), "foreign label"),
        (Text("\x00\x07\x1b[31m"), "control"),
    ]


def test_bad_input_at_every_prompt(engine: Engine, catalogs: Catalogs) -> None:
    """At every prompt, bad input gets a clear answer in the client's language and loses nothing."""
    t = catalogs.get("en")
    conv = Conversation()
    seen_states = []
    for event in _walk():
        conv = engine.step(conv, event, NOW).conversation
        seen_states.append(conv.state)
        for bad, label in hostile(catalogs):
            result = engine.step(conv, bad, NOW)
            texts = [m.text for m in result.messages]
            assert texts, label
            takes_text = bool(engine._takes_text(engine_turn(engine, conv)))
            field = engine.forms.field_of(conv.state)
            long_field = takes_text and field in LONG_FIELDS and not conv.data.get("overlay")
            if label == "empty" and takes_text:
                assert texts[0] == t._("I did not receive any text. Please type your answer.")
            elif label == "huge" and long_field:
                # Issue 14.10: a long story is kept, never thrown away.
                assert texts[0] == t._("Your text is long. We kept all of it."), conv.state
                assert result.conversation.data["answers"][field] == bad.text  # type: ignore[union-attr]
                continue
            elif label == "huge" and takes_text:
                assert texts[0].startswith(t._("Your text is too long: {length} characters. The limit is "
                                               "{limit}. Please make it shorter. Nothing was saved.")
                                           .split(":")[0])
            elif label == "unknown command":
                assert texts[0] == t._("I do not know this command.")
            elif label == "forged":
                assert texts[0] == t._("This button is no longer valid. Please use the buttons below.")
            elif not takes_text:
                assert texts[0] == t._("Please choose one of the options below."), (conv.state, label)
            if label not in ("control", "foreign label") or not takes_text:
                # Refused: nothing changed, and the question is asked again.
                assert result.conversation == conv, (conv.state, label)
                assert result.messages[-1] == engine.render(engine_turn(engine, conv)), label
    assert "complaint_representative_relation" in seen_states and "edit" in seen_states


def engine_turn(engine: Engine, conv: Conversation) -> Any:
    from flows.engine import Turn

    return Turn(engine=engine, conv=copy.deepcopy(conv), t=engine.catalogs.get(conv.language), now=NOW)


def test_typed_label_or_number_counts_as_button(engine: Engine) -> None:
    """Where buttons are asked, typing a label (any case) or its number presses it."""
    conv = run(engine, [Start(), Choice("lang_en")]).conversation
    assert engine.step(conv, Text("help WAS not good"), NOW).conversation.state == "A_talk"
    assert engine.step(conv, Text("3"), NOW).conversation.data["category"] == "discrimination"


def test_name_typed_at_who_is_for_myself(engine: Engine) -> None:
    """At 'who is it for?' a typed name answers 'for myself' and the name in one action."""
    conv = run(engine, [Start(), Choice("lang_en"), Choice("help"),
                        Choice("skip_to_complaint"), Text("Sara Haddad")]).conversation
    assert conv.state == "complaint_staff"
    assert conv.data["answers"]["who"] == "self"
    assert conv.data["answers"]["name"] == "Sara Haddad"
    typed_label = run(engine, [Start(), Choice("lang_en"), Choice("help"),
                               Choice("skip_to_complaint"), Text("for someone ELSE")])
    assert typed_label.conversation.state == "complaint_name"


def test_danger_button_on_the_first_question(engine: Engine, catalogs: Catalogs) -> None:
    """'I am in danger now' on the first question shows 112 and asks the question again."""
    result = run(engine, [Start(), Choice("lang_en"), Choice("danger_yes")])
    assert "112" in result.messages[0].text
    assert result.conversation.state == "triage"
    assert result.conversation.data["emergency_shown"] is True


def test_machine_graph_is_built_from_the_definition(catalogs: Catalogs) -> None:
    """A differently shaped procedure (one schema: talk then complaint) runs without code changes."""
    raw = tomllib.loads(default_procedure_path().read_text(encoding="utf-8"))
    raw["schemas"] = {"C": {"steps": ["talk", "complaint"], "categories": [], "face_person": True}}
    raw["triage"] = [{"id": "dissatisfied", "schema": "C"}]
    engine = Engine(parse_procedure(raw), catalogs)
    result = run(engine, [Start(), Choice("lang_en"), Choice("dissatisfied"),
                          Choice("talk_not_helped")])
    assert result.conversation.state == "complaint_who"
    assert "C_mediation" not in engine.edges and "danger" not in engine.diagram()


def test_diagram_lists_every_edge(engine: Engine) -> None:
    """The Mermaid diagram is drawn from the same graph the machine runs."""
    diagram = engine.diagram()
    assert diagram.startswith("stateDiagram-v2\n")
    assert "    B_confidant --> confidant_request_name_or_anonymous: pref_female" in diagram
    assert "    triage --> A_talk: help" in diagram
    assert "    language --> triage: lang_uk" in diagram
    edges = sum(len(d) for t in engine.edges.values() for k, d in t.items() if k != "reset")
    assert diagram.count(" --> ") == edges + 1


@pytest.mark.parametrize("name", ["regioverband", "lentl", "coaching"])
def test_step_diagram_has_one_node_per_step_or_form(catalogs: Catalogs, name: str) -> None:
    """The readable diagram: each schema step and each form is one node, no question states."""
    p = load_procedure(default_procedure_path().parent / f"{name}.toml")
    engine = Engine(p, catalogs)
    mermaid, dot = engine.step_diagram(), engine.step_diagram("dot")
    assert mermaid.startswith("flowchart TD") and dot.startswith("digraph")
    for schema in p.schemas.values():
        for step_id in schema.steps:
            if p.step(step_id).kind != "complaint":
                assert f"{schema.id}_{step_id}[" in mermaid
    for form in p.forms.values():
        assert f"form_{form.id}[" in mermaid and f'"form_{form.id}"' in dot
        assert f"{form.id}_{form.fields[1]}" not in mermaid
    assert len(mermaid.splitlines()) < 80
