"""End-to-end conversations through the public service, with a real SMTP server and a real SQLite file."""

from __future__ import annotations

import re
from typing import Any

from bot.root.app import App
from tests.bot.client import Client
from tests.bot.mailbox import complaint_json, mails

ARABIC_LETTER = re.compile("[\u0600-\u06ff]")
CYRILLIC_LETTER = re.compile("[\u0400-\u04ff]")




async def begin(client: Client, lang: str, triage: str, category: str | None = None) -> None:
    """Language, then the first question: one press chooses route and category (issue 14)."""
    await client.start(hint=lang)
    await client.press(f"lang_{lang}")
    await client.press(category or triage)


async def formal_complaint(client: Client, *, name: str = "Sara Haddad", when: str = "10-11-2026",
                           contact: str = "chat") -> None:
    """Answer step 3 as the complainant, from 'who' (the typed name) to 'contact'."""
    await client.type(name)
    await client.type("Jan de Vries")
    await client.type("My volunteer did not help me with the forms and was rude.")
    await client.type(when)
    await client.type("I talked to the coordinator.")
    await client.press(f"contact_{contact}")
    if contact == "email":
        await client.type("sara@example.nl")


async def test_schema_a_dutch_mediation_request(app: App, smtp_server: Any) -> None:
    """Schema A in Dutch: step 1 did not help, step 2 sends a mediation request to the committee."""
    client = Client(app.service)
    await begin(client, "nl", "dissatisfied", "conflict")
    await client.press("talk_not_helped")
    await client.press("request_yes")
    await client.type("Piet Jansen")
    await client.press("contact_phone")
    await client.type("+31 6 12345678")
    await client.type("Wij zijn het oneens over de afspraken.")
    await client.press("confirm")
    nl = app.catalogs.get("nl")
    assert nl._("Do you also want to make a formal complaint now? You can also do it later.") in client.text()
    await client.press("finish")
    assert await app.worker.run_once() == 1

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["To"] == "klachtencommissie@regioverband.nl"
    assert mail["Subject"] == f"[{doc['reference']}] Verzoek om bemiddeling - Schema A"
    assert (doc["kind"], doc["schema"], doc["language"], doc["category"]) == (
        "mediation_request", "A", "nl", "conflict")
    assert doc["complainant"] == {"name": "Piet Jansen", "anonymous": False,
                                  "contact": {"method": "phone", "value": "+31 6 12345678"}}
    assert doc["description"] == "Wij zijn het oneens over de afspraken."
    assert doc["steps_taken"]["talked"] == "not_helped"


async def test_schema_a_formal_complaint_english(app: App, smtp_server: Any) -> None:
    """Schema A in English, skipping ahead to the formal complaint (001 art. 4.6), reaches the committee."""
    client = Client(app.service)
    await begin(client, "en", "dissatisfied", "help")
    await client.press("skip_to_complaint")
    await formal_complaint(client, contact="email")
    assert "Please check your answers:" in client.text()
    await client.press("confirm")
    receipt = client.text()
    assert re.search(r"KW-2026-\d{6}", receipt)
    assert "within one week" in receipt and "29 November 2026" in receipt
    assert "3 January 2027" in receipt  # 42 days: 001 art. 15.1
    await app.worker.run_once()

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["Subject"] == f"[{doc['reference']}] Klacht - Schema A"
    assert mail["Reply-To"] == "sara@example.nl"
    assert doc["kind"] == "complaint"
    assert doc["complainant"]["name"] == "Sara Haddad"
    assert doc["staff_involved"] == "Jan de Vries"
    assert doc["incident_dates"] == {"text": "10-11-2026", "parsed": "2026-11-10"}
    assert doc["steps_taken"] == {"talked": None, "text": "I talked to the coordinator."}
    assert doc["admissibility"]["status"] == "admissible"
    assert doc["consent"]["given"] is True
    assert doc["channel"] == "terminal"


async def test_schema_b_ukrainian_male_confidant(app: App, smtp_server: Any) -> None:
    """Schema B in Ukrainian: the confidant request states 'man' and goes to the confidants' mailbox."""
    client = Client(app.service)
    await begin(client, "uk", "behaviour", "bullying")
    await client.press("talk_not_tried")
    await client.press("pref_male")
    await client.press("anonymous")
    await client.press("contact_chat")
    await client.type("Мене ображали на зустрічі.")
    await client.press("confirm")
    await client.press("finish")
    assert CYRILLIC_LETTER.search(client.text())
    await app.worker.run_once()

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["To"] == "vertrouwenspersonen@regioverband.nl"
    assert mail["Subject"] == f"[{doc['reference']}] Verzoek vertrouwenspersoon - Schema B - voorkeur: man"
    assert (doc["kind"], doc["confidant_preference"], doc["language"]) == ("confidant_request", "male", "uk")
    assert doc["complainant"]["anonymous"] is True and doc["complainant"]["name"] is None
    assert doc["description"] == "Мене ображали на зустрічі."


async def test_schema_b_arabic_female_confidant_then_complaint(app: App, smtp_server: Any) -> None:
    """Schema B in Arabic: emergency shown, female confidant, then a formal complaint; text is RTL."""
    client = Client(app.service)
    await client.start(hint="ar")
    await client.press("lang_ar")
    await client.press("danger_yes")  # on the first question (issue 14)
    assert "\u2068112\u2069" in client.text()  # 112 isolated inside Arabic text
    await client.press("sexual_harassment")
    await client.press("talk_not_tried")
    await client.press("pref_female")
    await client.type("فاطمة")
    await client.press("contact_chat")
    await client.press("skip")
    await client.press("confirm")
    assert all(m.rtl for m in client.last)
    assert ARABIC_LETTER.search(client.text())
    assert re.search("\u2068KW-2026-\\d{6}\u2069", client.text())
    await client.press("continue")
    await formal_complaint(client, name="فاطمة", when="01-06-2026")  # within 001 art. 13.1's year
    await client.press("confirm")
    await app.worker.run_once()

    first, second = mails(smtp_server)
    assert first["Subject"].endswith("Verzoek vertrouwenspersoon - Schema B - voorkeur: vrouw")
    doc = complaint_json(second)
    assert (doc["kind"], doc["schema"], doc["category"]) == ("complaint", "B", "sexual_harassment")
    assert doc["admissibility"]["status"] == "admissible"
    assert doc["emergency_shown"] is True
    assert doc["complainant"]["name"] == "فاطمة"


async def test_not_sure_goes_to_confidant_path(app: App, smtp_server: Any) -> None:
    """'I am not sure' leads to the confidant path (Schema B), never to the person's manager."""
    client = Client(app.service)
    await begin(client, "en", "unsure")
    text = client.text()
    # Issue 14.2: the unsure client is offered the confidant, never sent to the person or manager.
    assert "A confidant can help you." in text
    assert "manager" not in text and "First talk with the person" not in text
    await client.press("talk_not_tried")
    assert "pref_female" in client.buttons()
    await client.press("pref_none")
    await client.type("Alex")
    await client.press("contact_chat")
    await client.press("skip")
    await client.press("confirm")
    await app.worker.run_once()
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert (doc["schema"], doc["category"], doc["confidant_preference"]) == ("B", "unsure", "none")
    assert mail["To"] == "vertrouwenspersonen@regioverband.nl"


async def test_anonymous_complaint_becomes_report(app: App, smtp_server: Any) -> None:
    """An anonymous complaint is registered, not handled: it is sent as a report (001 art. 13.3, 17.5)."""
    client = Client(app.service)
    await begin(client, "en", "dissatisfied", "help")
    await client.press("skip_to_complaint")
    await client.press("who_anonymous")
    assert "cannot handle a complaint without a name" in client.text()
    await client.press("adm_register")
    assert client.buttons() == ["staff_unknown"]  # no name asked
    await client.press("staff_unknown")
    await client.type("The office was closed three times.")
    await client.press("when_unknown")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    assert "report (registration only)" in client.text()
    await client.press("confirm")
    await app.worker.run_once()
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["Subject"] == f"[{doc['reference']}] Melding (alleen registratie) - Schema A"
    assert doc["kind"] == "report"
    assert doc["complainant"]["anonymous"] is True
    assert doc["admissibility"] == {"status": "anonymous", "rule": "001 art. 13.3"}
    assert doc["incident_dates"] is None and doc["staff_involved"] is None


async def test_out_of_time_complaint_sent_anyway(app: App, smtp_server: Any) -> None:
    """Events over 12 months ago are explained; sent anyway, the complaint says so (001 art. 13.1)."""
    client = Client(app.service)
    await begin(client, "en", "dissatisfied", "conflict")
    await client.press("skip_to_complaint")
    await client.press("who_self")
    await client.type("Sara")
    await client.type("Jan")
    await client.type("It went wrong.")
    await client.type("March 2024")
    assert "more than 12 months ago" in client.text()
    assert client.buttons() == ["adm_send", "adm_register", "adm_stop"]
    await client.press("adm_send")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    await client.press("confirm")
    await app.worker.run_once()
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert doc["kind"] == "complaint"
    assert doc["admissibility"] == {"status": "possibly_out_of_time", "rule": "001 art. 13.1"}
    assert doc["incident_dates"] == {"text": "March 2024", "parsed": "2024-03-31"}


async def test_complaint_by_representative(app: App, smtp_server: Any) -> None:
    """A representative files for someone else: both names and the relation are forwarded (001 art. 2.3)."""
    client = Client(app.service)
    await begin(client, "en", "dissatisfied", "help")
    await client.press("skip_to_complaint")
    await client.press("who_representative")
    assert "the name of the person you complain for" in client.text()
    await client.type("Omar Ali")
    await client.type("Layla Ali")
    await client.type("mother")
    await client.type("Jan")
    await client.type("Nobody helped my son.")
    await client.press("when_unknown")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    await client.press("confirm")
    await app.worker.run_once()
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert doc["complainant"]["name"] == "Omar Ali"
    assert doc["representative"] == {"name": "Layla Ali", "relation": "mother"}


async def test_language_switch_midway_keeps_answers(app: App, smtp_server: Any) -> None:
    """Switching language in the middle keeps every answer, and the next question is in the new language."""
    client = Client(app.service)
    await begin(client, "en", "dissatisfied", "help")
    await client.press("skip_to_complaint")
    await client.press("who_self")
    await client.type("Sara")
    await client.command("language")
    await client.press("lang_uk")
    uk = app.catalogs.get("uk")
    assert client.last[-1].text.startswith(uk._("Who is it about? Write the name of the volunteer"
                                                " or staff member. More than one person? Write all names."))
    await client.type("Jan")
    await client.type("Текст скарги")
    await client.press("when_unknown")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    await client.press("confirm")
    await app.worker.run_once()
    doc = complaint_json(mails(smtp_server)[0])
    assert (doc["language"], doc["complainant"]["name"], doc["staff_involved"]) == ("uk", "Sara", "Jan")


async def sent_complaint(app: App, client: Client) -> str:
    await begin(client, "en", "dissatisfied", "help")
    await client.press("skip_to_complaint")
    await formal_complaint(client)
    await client.press("confirm")
    match = re.search(r"KW-2026-\d{6}", client.text())
    assert match
    return match.group(0)


async def test_withdraw_sent_complaint(app: App, smtp_server: Any) -> None:
    """Withdrawing marks the case withdrawn, keeps it registered and tells the mailbox (002 §4.1)."""
    client = Client(app.service)
    reference = await sent_complaint(app, client)
    await client.command("withdraw")
    labels = {b.id: b.label for m in client.last for row in m.buttons for b in row}
    # Issue 14.4: the kind and the day, not a bare reference; "Cancel", not "No".
    assert labels == {f"wd_{reference}": "Complaint of 22 November 2026", "no": "Cancel"}
    await client.press(f"wd_{reference}")
    await client.press("yes")
    await app.worker.run_once()
    _case_mail, notice = mails(smtp_server)
    assert notice["Subject"] == f"[{reference}] Klacht ingetrokken"
    async with app.db.unit_of_work() as uow:
        case = await uow.cases.get(reference)
    assert case is not None and case.status == "withdrawn"
    await client.command("withdraw")
    assert "no sent complaint that you can withdraw" in client.text()


async def test_erase_removes_dossier(app: App, smtp_server: Any) -> None:
    """Erasing destroys the dossier now, asks the mailbox to destroy its copy, keeps only statistics."""
    client = Client(app.service)
    reference = await sent_complaint(app, client)
    await app.worker.run_once()
    await client.command("erase")
    await client.press("yes")
    await app.worker.run_once()
    assert [m["Subject"] for m in mails(smtp_server)][1] == (
        f"[{reference}] Verzoek om vernietiging van gegevens")
    async with app.db.unit_of_work() as uow:
        case = await uow.cases.get(reference)
        conversation = await uow.conversations.get("terminal", client.chat_id)
    assert case is not None and case.payload is None and case.kind == "complaint"
    assert conversation is None
    await client.command("dossier")
    assert "You have not sent any complaint or request." in client.text()


async def test_erase_before_delivery_cancels_mail(app: App, smtp_server: Any) -> None:
    """Erasing before the mail left cancels it: nothing about the client reaches the mailbox."""
    client = Client(app.service)
    await sent_complaint(app, client)
    await client.command("erase")
    await client.press("yes")
    assert await app.worker.run_once() == 0
    assert mails(smtp_server) == []


async def test_dossier_shows_everything_stored(app: App, smtp_server: Any) -> None:
    """'My file' shows the sent case with the client's own words and its status (000: see your dossier)."""
    client = Client(app.service)
    reference = await sent_complaint(app, client)
    await client.command("dossier")
    text = client.text()
    assert f"{reference}: complaint, received" in text
    assert "\u2068My volunteer did not help me with the forms and was rude.\u2069" in text


async def test_restart_of_process_resumes_conversation(
    app_factory: Any, settings_for: Any, smtp_server: Any
) -> None:
    """After the process stops midway, a new process resumes the conversation where it was."""
    settings = settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none")
    first = await app_factory(settings)
    client = Client(first.service)
    await begin(client, "en", "dissatisfied", "help")
    await client.press("skip_to_complaint")
    await client.press("who_self")
    await client.type("Sara")
    await first.close()

    second = await app_factory(settings)
    client = Client(second.service)
    await client.start()
    assert "Welcome back" in client.text()
    assert client.buttons() == ["staff_unknown"]
    await client.type("Jan")
    await client.type("Rude.")
    await client.press("when_unknown")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    await client.press("confirm")
    await second.worker.run_once()
    doc = complaint_json(mails(smtp_server)[0])
    assert (doc["complainant"]["name"], doc["staff_involved"]) == ("Sara", "Jan")


async def test_smtp_down_then_up_delivers_once(app: App, smtp_server: Any, clock: Any) -> None:
    """With the mail server down the complaint waits in the outbox; once up it arrives exactly once."""
    await smtp_server.stop()
    client = Client(app.service)
    reference = await sent_complaint(app, client)
    assert await app.worker.run_once() == 0
    clock.advance(hours=2)
    assert await app.worker.run_once() == 0
    await smtp_server.start()
    clock.advance(hours=2)
    assert await app.worker.run_once() == 1
    clock.advance(hours=2)
    assert await app.worker.run_once() == 0
    [mail] = mails(smtp_server)
    assert complaint_json(mail)["reference"] == reference


async def test_closed_case_cannot_be_withdrawn(app: App, smtp_server: Any, clock: Any) -> None:
    """A case the committee has closed since the client last wrote is not offered for withdrawal."""
    client = Client(app.service)
    reference = await sent_complaint(app, client)
    async with app.db.unit_of_work() as uow:
        await uow.cases.set_status(reference, "closed", clock())
        await uow.commit()
    await client.command("withdraw")
    assert "no sent complaint that you can withdraw" in client.text()
    await client.command("dossier")
    assert f"{reference}: complaint, closed" in client.text()
