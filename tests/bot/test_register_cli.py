"""The secretary's and coordinator's commands: case add|list|show|set-status|note, export, report,
purge, digest, run against a real data dir (the real clock)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from bot.root.cli import cli
from tests.bot.test_cli import env_for


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env_for(tmp_path))
    return result.exit_code, result.output


def test_case_commands_from_signal_to_closed(tmp_path: Path) -> None:
    """A coordinator adds an open signal; the secretary lists, acknowledges, notes and closes it."""
    code, out = run(tmp_path, "case", "add", "--open", "--schema", "B", "--category", "bullying",
                    "--language", "ar", "--location", "Locatie Zeist")
    assert code == 0, out
    match = re.fullmatch(r"(KW-\d{4}-000001) geregistreerd \(signal, status received\)\n", out)
    assert match, out
    ref = match.group(1)
    code, out = run(tmp_path, "case", "list")
    assert code == 0 and ref in out and "signaal" in out and "ontvangen" in out, out
    code, out = run(tmp_path, "case", "set-status", ref, "acknowledged", "--note", "Besproken")
    assert (code, out) == (0, f"{ref}: status is nu 'ontvangst bevestigd'\ncliënt is niet bericht\n")
    code, out = run(tmp_path, "case", "note", ref, "Opgelost met de locatie", "--by", "coordinator")
    assert (code, out) == (0, f"{ref}: notitie opgeslagen (versleuteld)\n")
    code, out = run(tmp_path, "case", "set-status", ref.lower(), "closed")
    assert code == 0, out
    code, out = run(tmp_path, "case", "show", ref)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"{ref} · signaal · schema B · bullying · ar · in_person · Locatie Zeist"
    assert lines[1] == "status:     afgesloten"
    assert "status -> ontvangst bevestigd  \"Besproken\"" in out
    assert "coordinator  note  \"Opgelost met de locatie\"" in out


def test_case_commands_refuse_clearly(tmp_path: Path) -> None:
    """Unknown references, bad status changes and bad options exit non-zero with the reason."""
    run(tmp_path, "case", "add")
    code, out = run(tmp_path, "case", "show", "KW-2000-123456")
    assert (code, out) == (1, "fout: onbekende referentie 'KW-2000-123456' (zie `klachtwijzer case "
                              "list`)\n")
    code, out = run(tmp_path, "case", "list", "--status", "nonsense")
    assert code == 1 and "fout: onbekende status 'nonsense'" in out
    _, listing = run(tmp_path, "case", "list")
    ref = re.search(r"KW-\d{4}-\d{6}", listing)
    assert ref
    code, out = run(tmp_path, "case", "set-status", ref.group(0), "acknowledged")
    assert code == 1 and "van 'closed' naar 'acknowledged' kan niet (dit is een eindstatus)" in out
    code, out = run(tmp_path, "case", "note", ref.group(0))
    assert (code, out) == (1, "fout: geef een notitie of een van de opties (zie --help)\n")
    code, out = run(tmp_path, "export", "--from", "31-02-2026")
    assert code == 2 and "is geen datum" in out
    code, out = run(tmp_path, "export", "--format", "xlsx")
    assert code == 2 and "--output" in out


def test_export_report_purge_digest(tmp_path: Path) -> None:
    """export writes anonymised JSON, report writes HTML and PDF, purge and digest report counts."""
    run(tmp_path, "case", "add", "--language", "uk")
    code, out = run(tmp_path, "export", "--format", "json")
    assert code == 0, out
    [row] = json.loads(out)
    assert (row["kind"], row["language"], row["status"]) == ("signal", "uk", "closed")
    year = row["month"][:4]
    code, out = run(tmp_path, "report", "--year", year, "--out", str(tmp_path / "r"))
    assert code == 0 and f"1 zaak in {year}" in out, out
    assert (tmp_path / "r" / f"jaarverslag-{year}.pdf").read_bytes().startswith(b"%PDF")
    code, out = run(tmp_path, "purge", "--dry-run")
    assert (code, out) == (0, "bewaartermijn 5 jaar: 0 dossiers zouden worden vernietigd, 0 bijlagen, "
                              "0 mails in de outbox, 0 gesprekken\n")
    code, out = run(tmp_path, "digest")
    assert (code, out) == (0, "niets te melden; geen mail verstuurd (--force om toch te sturen)\n")
    code, out = run(tmp_path, "digest", "--force")
    assert code == 0 and "dagoverzicht naar klachtencommissie@regioverband.nl: verstuurd" in out
    [eml] = (tmp_path / "data" / "outbox").glob("*.eml")
    assert "Er is vandaag niets te melden." in eml.read_text(encoding="utf-8")


def test_case_message_from_the_command_line(tmp_path: Path) -> None:
    """`case message` stores the text for the client; with no chat running here it says a manual
    contact is needed, and `case show` lists the message in the history."""
    import asyncio

    from bot.root.app import build_app
    from bot.root.settings import Settings
    from tests.bot.register_helpers import file_complaint

    async def filed() -> str:
        app = await build_app(Settings(data_dir=tmp_path / "data", database_url=None))
        try:
            _client, ref = await file_complaint(app, "c-cli", contact="phone",
                                                contact_value="+31 6 12345678")
            return ref
        finally:
            await app.close()

    ref = asyncio.run(filed())
    code, out = run(tmp_path, "case", "message", ref, "Wanneer kunt u langskomen?",
                    "--asks-information", "--by", "secretaris")
    assert (code, out) == (0, "LET OP: de cliënt is niet bereikbaar via de chat; handmatig "
                              "contact nodig (per telefoon).\n")
    code, out = run(tmp_path, "case", "show", ref)
    assert code == 0, out
    assert 'secretaris   message  "Wanneer kunt u langskomen?"' in out
    assert "secretaris   info_requested" in out and "bericht (zie geschiedenis)" in out
    code, out = run(tmp_path, "case", "message", ref, "   ")
    assert (code, out.strip().splitlines()[-1]) == (1, "fout: het bericht is leeg")
