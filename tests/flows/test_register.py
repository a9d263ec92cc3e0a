"""The register's pure rules: lifecycle, due dates, client texts, follow-up, suppression."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from flows import register as rules
from flows.i18n import load_catalogs
from flows.model import LANGUAGES, RecordFollowUp
from flows.procedure import load_procedure

DAYS = load_procedure().deadlines
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
catalogs = load_catalogs()


def ev(action: str, value: str | None, days: int) -> rules.CaseEvent:
    return rules.CaseEvent(action, value, T0 + timedelta(days=days))


def test_allowed_next_per_kind() -> None:
    """Complaints go the whole way; reports and confidant requests never reach the committee."""
    assert rules.allowed_next("complaint", "received") == (
        "acknowledged", "in_mediation", "with_committee", "closed", "withdrawn", "lapsed")
    assert rules.allowed_next("complaint", "decided") == (
        "board_responded", "closed", "withdrawn", "lapsed")
    assert rules.allowed_next("report", "received") == ("acknowledged", "closed", "withdrawn")
    assert rules.allowed_next("confidant_request", "acknowledged") == ("closed", "withdrawn", "lapsed")
    assert [rules.allowed_next("complaint", s) for s in sorted(rules.TERMINAL)] == [(), (), ()]


@pytest.mark.parametrize(
    ("current", "new", "outcome", "message"),
    [
        ("received", "decided", "founded", "van 'received' naar 'decided' kan niet"),
        ("with_committee", "decided", None, "bij 'decided' hoort een uitkomst"),
        ("with_committee", "closed", "founded", "een uitkomst hoort alleen bij status 'decided'"),
        ("closed", "received", None, "dit is een eindstatus"),
        ("received", "received", None, "de zaak heeft al status 'received'"),
        ("received", "bogus\u202e", None, "onbekende status"),
    ],
)
def test_check_change_refuses_with_reason(current: str, new: str, outcome: str | None,
                                          message: str) -> None:
    """Each refused change names the reason in Dutch."""
    with pytest.raises(rules.StatusChangeError, match=message):
        rules.check_change("complaint", current, new, outcome)


def test_due_dates_of_a_new_complaint() -> None:
    """001 art. 14.1, 14.4, 15.1: acknowledgement and staff in 1 week, decision in 4 to 6 weeks."""
    found = rules.due_dates("complaint", T0, [], DAYS)
    assert [(d.name, d.due) for d in found] == [
        ("acknowledge", date(2026, 3, 9)), ("inform_staff", date(2026, 3, 9)),
        ("decision_preferred", date(2026, 3, 30)), ("decision_latest", date(2026, 4, 13))]
    assert [d.state(date(2026, 3, 10)) for d in found] == ["overdue", "overdue", "open", "open"]


def test_due_dates_follow_the_history() -> None:
    """Mediation suspends the decision (14.2), new information restarts it (15.1), the decision
    starts the board's month (16.1)."""
    events = [ev("status", "acknowledged", 3), ev("info_requested", None, 4),
              ev("deadline_met", "missing_information", 10), ev("status", "in_mediation", 12),
              ev("status", "with_committee", 30), ev("status", "decided", 60),
              ev("status", "board_responded", 70)]
    found = rules.due_dates("complaint", T0, events, DAYS)
    summary = [(d.name, d.due, d.state(date(2026, 6, 1))) for d in found]
    assert summary == [
        ("acknowledge", date(2026, 3, 9), "met"),
        ("inform_staff", date(2026, 3, 9), "overdue"),
        ("decision_preferred", date(2026, 3, 30), "cancelled"),
        ("decision_latest", date(2026, 4, 13), "cancelled"),
        ("missing_information", date(2026, 3, 20), "met"),
        ("decision_preferred", date(2026, 4, 9), "cancelled"),
        ("decision_latest", date(2026, 4, 23), "cancelled"),
        ("mediation_report", date(2026, 4, 25), "met"),
        ("decision_preferred", date(2026, 4, 29), "late"),
        ("decision_latest", date(2026, 5, 13), "met"),
        ("board_response", date(2026, 5, 31), "met"),
    ]


def test_closing_cancels_open_deadlines_and_due_soon() -> None:
    """A final status cancels what is still open; due_soon lists open ones within 3 days."""
    found = rules.due_dates("mediation_request", T0, [], DAYS)
    assert [d.name for d in rules.due_soon(found, date(2026, 3, 6))] == ["acknowledge"]
    assert rules.due_soon(found, date(2026, 3, 5)) == []
    closed = rules.due_dates("mediation_request", T0, [ev("status", "closed", 2)], DAYS)
    assert [d.state(date(2026, 9, 1)) for d in closed] == ["met", "met"]
    withdrawn = rules.due_dates("complaint", T0, [ev("status", "withdrawn", 1)], DAYS)
    assert {d.state(date(2026, 9, 1)) for d in withdrawn} == {"cancelled"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_status_has_a_plain_message_in_every_language(language: str) -> None:
    """Every status and kind gives a message in the client's language, with the reference."""
    t = catalogs.get(language)
    due = {name: date(2026, 4, 13) for name in DAYS}
    for kind in ("complaint", "mediation_request", "confidant_request", "report"):
        for status in rules.STATUSES:
            message = rules.status_message(t, kind=kind, status=status, reference="KW-2026-000001",
                                           outcome="founded", due=due, follow_up_days=14)
            assert "KW-2026-000001" in message.text
            assert message.rtl == (language == "ar")
            assert message.button_ids() == ["cmd:dossier"]


def test_decided_message_names_outcome_and_board_date() -> None:
    """The decision message says what the outcome means and when the board answers."""
    t = catalogs.get("en")
    text = rules.status_text(t, kind="complaint", status="decided", reference="KW-2026-000007",
                             outcome="unfounded", due={"board_response": date(2026, 5, 3)})
    assert text == (
        "News about KW-2026-000007:\nThe complaints committee has decided: your complaint is "
        "unfounded. This means that the committee does not agree with you. You also get the "
        "decision in writing. The board tells you what it will do about it, at the latest on "
        "3 May 2026.")


@pytest.mark.parametrize("language", ["nl", "uk"])
def test_acknowledgement_names_who_received_it(language: str) -> None:
    """002 §4.2: a complaint to the manager is confirmed by the organisation, not a committee;
    004 step 2: a request to the one confidant is confirmed by that confidant."""
    t = catalogs.get(language)
    committee = {"nl": "commissie", "uk": "коміс"}[language]
    manager = rules.status_text(t, kind="complaint", status="acknowledged",
                                reference="KW-2026-000002", receiver="manager")
    assert t._("The organisation confirms that it got your complaint. The manager of the "
               "employee will contact you to talk about it.") in manager
    assert committee not in manager
    confidant = rules.status_text(t, kind="confidant_request", status="acknowledged",
                                  reference="KW-2026-000003", receiver="confidant")
    assert t._("The confidant got your request. The confidant will contact you soon, in the way "
               "you chose.") in confidant
    default = rules.status_text(t, kind="complaint", status="acknowledged",
                                reference="KW-2026-000004")
    assert committee in default


def test_follow_up_buttons_round_trip_and_refuse_forgeries() -> None:
    """Button ids carry answer and reference; anything else is not a follow-up button."""
    assert rules.parse_follow_up_button(rules.follow_up_button("partly", "KW-2026-000001")) == (
        "partly", "KW-2026-000001")
    for forged in ("fu_maybe:KW-1", "fu_no:", "fu_no", "cmd:help", "fu_no:" + "X" * 40, ""):
        assert rules.parse_follow_up_button(forged) is None


def test_follow_up_answer_then_comment() -> None:
    """An answer is recorded at once; the next text is the comment; blank or huge is refused."""
    t = catalogs.get("uk")
    data: dict[str, object] = {"cases": [{"reference": "KW-2026-000001"}]}
    step = rules.follow_up_choice(data, t, "fu_no:KW-2026-000001")
    assert step is not None and step.effects == (RecordFollowUp("KW-2026-000001", "no"),)
    assert step.messages[-1].button_ids() == ["fu_skip:KW-2026-000001"]
    blank = rules.follow_up_text(data, t, " \u200f ")
    assert blank is not None and blank.effects == ()
    huge = rules.follow_up_text(data, t, "x" * (rules.MAX_COMMENT + 1))
    assert huge is not None and huge.effects == ()
    done = rules.follow_up_text(data, t, "Нічого не змінилось")
    assert done is not None and done.effects == (
        RecordFollowUp("KW-2026-000001", "no", comment="Нічого не змінилось"),)
    assert rules.follow_up_text(data, t, "next text") is None  # no longer waiting


def test_follow_up_other_button_ends_the_wait_and_foreign_case_is_refused() -> None:
    """Another button stops waiting for the comment; a case that is not the client's is refused."""
    t = catalogs.get("en")
    data: dict[str, object] = {"cases": [{"reference": "KW-2026-000001"}]}
    rules.follow_up_choice(data, t, "fu_yes:KW-2026-000001")
    assert rules.follow_up_choice(data, t, "ok") is None
    assert rules.follow_up_text(data, t, "hello") is None
    foreign = rules.follow_up_choice(data, t, "fu_no:KW-2026-000002")
    assert foreign is not None and foreign.effects == ()


def test_suppression_of_small_counts() -> None:
    """1 to 4 become '<5'; a lone hidden cell hides its smallest neighbour too ('≥5')."""
    assert [rules.suppress(n) for n in (0, 1, 4, 5, 12)] == ["0", "<5", "<5", "5", "12"]
    assert rules.suppress_breakdown({"a": 8, "b": 3, "c": 12}) == {"a": "≥5", "b": "<5", "c": "12"}
    assert rules.suppress_breakdown({"a": 2, "b": 3, "c": 12}) == {"a": "<5", "b": "<5", "c": "12"}
    assert rules.suppress_breakdown({"a": 7, "b": 12}) == {"a": "7", "b": "12"}
    assert rules.median_days([1, 2, 3, 4]) is None and rules.median_days([1, 2, 3, 4, 9]) == 3.0


def test_staff_message_keeps_its_own_line_right_to_left_in_arabic() -> None:
    """The staff text sits on a line of its own: in Arabic that line starts right-to-left too,
    and the text itself is isolated; in other languages nothing is added."""
    ar, nl = catalogs.get("ar"), catalogs.get("nl")
    arabic = rules.staff_message(ar, "KW-2026-000007", "Which day?")
    dutch = rules.staff_message(nl, "KW-2026-000007", "Welke dag?")
    assert (arabic.text.split("\n")[1], dutch.text.split("\n")[1], arabic.rtl) == (
        "\u200f\u2068Which day?\u2069", "\u2068Welke dag?\u2069", True)
