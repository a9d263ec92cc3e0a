"""The secretary's and the coordinator's work in the desk, over HTTP: asking the client for
information and reading the answer, notes and facts, the refused-mail warning, the downloads."""

from __future__ import annotations

import re
from typing import Any

from bot.root.app import App
from flows.model import Choice
from tests.bot.desk.conftest import Desk
from tests.bot.register_helpers import RecordingChannel, file_complaint

QUESTION = "Op welke datum gebeurde het precies?"
ANSWER = "Het was op dinsdag 3 november."


async def test_secretary_asks_for_information_and_reads_the_answer(
        app: App, desk: Desk, web: Any, chat: RecordingChannel) -> None:
    """The question reaches the client's chat word for word and starts 001 art. 14.3; the client's
    answer shows in the case's history; a note, a met deadline and a contact are recorded; the
    client's photo downloads as it was sent, and that is audited."""
    photo = b"\xff\xd8\xff\xe0 a photo"
    client, ref = await file_complaint(app, "c-ask", attachment=await app.files.save(photo))
    secretary = await desk.person("s@desk.test", "secretary")
    web_client = web()
    await web_client.login(secretary)
    await web_client.get(f"/cases/{ref}")
    assert await web_client.post(f"/cases/{ref}/message", {"text": QUESTION, "asks": "yes"}) == (
        303, f"/cases/{ref}")
    assert QUESTION in chat.texts("c-ask")[-1]
    await client.send(Choice(f"rp_answer:{ref}"))
    await client.type(ANSWER)
    _status, page = await web_client.get(f"/cases/{ref}")
    assert "De cliënt is bericht in de chat." in page
    history = page[page.index('id="h-history"'):page.index('id="h-trail"')]
    assert QUESTION in history and ANSWER in history and "2 weken" in history
    assert await web_client.post(f"/cases/{ref}/note", {
        "text": "Gebeld met de medewerker.", "met": "inform_staff", "contacted": "yes"}) == (
        303, f"/cases/{ref}")
    _status, page = await web_client.get(f"/cases/{ref}")
    assert "Opgeslagen." in page and "Gebeld met de medewerker." in page
    async with web_client.session.get(desk.url(f"/cases/{ref}/attachments/1")) as response:
        assert await response.read() == photo
        assert response.headers["Content-Disposition"] == f'attachment; filename="{ref}-1.jpg"'
    assert (await web_client.get(f"/cases/{ref}/attachments/2"))[0] == 404
    async with app.db.unit_of_work(read_only=True) as uow:
        assert [(a.reference, a.detail) for a in await uow.audit.list(50)
                if a.action == "desk_download"] == [(ref, "attachment 1")]
    status, refused = await web_client.post(f"/cases/{ref}/message", {"text": "  "})
    assert status == 400 and "hoogstens 2000 tekens" in refused
    status, refused = await web_client.post(f"/cases/{ref}/note", {"met": "no_such_deadline"})
    assert status == 400


async def test_refused_mail_is_shown_and_downloads_are_anonymous_and_audited(
        app: App, desk: Desk, web: Any, chat: RecordingChannel, smtp_server: Any) -> None:
    """A 550 from the organisation's mail server shows on the register and on the case; the
    secretary's export and the coordinator's CSV hold no name, text or contact; both downloads and
    the yearly report are audited."""
    smtp_server.handler.default = "550 5.1.1 mailbox unavailable"
    _client, ref = await file_complaint(app, "c-550", contact="phone", contact_value="+31 6 12345678")
    await app.worker.run_once()
    secretary = await desk.person("s@desk.test", "secretary")
    coordinator = await desk.person("c@desk.test", "coordinator")
    web_client = web()
    await web_client.login(secretary)
    _status, listing = await web_client.get("/cases")
    assert "Een mail aan de organisatie is geweigerd" in listing and "Mail geweigerd" in listing
    _status, page = await web_client.get(f"/cases/{ref}")
    assert "Een mail aan de organisatie is geweigerd" in page and "+31 6 12345678" in page
    _status, export = await web_client.get("/export?format=csv")
    assert ref in export
    for secret in ("Sara", "+31", "rude", "Jan de Vries"):
        assert secret not in export
    status, _pdf = await web_client.get("/report?year=2026")
    assert status == 200
    boss = web()
    await boss.login(coordinator)
    _status, figures = await boss.get("/figures")
    assert "&lt;5" in figures
    _status, csv = await boss.get("/figures.csv")
    assert csv.splitlines()[0].lstrip("\ufeff") == "dimension,value,count"
    assert "kind,complaint,<5" in csv
    for secret in ("Sara", "+31", "rude", ref, "Jan de Vries"):
        assert secret not in csv
    async with app.db.unit_of_work(read_only=True) as uow:
        downloads = [a.detail for a in await uow.audit.list(200) if a.action == "desk_download"]
    assert sorted(re.sub(r" \(.*", "", d or "") for d in downloads) == [
        "export csv", "figures csv", "report 2026"]
