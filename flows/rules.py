"""The procedure's rules as pure functions, each citing where it comes from (see ../shared/seeds)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Literal

import dateparser

from flows.procedure import Procedure

# Longest answers we accept. A longer one is refused with a notice; nothing is cut silently.
MAX_SHORT_TEXT = 300  # names, relation, staff, phone, e-mail, dates
MAX_LONG_TEXT = 20_000  # what happened, what was tried
# Issue 14.10: a longer story is kept, in parts; only beyond this, in all, is it cut.
MAX_PARTS_TEXT = 5 * MAX_LONG_TEXT
PART_SEPARATOR = "\n\n"

Admissibility = Literal["admissible", "possibly_out_of_time", "anonymous", "report_only"]


def parse_incident_date(text: str, language: str, now: datetime) -> date | None:
    """The date a client typed, in common formats and their own language; None if unclear.

    The typed text is always kept as well (issue: "keep what was typed"). Where only a month or a
    year is given we take its last day, so that the one-year rule is never applied against the client.
    """
    if len(text) > MAX_SHORT_TEXT:
        return None
    numeric = _numeric_date(text)
    if numeric is not None:
        return numeric
    parsed = dateparser.parse(
        text,
        languages=[language, "en", "nl"] if language != "en" else ["en", "nl"],
        settings={
            "DATE_ORDER": "DMY",
            "PREFER_DATES_FROM": "past",
            "PREFER_DAY_OF_MONTH": "last",
            "RELATIVE_BASE": now.replace(tzinfo=None),
        },
    )
    return parsed.date() if parsed else None


# Day, month and four-digit year with one separator (15-03-2026, 15.03.2026, 15/03/2026), or
# ISO (2026-03-15): read here, as dateparser reads them (DMY), without its per-call cost of
# loading and trying locales (milliseconds: it was most of the step that asks "when").
_DMY = re.compile(r"(\d{1,2})([-./])(\d{1,2})\2(\d{4})", re.ASCII)
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)


def _numeric_date(text: str) -> date | None:
    """A date written in digits only (see _DMY, _ISO); None for anything else or no such day."""
    text = text.strip()
    if (dmy := _DMY.fullmatch(text)) is not None:
        day, month, year = int(dmy[1]), int(dmy[3]), int(dmy[4])
    elif (iso := _ISO.fullmatch(text)) is not None:
        year, month, day = int(iso[1]), int(iso[2]), int(iso[3])
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None  # e.g. 31-02-2026: left to dateparser, as before


def months_before(day: date, months: int) -> date:
    """The same calendar day `months` earlier (clamped to the month's last day)."""
    year, month = divmod(day.year * 12 + (day.month - 1) - months, 12)
    month += 1
    for candidate in range(day.day, 27, -1):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    return date(year, month, min(day.day, 28))


def is_out_of_time(incident: date | None, category: str | None, procedure: Procedure,
                   today: date) -> bool:
    """001 art. 13.1: events more than one year before receipt are not admissible.

    002 §3.1: 36 months for youth care, no time limit for sexual harassment (limits per category in
    the definition). An unknown date is never held against the client.
    """
    months = procedure.limit_for(category)
    if incident is None or months is None:
        return False
    return incident < months_before(today, months)


def deadlines(received: datetime, procedure: Procedure) -> dict[str, date]:
    """Due dates from the day of receipt (001 art. 14.1 acknowledgement, 15.1 decision, ...)."""
    return {name: (received + timedelta(days=days)).date()
            for name, days in procedure.deadlines.items()}


_EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]{2,}$")
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()\-./]{6,25}$")


def normalise_email(text: str) -> str | None:
    """A plausible e-mail address, or None. No header-breaking characters can pass."""
    candidate = text.strip()
    if len(candidate) > 254 or not _EMAIL.match(candidate):
        return None
    return candidate


def normalise_phone(text: str) -> str | None:
    """A plausible phone number (6 to 15 digits, optional +), written as typed; or None."""
    # Arabic-Indic and other script digits count as digits: write them as ASCII.
    candidate = "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text.strip())
    if not _PHONE_CHARS.match(candidate):
        return None
    digits = sum(ch.isdigit() for ch in candidate)
    return candidate if 6 <= digits <= 15 else None


def join_part(before: str, part: str) -> tuple[str, bool]:
    """A long answer with one more part: (the parts joined, whether all of `part` fitted).

    Parts are joined by an empty line. What would go beyond `MAX_PARTS_TEXT` is cut, at a space
    when there is one near the end, never in the middle of a word if it can be helped.
    """
    joined = before + PART_SEPARATOR + part if before else part
    if len(joined) <= MAX_PARTS_TEXT:
        return joined, True
    cut = joined.rfind(" ", MAX_PARTS_TEXT - 200, MAX_PARTS_TEXT)
    return joined[: cut if cut > 0 else MAX_PARTS_TEXT].rstrip(), False


def last_words(text: str, count: int = 8) -> str:
    """The last few words of a text: where a cut text ends, so the client knows what to send."""
    return " ".join(text.split()[-count:])


def clean_inbound(text: str) -> str:
    """Text as channels hand it over, made storable: lone surrogates become U+FFFD.

    Everything else, bidi controls and NUL included, is kept exactly as typed: the client's words
    are evidence. They are made safe where they are shown (isolates) or put in headers (stripped).
    """
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def is_blank(text: str) -> bool:
    """Empty, or only white space, control, format or bidi characters: nothing to store."""
    return all(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in text)
