"""Issue 11: the register, exports, yearly report, retention, digest and staff commands work per
organisation; a staff member of one organisation never sees another's cases (CLI and Telegram).
Real app, real SQLite file (or PostgreSQL), real SMTP server and the Telegram Bot API stub."""

from __future__ import annotations

import csv
import io
import json
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.root.app import App
from bot.root.checks import unconfigured_organisations
from bot.root.cli import cli
from bot.services import register
from bot.services.organisation import Organisation
from bot.services.scheduler import run_daily_once
from bot.services.staff import StaffService
from storage import OutboxItem
from tests.bot.mailbox import mails
from tests.bot.test_cli import env_for
from tests.bot.test_telegram import LIBRARIES, Harness, make_harness, stub  # noqa: F401
from tests.bot.test_telegram import running as running
from tests.bot.whatsapp_helpers import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    Phone,
    StartWhatsApp,
    free_port,
)
from tests.conftest import Clock

ALPHA, BETA, BOTH, STRANGER = 901, 902, 903, 4998

DEPLOYMENT = """
[[organisations]]
slug = "alpha"
name = "Stichting Alpha"

[organisations.retention]
years = 2

[organisations.mailboxes]
committee = "commissie@alpha.test"
confidants = "vertrouwens@alpha.test"

[[organisations.coordinators]]
telegram = 901
whatsapp = "31690000001"

[[organisations.coordinators]]
telegram = 903

[[organisations]]
slug = "beta"
name = "Stichting Beta"

[organisations.retention]
years = 7

[organisations.register]
follow_up_days = 5
lapse_days = 30

[organisations.mailboxes]
committee = "commissie@beta.test"
confidants = "vertrouwens@beta.test"

[[organisations.coordinators]]
telegram = 902
whatsapp = "31690000002"

[[organisations.coordinators]]
telegram = 903
"""

REF = re.compile(r"KW-\d{4}-\d{6}")


@pytest.fixture
def deployment_config(tmp_path: Path) -> Path:
    path = tmp_path / "deployment.toml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    return path


@pytest.fixture
async def two(app_factory: Any, settings_for: Any, smtp_server: Any, deployment_config: Path) -> App:
    """The app of a deployment of two organisations, mailing to the test SMTP server."""
    settings = settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                            smtp_tls="none", config=deployment_config)
    built: App = await app_factory(settings)
    return built


def orgs(app: App) -> tuple[Organisation, Organisation]:
    alpha, beta = app.deployment.get("alpha"), app.deployment.get("beta")
    assert alpha is not None and beta is not None
    return alpha, beta


async def add(app: App, org: Organisation, kind: str = "signal", status: str = "closed") -> str:
    case = await register.add_case(app, kind=kind, status=status, organisation=org)
    assert case.organisation == org.slug
    return case.reference


# --- the register's services --------------------------------------------------------------------


async def test_register_export_and_case_commands_hold_only_their_organisations_cases(two: App) -> None:
    """Listing, rows, exports and every command by reference see one organisation's cases only;
    another's case is refused with the very words of a case that does not exist."""
    alpha, beta = orgs(two)
    a1, a2 = await add(two, alpha), await add(two, alpha, "complaint", "received")
    b1 = await add(two, beta, "report", "received")
    assert [line.case.reference for line in await register.list_cases(two, organisation=alpha)] == [
        a1, a2]
    assert [line.case.reference for line in await register.list_cases(two, organisation=beta)] == [b1]
    rows = await register.app_rows(two, organisation=beta)
    assert [(r["reference"], r["organisation"]) for r in rows] == [(b1, "Stichting Beta")]
    data, count = await register.export(two, "json", organisation=alpha)
    assert count == 2 and [r["reference"] for r in json.loads(data)] == [a1, a2]
    assert b1.encode() not in data

    with pytest.raises(register.RegisterError) as missing:
        await register.case_view(two, "KW-2000-999999", organisation=alpha)
    for attempt in (
        register.case_view(two, b1, organisation=alpha),
        register.set_status(two, b1, "acknowledged", organisation=alpha),
        register.add_note(two, b1, "een notitie", organisation=alpha),
        register.send_message(two, b1, "Hallo", organisation=alpha),
    ):
        with pytest.raises(register.RegisterError) as refused:
            await attempt
        assert str(refused.value) == str(missing.value).replace("KW-2000-999999", b1)
    assert (await register.case_view(two, b1, organisation=beta)).case.status == "received"
    async with two.db.unit_of_work(read_only=True) as uow:
        events = await uow.register.events(b1)
    assert [e.action for e in events] == ["status"]  # nothing was written to B's case


async def test_retention_per_organisation(two: App, clock: Clock) -> None:
    """Each organisation's dossiers go after its own retention years, and only its own."""
    alpha, beta = orgs(two)
    a1, b1 = await add(two, alpha), await add(two, beta)
    clock.advance(days=3 * 366)
    dry = await register.purge(two, dry_run=True, organisation=beta)
    assert dry.cases == ()  # Beta keeps 7 years
    done = await register.purge(two, organisation=alpha)  # Alpha keeps 2
    assert done.cases == (a1,)
    async with two.db.unit_of_work(read_only=True) as uow:
        kept, gone = await uow.register.get(b1), await uow.register.get(a1)
    assert kept is not None and kept.erased_at is None
    assert gone is not None and gone.erased_at is not None


async def test_follow_up_and_lapse_per_organisation(two: App, clock: Clock) -> None:
    """The follow-up question and the lapse of unreachable clients use each organisation's own
    periods, and touch only its own cases."""
    alpha, beta = orgs(two)
    closed = {org.slug: await add(two, org, "complaint", "closed") for org in (alpha, beta)}
    waiting = {org.slug: await add(two, org, "complaint", "received") for org in (alpha, beta)}
    for org in (alpha, beta):  # nobody to reach in a chat: a manual contact opens
        change = await register.set_status(two, waiting[org.slug], "acknowledged", organisation=org)
        assert change.delivery == "manual"
    clock.advance(days=6)
    assert await register.send_follow_ups(two, alpha) == 0  # Alpha asks after 14 days
    assert await register.send_follow_ups(two, beta) == 1  # Beta after 5
    async with two.db.unit_of_work(read_only=True) as uow:
        asked = await uow.register.notifications(purpose="follow_up")
    assert [n.reference for n in asked] == [closed["beta"]]
    clock.advance(days=25)
    assert await register.lapse_unreachable(two, alpha) == []  # Alpha: 61 days
    assert await register.lapse_unreachable(two, beta) == [waiting["beta"]]  # Beta: 30


async def test_each_organisation_gets_its_own_digest(two: App, clock: Clock,
                                                     smtp_server: Any) -> None:
    """The daily run sends each organisation's overdue deadlines to its own committee mailbox."""
    alpha, beta = orgs(two)
    a1 = await add(two, alpha, "complaint", "received")
    b1 = await add(two, beta, "complaint", "received")
    clock.advance(days=10)  # the acknowledgement (7 days) is overdue for both
    result = await run_daily_once(two)
    assert result is not None and result.digest_sent
    await two.worker.run_once()
    by_recipient = {str(m["To"]): m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                    for m in mails(smtp_server)}
    assert set(by_recipient) == {"commissie@alpha.test", "commissie@beta.test"}
    assert a1 in by_recipient["commissie@alpha.test"]
    assert b1 not in by_recipient["commissie@alpha.test"]
    assert b1 in by_recipient["commissie@beta.test"]
    assert a1 not in by_recipient["commissie@beta.test"]


async def test_a_refused_mail_shows_only_to_its_own_organisation(two: App, smtp_server: Any) -> None:
    """A mail of Beta's case refused for good (550) shows in Beta's case, list and digest only."""
    alpha, beta = orgs(two)
    b1 = await add(two, beta, status="received")
    now = two.clock()
    async with two.db.unit_of_work() as uow:
        await uow.outbox.add(OutboxItem(
            purpose="case", recipient="commissie@beta.test", message_id="<refused-b@kw.test>",
            raw=b"Subject: x\r\n\r\nx\r\n", next_attempt_at=now, created_at=now,
            case_reference=b1))
        await uow.commit()
    smtp_server.handler.replies = ["550 5.7.1 rejected by policy"]
    await two.worker.run_once()
    assert len((await register.case_view(two, b1, organisation=beta)).failed) == 1
    [line] = await register.list_cases(two, organisation=beta)
    assert len(line.failed) == 1
    assert b1 in (await register.digest_sections(two, organisation=beta))["failed"][0]
    assert (await register.digest_sections(two, organisation=alpha))["failed"] == []
    assert await register.failed_mails(two, organisation=alpha) == []


async def test_check_config_warns_about_cases_of_an_organisation_no_longer_configured(
        two: App, settings_for: Any, deployment_config: Path) -> None:
    """Cases filed under a slug that left the config are named, with what to do."""
    alpha, _ = orgs(two)
    await add(two, alpha)
    settings = settings_for(config=deployment_config)
    assert await unconfigured_organisations(settings, two.deployment) == []
    async with two.db.unit_of_work() as uow:
        await uow.register.add_signal(reference="KW-2026-900001", kind="signal", schema="",
                                      category=None, language="nl", channel="phone",
                                      location=None, status="closed", at=two.clock(),
                                      organisation="gamma")
        await uow.commit()
    [warning] = await unconfigured_organisations(settings, two.deployment)
    assert "1 case of organisation 'gamma'" in warning and "alpha, beta" in warning


# --- the staff commands -------------------------------------------------------------------------


async def test_staff_service_answers_each_coordinator_for_their_organisations_only(two: App) -> None:
    """A coordinator of Alpha gets Alpha's rows, of Beta Beta's; a coordinator of both gets one
    CSV and one count per organisation, each labelled with its name."""
    alpha, beta = orgs(two)
    a1, b1 = await add(two, alpha), await add(two, beta, "report", "received")
    staff = StaffService(two)
    assert staff.organisations_of(("telegram", str(BOTH))) == (alpha, beta)
    for coordinator, own, other in ((ALPHA, a1, b1), (BETA, b1, a1)):
        reply = await staff.answer(("telegram", str(coordinator)), "signals", "/signals",
                                   update_id=f"s{coordinator}", language="nl")
        [document] = reply.documents
        assert own.encode() in document.data and other.encode() not in document.data
    both = await staff.answer(("telegram", str(BOTH)), "stats", "/stats", update_id="b",
                              language="en")
    assert [m.text.splitlines()[0] for m in both.messages] == [
        "Organisation: Stichting Alpha", "Organisation: Stichting Beta"]
    assert "signal: 1" in both.messages[0].text and "report" not in both.messages[0].text
    files = await staff.answer(("telegram", str(BOTH)), "signals", "/signals", update_id="c",
                               language="en")
    assert [d.filename.split("-")[1] for d in files.documents] == ["alpha", "beta"]
    assert not (await staff.answer(("telegram", str(STRANGER)), "stats", "/stats",
                                   update_id="x", language="en")).documents


@pytest.mark.parametrize("library", LIBRARIES)
async def test_telegram_coordinators_see_only_their_organisations_cases(
        running: Any, library: str, deployment_config: Path) -> None:
    """On Telegram, /signals and /stats of Alpha's coordinator hold Alpha's cases only, and of
    Beta's Beta's; a stranger is refused."""
    h: Harness = await running(library, config=deployment_config)
    alpha, beta = orgs(h.a)
    a1, a2 = await add(h.a, alpha), await add(h.a, alpha)
    b1 = await add(h.a, beta, "report", "received")
    for coordinator, own, other, counts in ((ALPHA, {a1, a2}, b1, "signal: 2"),
                                            (BETA, {b1}, a1, "report: 1")):
        person = h.person(coordinator, "en", "Coby")
        [document] = await person.say("/signals")
        rows = list(csv.reader(io.StringIO(document.data.decode("utf-8-sig"))))
        assert {row[0] for row in rows[1:]} == own
        assert other.encode() not in document.data
        [stats] = await person.say("/stats")
        assert counts in (stats.text or "") and "Signals on" in (stats.text or "")
        assert ("report" in (stats.text or "")) == (coordinator == BETA)
    both = await h.person(BOTH, "en", "Dana").say("/signals")  # one CSV per organisation
    files = [d.data.decode("utf-8-sig") for d in both if d.kind == "document"]
    assert len(files) == 2 and any(a1 in f for f in files) and any(b1 in f for f in files)
    [refused] = await h.person(STRANGER, "en", "X").say("/stats")
    assert refused.text == "This command is only for staff of the organisation."


async def test_whatsapp_coordinators_see_only_their_organisations_cases(
        app_factory: Any, settings_for: Any, smtp_server: Any, deployment_config: Path,
        start_whatsapp: StartWhatsApp, graph: Any) -> None:
    """On WhatsApp too, each coordinator's /signals CSV and /stats hold their organisation's only."""
    settings = settings_for(
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none",
        config=deployment_config, whatsapp_token=TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=graph.base, whatsapp_listen_port=free_port())
    meta = await start_whatsapp(app=await app_factory(settings))
    alpha, beta = orgs(meta.app)
    a1, b1 = await add(meta.app, alpha), await add(meta.app, beta, "report", "received")
    for number, own, other in (("31690000001", a1, b1), ("31690000002", b1, a1)):
        phone = Phone(meta, wa_id=number)
        [document] = await phone.type("/signals")
        data = graph.upload_of(document).data
        assert own.encode() in data and other.encode() not in data
        [stats] = await phone.type("/stats")
        assert ("report: 1" in stats["text"]["body"]) == (own == b1)
        assert ("signal: 1" in stats["text"]["body"]) == (own == a1)


# --- the CLI ------------------------------------------------------------------------------------


def run(tmp_path: Path, config: Path | None, *args: str) -> tuple[int, str]:
    extra = {"KLACHTWIJZER_CONFIG": str(config)} if config else {}
    result = CliRunner().invoke(cli, list(args), env=env_for(tmp_path, **extra))
    return result.exit_code, result.output


def test_cli_works_per_organisation_and_refuses_the_others_cases(
        tmp_path: Path, deployment_config: Path) -> None:
    """case/export/report/purge/digest with -o see only that organisation's cases; a missing or
    unknown -o is one Dutch line with the slugs (exit 2); another's case is 'onbekend'."""
    def cli_run(*args: str) -> tuple[int, str]:
        return run(tmp_path, deployment_config, *args)

    refs = {}
    for slug in ("alpha", "beta"):
        code, out = cli_run("case", "add", "--open", "--kind", "complaint", "-o", slug)
        assert code == 0, out
        found = REF.search(out)
        assert found
        refs[slug] = found.group(0)
    a1, b1 = refs["alpha"], refs["beta"]

    missing = ("fout: deze installatie bedient meerdere organisaties; kies er een met "
               "--organisation (-o): alpha, beta\n")
    for command in (["case", "list"], ["case", "show", a1], ["case", "add"], ["export"],
                    ["report", "--year", "2026"], ["purge", "--dry-run"], ["digest"]):
        assert cli_run(*command) == (2, missing), command
    assert cli_run("case", "list", "-o", "gamma") == (
        2, "fout: onbekende organisatie 'gamma'; kies uit: alpha, beta\n")

    code, out = cli_run("case", "list", "-o", "alpha")
    assert code == 0 and a1 in out and b1 not in out, out
    code, out = cli_run("case", "list", "--organisation", "beta")
    assert code == 0 and b1 in out and a1 not in out, out

    unknown = cli_run("case", "show", "KW-2000-123456", "-o", "alpha")
    assert unknown[0] == 1
    for command in (["case", "show", b1], ["case", "set-status", b1, "acknowledged"],
                    ["case", "note", b1, "een notitie"], ["case", "message", b1, "Hallo"]):
        assert cli_run(*command, "-o", "alpha") == (
            1, unknown[1].replace("KW-2000-123456", b1)), command
    code, out = cli_run("case", "show", b1, "-o", "beta")
    assert code == 0 and out.startswith(b1), out

    code, out = cli_run("export", "--organisation", "alpha", "--format", "json")
    assert code == 0, out
    assert [row["reference"] for row in json.loads(out)] == [a1]
    year = a1.split("-")[1]
    code, out = cli_run("report", "--year", year, "--out", str(tmp_path / "alpha"), "-o", "alpha")
    assert code == 0 and out.startswith("1 zaak in"), out
    html = (tmp_path / "alpha" / f"jaarverslag-{year}.html").read_text(encoding="utf-8")
    assert "Stichting Alpha" in html and "Stichting Beta" not in html
    code, out = cli_run("purge", "--dry-run", "-o", "beta")
    assert code == 0 and out.startswith("bewaartermijn 7 jaar: 0 dossiers"), out

    code, out = cli_run("digest", "--force", "-o", "beta")
    assert code == 0 and "dagoverzicht naar commissie@beta.test" in out, out
    assert a1 not in out
    parser = BytesParser(policy=policy.default)
    [sent] = [parser.parsebytes(p.read_bytes()) for p in (tmp_path / "data").rglob("*.eml")]
    assert sent["To"] == "commissie@beta.test" and a1 not in sent.as_string()


def test_cli_with_one_organisation_needs_no_organisation_option(tmp_path: Path) -> None:
    """The zero-configuration default: no -o needed, its own slug accepted, another refused."""
    code, out = run(tmp_path, None, "case", "add")
    assert code == 0, out
    assert run(tmp_path, None, "case", "list")[0] == 0
    code, out = run(tmp_path, None, "case", "list", "-o", "default")
    assert code == 0 and REF.search(out), out
    assert run(tmp_path, None, "case", "list", "-o", "alpha") == (
        2, "fout: onbekende organisatie 'alpha'; kies uit: default\n")
