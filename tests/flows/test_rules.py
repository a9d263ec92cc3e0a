"""The procedure's rules, each tied to the article it comes from."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flows import rules
from flows.procedure import load_procedure

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
PROCEDURE = load_procedure()


def test_one_year_limit_001_art_13_1() -> None:
    """001 art. 13.1: an event more than one year before receipt is out of time; one within is not."""
    today = NOW.date()
    assert rules.is_out_of_time(date(2025, 11, 21), "help", PROCEDURE, today) is True
    assert rules.is_out_of_time(date(2025, 11, 22), "help", PROCEDURE, today) is False
    assert rules.is_out_of_time(date(2026, 6, 1), "help", PROCEDURE, today) is False


def test_no_limit_for_sexual_harassment_002_par_3_1_but_one_year_in_001() -> None:
    """002 §3.1: sexual harassment has no time limit at Lentl; 001 art. 13.1 makes no exception."""
    from flows.procedure import load_procedure, procedure_path

    lentl = load_procedure(procedure_path("lentl", Path.cwd()))
    assert rules.is_out_of_time(date(2015, 1, 1), "sexual_harassment", lentl, NOW.date()) is False
    assert rules.is_out_of_time(date(2015, 1, 1), "sexual_harassment", PROCEDURE, NOW.date()) is True


def test_unknown_date_is_never_held_against_the_client() -> None:
    """An incident date we could not read never makes a complaint out of time."""
    assert rules.is_out_of_time(None, "help", PROCEDURE, NOW.date()) is False


@pytest.mark.parametrize(
    ("typed", "language", "expected"),
    [
        ("15-03-2026", "nl", date(2026, 3, 15)),
        ("15.03.2026", "uk", date(2026, 3, 15)),
        ("15/03/2026", "en", date(2026, 3, 15)),
        ("2026-03-15", "en", date(2026, 3, 15)),
        ("gisteren", "nl", date(2026, 11, 21)),
        ("вчора", "uk", date(2026, 11, 21)),
        ("أمس", "ar", date(2026, 11, 21)),
        ("March 2024", "en", date(2024, 3, 31)),
        ("березень 2024", "uk", date(2024, 3, 31)),
        ("no idea at all", "en", None),
        ("x" * 400, "en", None),
    ],
)
def test_incident_dates_in_common_formats(typed: str, language: str, expected: date | None) -> None:
    """Common date formats and words in the client's language are read; a month counts to its last day."""
    assert rules.parse_incident_date(typed, language, NOW) == expected


@pytest.mark.parametrize("typed", ["1-2-2026", "29-02-2024", " 31.12.2025 ", "7/7/2031",
                                   "2026-1-05", "31-02-2026", "29-02-2025", "13-13-2026"])
def test_dates_in_digits_are_read_as_dateparser_reads_them(typed: str) -> None:
    """Dates in digits (read without dateparser, for speed) come out as dateparser reads them."""
    import dateparser

    expected = dateparser.parse(typed, languages=["nl", "en"], settings={
        "DATE_ORDER": "DMY", "PREFER_DATES_FROM": "past", "PREFER_DAY_OF_MONTH": "last",
        "RELATIVE_BASE": NOW.replace(tzinfo=None)})
    assert rules.parse_incident_date(typed, "nl", NOW) == (expected.date() if expected else None)


def test_deadlines_001_art_14_to_16() -> None:
    """Due dates: acknowledgement 1 week (14.1), decision 4 and 6 weeks (15.1), board 1 month (16.1)."""
    due = rules.deadlines(NOW, PROCEDURE)
    assert due["acknowledge"] == date(2026, 11, 29)
    assert due["missing_information"] == date(2026, 12, 6)
    assert due["decision_preferred"] == date(2026, 12, 20)
    assert due["decision_latest"] == date(2027, 1, 3)
    assert due["mediation_report"] == date(2027, 1, 3)
    assert due["board_response"] == date(2026, 12, 22)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+31 6 12345678", "+31 6 12345678"),
        ("0612345678", "0612345678"),
        ("٠٦١٢٣٤٥٦٧٨", "0612345678"),
        ("12", None),
        ("call me", None),
        ("+31 6 1234\n5678", None),
    ],
)
def test_phone_numbers(typed: str, expected: str | None) -> None:
    """Phone numbers: 6 to 15 digits, Arabic-Indic digits accepted, no line breaks or words."""
    assert rules.normalise_phone(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (" sara@example.nl ", "sara@example.nl"),
        ("a@b.nl\r\nBcc: x@y.nl", None),
        ("not-an-address", None),
        ("a@b", None),
    ],
)
def test_email_addresses(typed: str, expected: str | None) -> None:
    """E-mail addresses: plausible ones are kept, anything that could break a header is refused."""
    assert rules.normalise_email(typed) == expected


def test_clean_inbound_keeps_text_but_replaces_lone_surrogates() -> None:
    """The client's text is kept as typed (bidi, NUL, joiners); only unencodable surrogates change."""
    text = "a\u202eb\x00c\u200dد\u200f"
    assert rules.clean_inbound(text) == text
    assert rules.clean_inbound("x\ud800y") == "x\ufffdy"


def test_blank_text() -> None:
    """Only white space, control and format characters count as no answer."""
    assert rules.is_blank(" \t\n\u200b\u202e\x00") is True
    assert rules.is_blank(" a ") is False


def test_months_before_clamps_to_month_end() -> None:
    """One year before 29 February is 28 February."""
    assert rules.months_before(date(2028, 2, 29), 12) == date(2027, 2, 28)
