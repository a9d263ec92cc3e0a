"""Export and yearly report: anonymised, small counts suppressed, the PDF read back as text."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]
from pypdf import PdfReader

from bot.root.app import App
from bot.services import register
from bot.services.report import build_report, render_html, write_report
from flows import register as rules
from flows.model import LANGUAGES, Choice
from flows.procedure import CATEGORIES
from storage.schema import CASE_KINDS
from tests.bot.register_helpers import RecordingChannel, file_complaint
from tests.conftest import Clock

PERSONAL = ("Sara Haddad", "Олена Петренко", "12345678", "example.nl", "Jan de Vries", "rude",
            "coordinator", "Gebeld met", "لم يتغير", "ua-", "c-")


@pytest.fixture
async def app(app_factory: Any, settings_for: Any, smtp_server: Any) -> App:
    settings = settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none")
    built: App = await app_factory(settings)
    built.channels.register(RecordingChannel("terminal"))
    return built


async def populated(app: App, clock: Clock) -> list[str]:
    """Cases full of personal data: names, phone, e-mail, notes, a follow-up comment (all 2026)."""
    clock.now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    c1, r1 = await file_complaint(app, "c-1", contact="phone", contact_value="+31 6 12345678")
    _c2, r2 = await file_complaint(app, "ua-2", lang="uk", name="Олена Петренко", contact="email",
                                   contact_value="olena@example.nl")
    for ref, days_to_ack, outcome in ((r1, 3, "founded"), (r2, 9, "unfounded")):
        clock.advance(days=days_to_ack)
        await register.set_status(app, ref, "acknowledged", note="Gebeld met Sara Haddad")
        await register.set_status(app, ref, "with_committee")
        clock.advance(days=20)
        await register.set_status(app, ref, "decided", outcome=outcome)
        await register.set_status(app, ref, "closed")
    await register.add_note(app, r1, "Gebeld met Jan de Vries, 06 12345678")
    clock.advance(days=15)
    await register.send_follow_ups(app)
    await c1.send(Choice(f"fu_partly:{r1}"))
    await c1.type("لم يتغير شيء، اتصل بي 0612345678")
    for lang in ("uk", "uk", "uk", "uk", "ar", "ar"):
        await register.add_case(app, schema="A", category="help", language=lang,
                                location="Locatie Zeist", note="Olena Petrenko, +31 6 12345678")
    return [r1, r2]


def check_row(row: dict[str, Any]) -> None:
    """Every field of a row holds only an allowed machine value: nothing personal can hide."""
    assert tuple(row) == register.EXPORT_FIELDS
    def allowed_int(v: Any) -> bool:
        return v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)

    checks: dict[str, Callable[[Any], bool]] = {
        "reference": lambda v: re.fullmatch(r"KW-\d{4}-\d{6}", v) is not None,
        "kind": lambda v: v in CASE_KINDS,
        "schema": lambda v: v in ("A", "B", None),
        "category": lambda v: v is None or v in CATEGORIES,
        "language": lambda v: v in LANGUAGES,
        "channel": lambda v: v in ("terminal", "telegram", "whatsapp", "in_person"),
        "organisation": lambda v: v == "Steunpunt Vluchtelingen De Bilt",
        "location": lambda v: v in (None, "Locatie Zeist"),
        "month": lambda v: re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v) is not None,
        "status": lambda v: v in rules.STATUSES,
        "outcome": lambda v: v is None or v in rules.OUTCOMES,
        "days_to_acknowledgement": allowed_int,
        "days_to_decision": allowed_int,
        "acknowledged_on_time": lambda v: v in (None, True, False),
        "decided_on_time": lambda v: v in (None, True, False),
        "follow_up": lambda v: v is None or v in rules.FOLLOW_UP_ANSWERS,
    }
    for key, value in row.items():
        assert checks[key](value), f"{key}={value!r}"


def typed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV or XLSX row back in JSON types."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value in ("", None):
            out[key] = None
        elif value in ("True", "False", True, False):
            out[key] = value in ("True", True)
        elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()
                                        and key.startswith("days")):
            out[key] = int(value)
        else:
            out[key] = value
    return out


async def test_export_holds_no_personal_data_in_any_format(app: App, clock: Clock) -> None:
    """CSV, XLSX and JSON: every field of every row is an allowed machine value, and none of the
    client's names, numbers, addresses, words or chat ids appears anywhere in the file."""
    refs = await populated(app, clock)
    rows = await register.app_rows(app)
    assert len(rows) == 8
    by_ref = {r["reference"]: r for r in rows}
    assert (by_ref[refs[0]]["days_to_acknowledgement"], by_ref[refs[0]]["acknowledged_on_time"],
            by_ref[refs[0]]["follow_up"]) == (3, True, "partly")
    assert (by_ref[refs[1]]["days_to_acknowledgement"], by_ref[refs[1]]["acknowledged_on_time"],
            by_ref[refs[1]]["decided_on_time"]) == (32, False, False)
    formats: tuple[register.ExportFormat, ...] = ("json", "csv", "xlsx")
    for fmt in formats:
        data, count = await register.export(app, fmt)
        assert count == 8
        if fmt == "json":
            parsed = json.loads(data)
        elif fmt == "csv":
            parsed = [typed(r) for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))]
        else:
            sheet = load_workbook(io.BytesIO(data)).active
            header, *body = list(sheet.iter_rows(values_only=True))
            parsed = [typed(dict(zip(header, r, strict=True))) for r in body]
        assert parsed == [dict(r) for r in rows], fmt
        for row in parsed:
            check_row(row)
        text = data.decode("utf-8", "replace") if fmt != "xlsx" else str(parsed)
        for secret in PERSONAL:
            assert secret not in text, (fmt, secret)


async def test_export_period_is_inclusive(app: App, clock: Clock) -> None:
    """--from and --to are whole days in Dutch time, both included."""
    await register.add_case(app)
    clock.now = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)  # 23:30 in Amsterdam: still 2026
    await register.add_case(app)
    clock.now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 1 January 2027 in Amsterdam
    await register.add_case(app)
    rows = await register.app_rows(app, date(2026, 12, 1), date(2026, 12, 31))
    assert [r["month"] for r in rows] == ["2026-12"]
    assert len(await register.app_rows(app, date(2027, 1, 1), None)) == 1


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


async def test_report_for_a_year_with_cases(app: App, clock: Clock, tmp_path: Path) -> None:
    """The 2026 report counts 8 cases, shows 2 complaints as '<5' and hides the 6 signals as '≥5'
    (else 8 - 6 gives the 2 away); PDF and HTML say the same."""
    await populated(app, clock)
    rows = await register.app_rows(app, date(2026, 1, 1), date(2026, 12, 31))
    report = build_report(rows, 2026, app.organisation.name, app.organisation.procedure.deadlines,
                          date(2027, 1, 5))
    kinds = next(b for b in report.breakdowns if b.title == "Soort")
    assert kinds.shown == {"Klachten": "<5", "Signalen (o.a. ter plekke opgelost)": "≥5"}
    languages = next(b for b in report.breakdowns if b.title == "Taal van de cliënt")
    assert languages.shown == {"Oekraïens": "5", "Arabisch": "<5", "Engels": "<5"}
    html_path, pdf_path, pages = write_report(report, tmp_path / "out")
    assert pages == 3
    text = pdf_text(pdf_path)
    for expected in ("Jaarverslag klachten 2026", "Steunpunt Vluchtelingen De Bilt", "Totaal: 8",
                     "Ontvangst bevestigd binnen 7 dagen (001 art. 14.1)", "<5 zaken",
                     "Signalen (o.a. ter plekke opgelost)", "≥5", "Oekraïens",
                     "Gemaakt op 05-01-2027"):
        assert expected in text, expected
    assert "Sara" not in text and "KW-2026" not in text
    html = html_path.read_text(encoding="utf-8")
    assert "<strong>Totaal: 8</strong>" in html and html.count("<img ") == len(report.breakdowns)


async def test_report_for_an_empty_year_says_so(app: App, tmp_path: Path) -> None:
    """001 art. 18.1: a year without cases is reported, in words, with no tables or charts."""
    rows = await register.app_rows(app, date(2025, 1, 1), date(2025, 12, 31))
    report = build_report(rows, 2025, app.organisation.name, {}, date(2026, 1, 2))
    _html, pdf_path, pages = write_report(report, tmp_path)
    text = " ".join(pdf_text(pdf_path).split())
    assert pages == 1
    assert ("In 2025 zijn er geen klachten, verzoeken om bemiddeling, verzoeken om een "
            "vertrouwenspersoon, meldingen of signalen geregistreerd.") in text
    assert "Totaal" not in text
    assert "geen klachten" in render_html(report)
