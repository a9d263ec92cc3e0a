"""The client's file (/dossier) and withdrawing (/withdraw), as the engine answers a `DossierLoaded`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flows.engine import WITHDRAWABLE, Engine
from flows.i18n import Catalogs
from flows.model import (
    CaseRegistered,
    Choice,
    Command,
    DossierLoaded,
    LoadDossier,
    Start,
    Text,
    WithdrawCase,
)
from tests.flows.helpers import run

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
REFERENCE = "KW-2026-000007"
CONFIDANT_REQUEST = [
    Start(), Choice("lang_en"), Choice("ok"), Choice("behaviour"), Choice("aggression"),
    Choice("danger_no"), Choice("talk_not_tried"), Choice("pref_female"), Text("Olena"),
    Choice("contact_chat"), Choice("skip"), Choice("consent_yes"), Choice("confirm"),
    CaseRegistered(REFERENCE, NOW), Choice("finish"),
]


def case(status: str, **extra: Any) -> dict[str, Any]:
    return {"reference": REFERENCE, "kind": "confidant_request", "status": status,
            "created_at": NOW.isoformat(), **extra}


def test_withdraw_with_nothing_to_withdraw_says_so_and_asks_again(
    engine: Engine, catalogs: Catalogs
) -> None:
    """Only the notice and the current question: no file listing follows."""
    t = catalogs.get("en")
    done = run(engine, CONFIDANT_REQUEST).conversation
    assert done.state == "done"
    assert run(engine, [Command("withdraw")], done).effects == (LoadDossier("withdraw"),)
    result = engine.step(done, DossierLoaded((case("closed"),), "withdraw"), NOW)
    assert [m.text for m in result.messages] == [
        t._("You have no sent complaint that you can withdraw."),
        t._("You are done. What do you want to do now?"),
    ]
    assert result.conversation.data["cases"][0]["status"] == "closed"  # the register's status
    assert "overlay" not in result.conversation.data


def test_withdraw_asks_which_then_confirms(engine: Engine, catalogs: Catalogs) -> None:
    t = catalogs.get("en")
    assert "received" in WITHDRAWABLE
    done = run(engine, CONFIDANT_REQUEST).conversation
    result = engine.step(done, DossierLoaded((case("received"),), "withdraw"), NOW)
    [question] = result.messages
    assert question.text == t._("Which one do you want to withdraw?")
    assert question.button_ids() == [f"wd_{REFERENCE}", "no"]
    asked = run(engine, [Choice(f"wd_{REFERENCE}")], result.conversation)
    assert asked.messages[0].button_ids() == ["yes", "no"]
    withdrawn = run(engine, [Choice("yes")], asked.conversation)
    assert withdrawn.effects == (WithdrawCase(REFERENCE),)
    assert withdrawn.conversation.data["cases"][0]["status"] == "withdrawn"
    assert withdrawn.conversation.state == "done"


def test_file_shows_draft_answers_cases_and_messages(engine: Engine, catalogs: Catalogs) -> None:
    t = catalogs.get("en")
    done = run(engine, CONFIDANT_REQUEST).conversation
    drafting = run(engine, [Command("new"), Choice("dissatisfied"), Choice("help"),
                            Choice("talk_not_tried"), Choice("request_yes"), Text("Piet")],
                   done).conversation
    payload = {"complainant": {"name": "Olena", "contact": {"method": "chat", "value": None}},
               "description": "Shouted at me"}
    messages = [{"from": "organisation", "at": NOW.isoformat(), "text": "We will call you."}]
    result = engine.step(
        drafting, DossierLoaded((case("received", payload=payload, messages=messages),)), NOW
    )
    file, question = result.messages
    lines = file.text.splitlines()
    assert lines[:2] == [t._("Everything we stored about you:"), "Language: English"]
    assert t._("Answers you did not send yet:") in lines
    assert "• Name: \u2068Piet\u2069" in lines
    assert f"{REFERENCE}: request for a confidant, received, sent on 22 November 2026" in lines
    assert "• What happened: \u2068Shouted at me\u2069" in lines
    assert "– 22 November 2026, The organisation: \u2068We will call you.\u2069" in lines
    assert question == engine.step(drafting, Command("help"), NOW).messages[-1]  # asked again
    assert result.conversation.state == drafting.state
