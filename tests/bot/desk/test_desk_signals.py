"""Entering a signal in the desk (003 §5: register also what was solved on the spot), over HTTP:
the coordinator's and the secretary's form, its checks, and the figures that count it."""

from __future__ import annotations

import re
from typing import Any

from bot.root.app import App
from tests.bot.desk.conftest import Desk

SIGNAL = {"category": "bullying", "schema": "B", "channel": "in_person", "location": "Locatie Zeist",
          "language": "uk", "solved": "yes", "note": "Opgelost met een gesprek op de gang."}
REFERENCE = re.compile(r"KW-\d{4}-\d{6}")


async def test_coordinator_enters_a_signal_and_the_figures_count_it(
        app: App, desk: Desk, web: Any) -> None:
    """The signal is registered as closed for the coordinator's organisation with no personal
    data; the note is kept encrypted; it is audited by the account; the figures page says so with
    the reference and counts it per kind, category, channel, location and language."""
    coordinator = await desk.person("c@desk.test", "coordinator")
    boss = web()
    await boss.login(coordinator)
    status, page = await boss.get("/signals")
    assert status == 200 and "Geen namen of gegevens waaraan iemand te herkennen is." in page
    assert 'value="in_person"' in page and "pesten" in page
    assert await boss.post("/signals", SIGNAL) == (303, "/figures")
    _status, figures = await boss.get("/figures")
    reference = REFERENCE.search(figures)
    assert reference and "Het signaal is geregistreerd als" in figures
    async with app.db.unit_of_work(read_only=True) as uow:
        case = await uow.register.get(reference.group(0))
        events = await uow.register.events(reference.group(0))
        audit = [a for a in await uow.audit.list(50) if a.action == "case_added"]
    assert case is not None and case.kind == "signal" and case.status == "closed"
    assert (case.category, case.schema, case.channel, case.location, case.language) == (
        "bullying", "B", "in_person", "Locatie Zeist", "uk")
    assert case.payload is None and case.organisation == "default"
    assert events[0].note == SIGNAL["note"]
    assert [(a.actor, a.reference) for a in audit] == [("desk#1", reference.group(0))]
    for dimension, shown in (("Per soort", "signaal"), ("Per onderwerp", "pesten"),
                             ("Per kanaal", "persoonlijk"), ("Per locatie", "Locatie Zeist"),
                             ("Per taal", "Українська")):
        section = figures[figures.index(dimension):]
        section = section[:section.index("</section>")]
        assert shown in section and "&lt;5" in section, dimension
    _status, csv = await boss.get("/figures.csv")
    assert "kind,signal,<5" in csv and "location,Locatie Zeist,<5" in csv
    assert "gesprek" not in csv
    # the same place typed differently counts as the same location
    again = {**SIGNAL, "location": "  locatie   zeist ", "solved": "no", "note": ""}
    assert await boss.post("/signals", again) == (303, "/figures")
    async with app.db.unit_of_work(read_only=True) as uow:
        signals = [c for c in await uow.register.cases() if c.kind == "signal"]
    assert sorted((c.location, c.status) for c in signals) == [
        ("Locatie Zeist", "closed"), ("Locatie Zeist", "received")]


async def test_wrong_input_gets_one_line_per_field_and_nothing_is_saved(
        app: App, desk: Desk, web: Any) -> None:
    """Forged or missing values, a note too long, bidi and control characters: the form comes
    back (400) with one translated line per wrong field, linked to it, and no case is made."""
    coordinator = await desk.person("c@desk.test", "coordinator")
    boss = web()
    await boss.login(coordinator)
    await boss.get("/signals")
    forged = {"category": "<script>", "schema": "Z", "channel": "pigeon", "location": "Zeist\u202e",
              "language": "xx", "solved": "maybe", "note": "x" * 501}
    status, page = await boss.post("/signals", forged)
    assert status == 400 and "Er is niets opgeslagen." in page
    for field in ("category", "schema", "channel", "location", "language", "solved", "note"):
        assert page.count(f'id="e-{field}"') == 1, field
        assert re.search(rf'aria-describedby="[^"]*e-{field}"', page), field
    assert "<script>" not in page
    status, page = await boss.post("/signals", {**forged, "location": "Zeist",
                                                "note": "a\x00b"})
    assert status == 400 and 'id="e-note"' in page and 'id="e-location"' not in page
    status, page = await boss.post("/signals", {})
    assert status == 400 and page.count('class="warning" id="e-') == 4  # category, channel, language, solved
    assert (await boss.post("/signals", SIGNAL, csrf="forged"))[0] == 403
    async with app.db.unit_of_work(read_only=True) as uow:
        assert [c for c in await uow.register.cases() if c.kind == "signal"] == []


async def test_secretary_enters_a_signal_and_lands_on_its_case(
        app: App, desk: Desk, web: Any) -> None:
    """A secretary may enter a signal too (they keep the register); they land on the new case,
    still open when it was not solved on the spot; a confidant and an administrator may not."""
    secretary = await desk.person("s@desk.test", "secretary")
    clerk = web()
    await clerk.login(secretary)
    await clerk.get("/signals")
    status, where = await clerk.post("/signals", {**SIGNAL, "solved": "no", "location": ""})
    assert status == 303 and REFERENCE.fullmatch(where.rsplit("/", 1)[1])
    _status, page = await clerk.get(where)
    assert "Het signaal is geregistreerd." in page and "ontvangen" in page and "pesten" in page
    for role in ("confidant", "administrator"):
        other = web()
        await other.login(await desk.person(f"{role}@desk.test", role))
        assert (await other.get("/signals"))[0] == 403
