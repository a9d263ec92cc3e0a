"""The register's commands for staff (issue 4): `case` (add, list, show, set-status, message,
note), `export`, `report`, `purge` and `digest`. `bot/root/cli.py` adds them to the `klachtwijzer`
command with `add_register_commands`.

Each works for one organisation (issue 11): `--organisation/-o SLUG` (`export`: only the long
form, `-o` is its `--output`). In a deployment of one organisation it may be left out; with
several it is required, and a case of another organisation is refused as if it did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.root.app import App, build_app, configure_logging
from bot.root.settings import Settings
from bot.services.organisation import Organisation
from flows.i18n import Translator

ORG_HELP = "the organisation's slug (required when the deployment serves several)"
OrgOption = Annotated[str | None, typer.Option("--organisation", "-o", help=ORG_HELP)]


def _staff(app: App) -> Translator:
    """Staff lines are in the organisation's working language, Dutch; counts go through the
    catalogs, so "1 zaak" and "2 zaken" follow the language's plural rule (issue 14)."""
    return app.catalogs.get("nl")


# --- the register (issue 4): for the committee secretary and the coordinator --------------------

case_cli = typer.Typer(help="The register of cases: add, list, show, set-status, message, note.",
                       no_args_is_help=True)
def chosen_organisation(app: App, slug: str | None) -> Organisation:
    """The organisation a command is for: `slug`, or the only one. A missing slug with several
    organisations, or an unknown one, is one Dutch line naming the slugs and exit code 2."""
    deployment = app.deployment
    slugs = ", ".join(deployment.slugs)
    if slug is None:
        if not deployment.several:
            return deployment.default
        typer.echo(f"fout: deze installatie bedient meerdere organisaties; kies er een met "
                   f"--organisation (-o): {slugs}", err=True)
        raise typer.Exit(2)
    found = deployment.get(slug.strip().lower())
    if found is None:
        typer.echo(f"fout: onbekende organisatie '{slug}'; kies uit: {slugs}", err=True)
        raise typer.Exit(2)
    return found


def _register_run(work: Callable[[App, Organisation], Awaitable[None]], slug: str | None) -> None:
    """Build the app, choose the organisation, run one register operation, close (a refusal is
    mapped by OperatorErrors)."""
    settings = Settings()
    configure_logging("WARNING")

    async def main() -> None:
        app = await build_app(settings)
        try:
            await work(app, chosen_organisation(app, slug))
        finally:
            await app.close()

    asyncio.run(main())


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%d-%m-%Y"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(value, fmt).date()
    typer.echo(f"fout: {option} '{value}' is geen datum (JJJJ-MM-DD of DD-MM-JJJJ)", err=True)
    raise typer.Exit(2)


@case_cli.command("add")
def case_add(
    kind: Annotated[str, typer.Option(help="signal, complaint, mediation_request, "
                                           "confidant_request or report")] = "signal",
    schema: Annotated[str, typer.Option(help="A or B (empty: none)")] = "",
    category: Annotated[str | None, typer.Option(help="help, conflict, discrimination, ...")] = None,
    language: Annotated[str, typer.Option(help="the client's language: nl, uk, ar, en")] = "nl",
    channel: Annotated[str, typer.Option(help="how it came in: in_person, phone, mail")] = "in_person",
    location: Annotated[str | None, typer.Option(help="location or organisation")] = None,
    open_: Annotated[bool, typer.Option("--open", help="still open (default: solved on the spot)")]
    = False,
    note: Annotated[str | None, typer.Option(help="a note (stored encrypted; no names please)")]
    = None,
    by: Annotated[str, typer.Option(help="who records this (audit log)")] = "cli",
    organisation: OrgOption = None,
) -> None:
    """Register a signal, e.g. one solved on the spot (003 §5). No names, no contact details."""
    from bot.services.register import add_case

    async def work(app: App, org: Organisation) -> None:
        case = await add_case(app, kind=kind, schema=schema, category=category, language=language,
                              channel=channel, location=location,
                              status="received" if open_ else "closed", note=note, actor=by,
                              organisation=org)
        typer.echo(f"{case.reference} geregistreerd ({case.kind}, status {case.status})")

    _register_run(work, organisation)


@case_cli.command("list")
def case_list(
    due: Annotated[bool, typer.Option("--due", help="only cases with a deadline within 3 days "
                                                    "or overdue")] = False,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only open cases")] = False,
    organisation: OrgOption = None,
) -> None:
    """The register, oldest first, with each case's next deadline."""
    from bot.services.register import KIND_NL, list_cases, local_date
    from flows.register import STATUS_NL

    async def work(app: App, org: Organisation) -> None:
        lines = await list_cases(app, due_only=due, status=status,
                                 include_closed=not (open_only or due), organisation=org)
        if not lines:
            typer.echo("Geen zaken met een termijn binnen 3 dagen of verlopen." if due
                       else "Geen zaken.")
            return
        today = local_date(app.clock())
        typer.echo(f"{'referentie':<16} {'soort':<27} {'status':<26} {'ontvangen':<10}  "
                   "volgende termijn")
        for line in lines:
            case = line.case
            upcoming = line.due or tuple(d for d in line.deadlines
                                         if d.state(today) in ("open", "overdue"))
            nxt = "-"
            if upcoming:
                d = min(upcoming, key=lambda x: x.due)
                mark = "VERLOPEN " if d.state(today) == "overdue" else ""
                nxt = f"{mark}{d.due.strftime('%d-%m-%Y')} {d.label_nl}"
            extra = "  [handmatig contact nodig]" if line.manual else ""
            extra += "  [MAIL GEWEIGERD]" if line.failed else ""
            typer.echo(f"{case.reference:<16} {KIND_NL.get(case.kind, case.kind):<27} "
                       f"{STATUS_NL.get(case.status, case.status):<26} "
                       f"{local_date(case.created_at).strftime('%d-%m-%Y'):<10}  {nxt}{extra}")
        t = _staff(app)
        typer.echo("(" + t.ngettext("{count} case", "{count} cases", len(lines)).format(
            count=len(lines)) + ")")
        refused = sum(1 for line in lines if line.failed)
        if refused:
            cases = t.ngettext("{count} case", "{count} cases", refused).format(count=refused)
            typer.echo(f"LET OP: bij {cases} weigerde de mailserver een mail; "
                       "zie `klachtwijzer case show <referentie>`", err=True)

    _register_run(work, organisation)


@case_cli.command("show")
def case_show(
    reference: Annotated[str, typer.Argument(help="e.g. KW-2026-000001")],
    organisation: OrgOption = None,
) -> None:
    """One case: status, deadlines, history, messages to the client, follow-up, contact."""
    from bot.services.register import (
        ANSWER_NL,
        KIND_NL,
        METHOD_NL,
        case_view,
        failed_mail_line,
        local_date,
    )
    from flows.register import OUTCOME_NL, STATUS_NL

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "-"
        from bot.services.register import ORG_TZ

        return moment.astimezone(ORG_TZ).strftime("%d-%m-%Y %H:%M")

    async def work(app: App, org: Organisation) -> None:
        view = await case_view(app, reference, organisation=org)
        case = view.case
        today = local_date(app.clock())
        head = [case.reference, KIND_NL.get(case.kind, case.kind)]
        if case.schema:
            head.append(f"schema {case.schema}")
        head += [x for x in (case.category, case.language, case.channel, case.location) if x]
        typer.echo(" · ".join(head))
        for refused in view.failed:
            typer.echo(f"LET OP:     {failed_mail_line(app, refused)}")
        status = STATUS_NL.get(case.status, case.status)
        if case.outcome:
            status += f" ({OUTCOME_NL.get(case.outcome, case.outcome)})"
        typer.echo(f"status:     {status}")
        typer.echo(f"ontvangen:  {when(case.created_at)}")
        if case.closed_at:
            typer.echo(f"afgesloten: {when(case.closed_at)}")
        if view.payload:
            complainant = view.payload.get("complainant") or {}
            contact = complainant.get("contact") or {}
            method = str(contact.get("method") or "chat")
            value = contact.get("value")
            typer.echo(f"contact:    {METHOD_NL.get(method, method)}" + (f": {value}" if value else ""))
        elif case.erased_at:
            typer.echo(f"dossier:    vernietigd op {when(case.erased_at)} (alleen anonieme gegevens)")
        if view.deadlines:
            typer.echo("termijnen:")
            marks = {"met": "gehaald", "late": "TE LAAT", "overdue": "VERLOPEN", "open": "open",
                     "cancelled": "vervallen"}
            for d in view.deadlines:
                state = d.state(today)
                done = f" ({when(d.met_at)})" if d.met_at else ""
                typer.echo(f"  {marks[state]:<9} uiterlijk {d.due.strftime('%d-%m-%Y')}  "
                           f"{d.label_nl}{done}")
        if view.events:
            typer.echo("geschiedenis:")
            for event in view.events:
                what = event.action
                if event.action == "status":
                    what = f"status -> {STATUS_NL.get(event.value or '', event.value)}"
                elif event.value:
                    what = f"{event.action}: {event.value}"
                note = f"  \"{event.note}\"" if event.note else ""
                typer.echo(f"  {when(event.at)}  {event.actor:<12} {what}{note}")
        if view.notifications:
            typer.echo("berichten aan de cliënt:")
            for n in view.notifications:
                what = {"follow_up": "nazorgvraag", "message": "bericht (zie geschiedenis)"}.get(
                    n.purpose, f"status '{STATUS_NL.get(n.status or '', n.status)}'")
                if n.delivery is None:
                    how = "wacht op verzending"
                elif n.delivery == "manual":
                    how = f"handmatig contact nodig {METHOD_NL.get(n.method or 'none', '')}".strip()
                    how += f" (gedaan {when(n.resolved_at)})" if n.resolved_at else " (OPEN)"
                elif n.delivery == "template":
                    shown = f", getoond {when(n.resolved_at)}" if n.resolved_at else ", nog niet getoond"
                    how = "via WhatsApp-sjabloon" + shown
                else:
                    how = "via de chat"
                typer.echo(f"  {when(n.created_at)}  {what}: {how}")
        if view.follow_up:
            f = view.follow_up
            line = f"nazorg:     antwoord '{ANSWER_NL.get(f.answer, f.answer)}' op {when(f.answered_at)}"
            if f.comment:
                line += f", toelichting: \"{f.comment}\""
            if f.answer != "yes":
                line += " (afgehandeld)" if f.attention_done_at else " (AANDACHT coördinator)"
            typer.echo(line)

    _register_run(work, organisation)


@case_cli.command("set-status")
def case_set_status(
    reference: Annotated[str, typer.Argument(help="e.g. KW-2026-000001")],
    status: Annotated[str, typer.Argument(help="acknowledged, in_mediation, with_committee, decided, "
                                                "board_responded, closed, withdrawn, lapsed")],
    outcome: Annotated[str | None, typer.Option(help="with decided: founded, partly_founded, "
                                                     "unfounded")] = None,
    note: Annotated[str | None, typer.Option(help="a note with the change (stored encrypted)")] = None,
    by: Annotated[str, typer.Option(help="who makes the change (audit log)")] = "cli",
    notify: Annotated[bool, typer.Option(help="tell the client")] = True,
    organisation: OrgOption = None,
) -> None:
    """Change a case's status; the client is told on their channel, in their language."""
    from bot.services.register import METHOD_NL, set_status
    from flows.register import STATUS_NL

    async def work(app: App, org: Organisation) -> None:
        change = await set_status(app, reference, status, outcome=outcome, note=note, actor=by,
                                  notify=notify, organisation=org)
        typer.echo(f"{change.case.reference}: status is nu '{STATUS_NL[change.case.status]}'")
        told = {
            "sent": "cliënt is bericht via de chat",
            "template": "cliënt is bericht via een WhatsApp-sjabloon",
            "pending": "bericht aan de cliënt wacht op de draaiende bot (klachtwijzer run)",
            "none": "cliënt is niet bericht",
        }
        if change.delivery == "manual":
            how = METHOD_NL.get(change.method or "none", "")
            typer.echo(f"LET OP: de cliënt is niet bereikbaar via de chat; handmatig contact "
                       f"nodig ({how}).\nDit staat in het dagoverzicht tot "
                       f"`klachtwijzer case note {change.case.reference} --contacted`.")
        else:
            typer.echo(told[change.delivery])

    _register_run(work, organisation)


@case_cli.command("message")
def case_message(
    reference: Annotated[str, typer.Argument(help="e.g. KW-2026-000001")],
    text: Annotated[str, typer.Argument(help="what to write to the client, in words they read "
                                             "(shown word for word; stored encrypted)")],
    asks_information: Annotated[bool, typer.Option(
        "--asks-information", help="this asks for missing information (2 weeks, 001 art. 14.3)")]
    = False,
    by: Annotated[str, typer.Option(help="who writes (audit log)")] = "cli",
    organisation: OrgOption = None,
) -> None:
    """Write to the client in their chat; their answer comes to the case's mailbox."""
    from bot.services.register import METHOD_NL, send_message

    async def work(app: App, org: Organisation) -> None:
        change = await send_message(app, reference, text, actor=by,
                                    asks_information=asks_information, organisation=org)
        told = {
            "sent": "bericht staat in de chat van de cliënt",
            "template": "cliënt is via een WhatsApp-sjabloon gewaarschuwd; het bericht volgt "
                        "zodra de cliënt weer schrijft",
            "pending": "bericht wacht op de draaiende bot (klachtwijzer run)",
        }
        if change.delivery == "manual":
            how = METHOD_NL.get(change.method or "none", "")
            typer.echo(f"LET OP: de cliënt is niet bereikbaar via de chat; handmatig contact "
                       f"nodig ({how}).")
        else:
            typer.echo(f"{change.case.reference}: {told[change.delivery]}")

    _register_run(work, organisation)


@case_cli.command("note")
def case_note(
    reference: Annotated[str, typer.Argument(help="e.g. KW-2026-000001")],
    text: Annotated[str | None, typer.Argument(help="the note (stored encrypted)")] = None,
    contacted: Annotated[bool, typer.Option("--contacted", help="the client was reached by "
                                                                "phone or e-mail")] = False,
    met: Annotated[str | None, typer.Option(help="a deadline that was met, e.g. inform_staff")]
    = None,
    info_requested: Annotated[bool, typer.Option("--info-requested", help="the client was asked "
                                                 "for missing information (2 weeks, 14.3)")] = False,
    attention_done: Annotated[bool, typer.Option("--attention-done", help="the coordinator dealt "
                                                 "with a follow-up answer")] = False,
    follow_up: Annotated[str | None, typer.Option(help="the client's answer by phone: yes, partly, "
                                                      "no")] = None,
    by: Annotated[str, typer.Option(help="who writes this (audit log)")] = "cli",
    organisation: OrgOption = None,
) -> None:
    """Add a note and/or record a fact: contact made, deadline met, information asked, follow-up."""
    from bot.services.register import add_note

    async def work(app: App, org: Organisation) -> None:
        done = await add_note(app, reference, text, actor=by, contacted=contacted, met=met,
                              info_requested=info_requested, attention_done=attention_done,
                              follow_up=follow_up, organisation=org)
        for line in done:
            typer.echo(f"{reference.strip().upper()}: {line}")

    _register_run(work, organisation)


def export_cmd(
    from_: Annotated[str | None, typer.Option("--from", help="first day, e.g. 2026-01-01")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day, e.g. 2026-12-31")] = None,
    format_: Annotated[str, typer.Option("--format", help="csv, xlsx or json")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout; "
                                                "xlsx needs a file)")] = None,
    organisation: Annotated[str | None, typer.Option("--organisation", help=ORG_HELP)] = None,
) -> None:
    """Anonymised register rows: no names, no free text, no contact or account ids."""
    from bot.services.register import export

    if format_ not in ("csv", "xlsx", "json"):
        typer.echo("fout: --format is csv, xlsx of json", err=True)
        raise typer.Exit(2)
    if format_ == "xlsx" and output is None:
        typer.echo("fout: xlsx gaat alleen naar een bestand: gebruik --output FILE.xlsx", err=True)
        raise typer.Exit(2)
    start, end = _parse_day(from_, "--from"), _parse_day(to, "--to")

    async def work(app: App, org: Organisation) -> None:
        data, count = await export(app, format_, start, end,  # type: ignore[arg-type]
                                   organisation=org)
        if output is None:
            sys.stdout.write(data.decode("utf-8-sig"))
        else:
            output.write_bytes(data)
            rows = _staff(app).ngettext("{count} row", "{count} rows", count).format(count=count)
            typer.echo(f"{rows} geschreven naar {output}", err=True)

    _register_run(work, organisation)


def report_cmd(
    year: Annotated[int, typer.Option(help="the calendar year, e.g. 2026")],
    out: Annotated[Path, typer.Option(help="folder for the HTML and PDF")] = Path("."),
    organisation: OrgOption = None,
) -> None:
    """The anonymised yearly report (001 art. 18) as HTML and PDF, with charts."""
    from bot.services.register import app_rows, local_date
    from bot.services.report import build_report, write_report

    if not 2000 <= year <= 2100:
        typer.echo("fout: --year moet een jaartal zijn, bijv. 2026", err=True)
        raise typer.Exit(2)

    async def work(app: App, org: Organisation) -> None:
        rows = await app_rows(app, date(year, 1, 1), date(year, 12, 31), organisation=org)
        report = build_report(rows, year, org.name, org.procedure.deadlines,
                              local_date(app.clock()))
        html_path, pdf_path, pages = write_report(report, out)
        t = _staff(app)
        cases = t.ngettext("{count} case", "{count} cases", len(rows)).format(count=len(rows))
        pages_nl = t.ngettext("{count} page", "{count} pages", pages).format(count=pages)
        typer.echo(f"{cases} in {year}; geschreven: {html_path}, {pdf_path} ({pages_nl})")

    _register_run(work, organisation)


def purge_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show what would go")] = False,
    organisation: OrgOption = None,
) -> None:
    """Destroy dossiers past retention (001 art. 17.4), with attachments and outbox copies."""
    from bot.services.register import purge

    async def work(app: App, org: Organisation) -> None:
        result = await purge(app, dry_run=dry_run, organisation=org)
        t = _staff(app)
        n = len(result.cases)
        files = t.ngettext("{count} dossier", "{count} dossiers", n).format(count=n)
        attachments = t.ngettext("{count} attachment", "{count} attachments", result.files).format(
            count=result.files)
        mails = t.ngettext("{count} mail", "{count} mails", result.outbox_rows).format(
            count=result.outbox_rows)
        talks = t.ngettext("{count} conversation", "{count} conversations",
                           result.conversations).format(count=result.conversations)
        many = n != 1
        verb = ("zouden worden vernietigd" if many else "zou worden vernietigd") if dry_run else "vernietigd"
        typer.echo(f"bewaartermijn {org.retention_years} jaar: "
                   f"{files} {verb}, {attachments}, {mails} in de outbox, {talks}")
        for reference in result.cases:
            typer.echo(f"  {reference}")

    _register_run(work, organisation)


def digest_cmd(
    force: Annotated[bool, typer.Option("--force", help="send even when there is nothing")] = False,
    organisation: OrgOption = None,
) -> None:
    """Send the daily digest to the committee mailbox now (also runs daily with `run`)."""
    from bot.services.register import queue_digest

    async def work(app: App, org: Organisation) -> None:
        sections, queued = await queue_digest(app, force=force, organisation=org)
        for key, lines in sections.items():
            for line in lines:
                typer.echo(f"[{key}] {line}")
        if not queued:
            typer.echo("niets te melden; geen mail verstuurd (--force om toch te sturen)")
            return
        sent = await app.worker.run_once()
        typer.echo(f"dagoverzicht naar {org.procedure.mailboxes['committee']}: "
                   f"{'verstuurd' if sent else 'in de outbox (wordt opnieuw geprobeerd)'}")

    _register_run(work, organisation)


def add_register_commands(cli: typer.Typer) -> None:
    """Add `case` and the staff's top-level commands to the `klachtwijzer` command, in help order."""
    cli.add_typer(case_cli, name="case")
    cli.command("export")(export_cmd)
    cli.command("report")(report_cmd)
    cli.command("purge")(purge_cmd)
    cli.command("digest")(digest_cmd)
