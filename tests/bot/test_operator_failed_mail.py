"""Issue 14: a mail the organisation's server refused for good (5xx) is visible where people look:
`case show`, `case list`, the top of the digest, and the fallback address when the committee's own
mailbox refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes
from typing import Any

from bot.root.app import App
from bot.services.register import add_case, case_view, digest_sections, failed_mails, list_cases, queue_digest
from storage import OutboxItem

REFUSAL = "550 5.7.1 <klachten@example.org> rejected by policy"


def cli(app: App, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `klachtwijzer` command on the app's data dir and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "KLACHTWIJZER_", "DATABASE_"))}
    env["KLACHTWIJZER_DATA_DIR"] = str(app.settings.data_dir)
    if app.settings.database_url:
        env["DATABASE_URL"] = app.settings.database_url
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


async def case_with_refused_mail(app: App, smtp_server: Any) -> str:
    """A registered case whose mail to the committee the real SMTP server refuses with a 550."""
    case = await add_case(app, kind="signal", schema="", category=None, language="nl",
                          channel="in_person", location=None, status="received", note=None, actor="test")
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        await uow.outbox.add(OutboxItem(
            purpose="case", recipient=app.organisation.procedure.mailboxes["committee"],
            message_id="<refused-1@klachtwijzer.test>", raw=b"Subject: x\r\n\r\nx\r\n",
            next_attempt_at=now, created_at=now, case_reference=case.reference))
        await uow.commit()
    smtp_server.handler.replies = [REFUSAL]
    await app.worker.run_once()
    return case.reference


async def test_refused_case_mail_shows_in_case_show_list_and_digest(app: App, smtp_server: Any) -> None:
    """A 550 for a case's mail: warning in `case show`, marker in `case list`, first in the digest."""
    reference = await case_with_refused_mail(app, smtp_server)
    [refused] = await failed_mails(app)
    assert (refused.reference, refused.purpose) == (reference, "case")
    [line] = [line for line in await list_cases(app) if line.case.reference == reference]
    assert line.failed == (refused,)
    assert (await case_view(app, reference)).failed == (refused,)
    sections = await digest_sections(app)
    assert next(iter(sections)) == "failed" and reference in sections["failed"][0]

    shown = cli(app, "case", "show", reference)
    assert shown.returncode == 0, shown.stderr
    [warning] = [x for x in shown.stdout.splitlines() if x.startswith("LET OP:")]
    assert "GEWEIGERD op" in warning and "smtp 550: 5.7.1 <address> rejected by policy" in warning
    assert "klachten@example.org" not in shown.stdout
    listed = cli(app, "case", "list")
    assert listed.returncode == 0, listed.stderr
    [row] = [x for x in listed.stdout.splitlines() if x.startswith(reference)]
    assert row.endswith("[MAIL GEWEIGERD]")


async def test_digest_goes_to_fallback_when_the_committee_mailbox_refuses(
    app_factory: Any, settings_for: Any, smtp_server: Any
) -> None:
    """The committee refused the digest: the next digest names it at the top and also goes to the
    fallback address."""
    app = await app_factory(settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                                         smtp_tls="none", fallback_mail="coordinator@example.nl"))
    committee = app.organisation.procedure.mailboxes["committee"]
    smtp_server.handler.replies = [REFUSAL]
    await queue_digest(app, force=True)
    await app.worker.run_once()
    assert [m.recipient for m in await failed_mails(app)] == [committee]

    sections, queued = await queue_digest(app)
    assert queued and sections["failed"]
    await app.worker.run_once()
    recipients = sorted(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert recipients == sorted([committee, "coordinator@example.nl"])
    mail = message_from_bytes(smtp_server.handler.received[-1].content)
    assert "1 mail geweigerd" in str(mail["Subject"])
    body = mail.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    first_section = body.replace("\r\n", "\n").split("\n\n")[1]
    assert first_section.startswith("LET OP: mail die de mailserver") and "dagoverzicht" in first_section


async def test_without_fallback_the_digest_goes_only_to_the_committee(app: App, smtp_server: Any) -> None:
    """No KLACHTWIJZER_FALLBACK_MAIL: the digest still lists the refusal and goes to the committee."""
    smtp_server.handler.replies = [REFUSAL]
    await queue_digest(app, force=True)
    await app.worker.run_once()
    sections, queued = await queue_digest(app)
    await app.worker.run_once()
    assert queued and len(sections["failed"]) == 1
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        [app.organisation.procedure.mailboxes["committee"]]]
