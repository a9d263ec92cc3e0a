"""Property-based tests: arbitrary input at every text prompt and every button never breaks the engine.

The default profile runs a few hundred examples per test; `.ci/run` runs the dedicated deep job
(`--hypothesis-profile=deep`, 10 000+ inputs in all) with `-m property`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows import rules
from flows.engine import Engine
from flows.i18n import Catalogs, load_catalogs
from flows.model import Choice, Conversation, Event, Start, Text
from flows.procedure import load_procedure

pytestmark = pytest.mark.property

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
CATALOGS: Catalogs = load_catalogs()
ENGINE = Engine(load_procedure(), CATALOGS, organisation="Test")

# Text as messengers can deliver it, plus what they should not: bidi overrides, zero-width and
# joiners, NUL and other controls, CR/LF, HTML, Arabic and Persian marks, lone surrogates.
HOSTILE = st.sampled_from(
    ["\u202e", "\u202d", "\u2066", "\u2069", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
     "\x00", "\x07", "\x1b[31m", "\r\n", "\n", "<script>alert(1)</script>", "&amp;", "ی", "ك",
     "\ud800", "\udfff", "Bcc: x@y.nl"]
)
TEXT = st.lists(st.one_of(st.text(max_size=40), HOSTILE), max_size=8).map("".join)


def _reach(events: list[Event]) -> Conversation:
    conv = Conversation()
    for event in events:
        conv = ENGINE.step(conv, event, NOW).conversation
    return conv


_START: list[Event] = [Start("en"), Choice("lang_en"), Choice("ok"), Choice("dissatisfied"),
                       Choice("help"), Choice("skip_to_complaint"), Choice("who_representative")]
# Every free-text prompt of the complaint form, reached by answering the ones before it.
TEXT_STATES: dict[str, Conversation] = {}
_conv = _reach(_START)
for _answer in ["Omar", "Layla", "mother", "Jan", "It happened.", "yesterday", "Nothing"]:
    TEXT_STATES[_conv.state] = _conv
    _conv = ENGINE.step(_conv, Text(_answer), NOW).conversation
_conv = ENGINE.step(_conv, Choice("contact_email"), NOW).conversation
TEXT_STATES[_conv.state] = _conv
BUTTON_STATES = {c.state: c for c in [_reach(_START[:n]) for n in range(1, len(_START))]}


@given(state=st.sampled_from(sorted(TEXT_STATES)), text=TEXT)
def test_text_prompts_store_text_unchanged_or_refuse(state: str, text: str) -> None:
    """At every text prompt: the client's words are stored exactly, or refused with nothing changed."""
    conv = TEXT_STATES[state]
    result = ENGINE.step(conv, Text(text), NOW)
    assert result.messages
    assert all(m.text for m in result.messages)
    cleaned = rules.clean_inbound(text)
    changed = result.conversation != conv
    if state.endswith("_contact_value"):
        valid = rules.normalise_email(cleaned) is not None
        assert changed == valid
        if valid:
            assert result.conversation.data["answers"]["contact"]["value"] == cleaned.strip()
        return
    if rules.is_blank(cleaned):
        assert changed is False
        return
    field = state.removeprefix("complaint_")
    assert result.conversation.data["answers"][field] == cleaned


@given(state=st.sampled_from(sorted(BUTTON_STATES)), button=st.text(max_size=70), typed=TEXT)
def test_buttons_accept_only_what_is_shown(state: str, button: str, typed: str) -> None:
    """At every button prompt: a forged or foreign button id or typed text never breaks anything."""
    conv = BUTTON_STATES[state]
    shown = ENGINE.render(_turn(conv)).button_ids()
    for event in (Choice(button), Text(typed)):
        result = ENGINE.step(conv, event, NOW)
        assert result.messages
        if isinstance(event, Choice) and event.button_id not in shown and not button.startswith("cmd:"):
            assert result.conversation == conv


def _turn(conv: Conversation):  # type: ignore[no-untyped-def]
    from flows.engine import Turn

    return Turn(engine=ENGINE, conv=conv, t=CATALOGS.get(conv.language), now=NOW)


@given(text=TEXT)
def test_summary_isolates_the_clients_text(text: str) -> None:
    """Shown back in the summary, the client's text sits inside an isolate and cannot reorder ours."""
    conv = TEXT_STATES["complaint_description"]
    cleaned = rules.clean_inbound(text)
    if rules.is_blank(cleaned):
        return
    conv = ENGINE.step(conv, Text(text), NOW).conversation
    conv.data["answers"].update(when=None, tried=None, contact={"method": "chat", "value": None},
                                consent=True)
    conv.state = "summary"
    rendered = ENGINE.render(_turn(conv)).text
    assert f"\u2068{cleaned}\u2069" in rendered
