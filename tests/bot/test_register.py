"""The register end to end: a settable clock drives real cases through the real service, database,
channel port and SMTP server (issue 4)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from bot.root.app import App
from bot.services import register
from bot.services.scheduler import DAILY_LEASE, run_daily, run_daily_once
from flows import register as rules
from flows.model import Choice
from tests.bot.mailbox import mails
from tests.bot.register_helpers import RecordingChannel, file_complaint
from tests.conftest import Clock


async def test_case_lives_through_every_status(app: App, chat: RecordingChannel, clock: Clock) -> None:
    """received -> acknowledged -> in_mediation -> with_committee -> decided -> board_responded ->
    closed: each change is stored with its time, audited, and told to the client in their language."""
    _client, ref = await file_complaint(app, "ua-1", lang="uk")
    uk = app.catalogs.get("uk")
    steps = [("acknowledged", None, 2), ("in_mediation", None, 3), ("with_committee", None, 20),
             ("decided", "partly_founded", 25), ("board_responded", None, 20), ("closed", None, 1)]
    times = []
    for status, outcome, days in steps:
        clock.advance(days=days)
        times.append(clock.now)
        change = await register.set_status(app, ref, status, outcome=outcome, actor="secretaris")
        assert (change.case.status, change.delivery) == (status, "sent")
        if status == "acknowledged":  # 001 art. 14.4: the staff member was informed
            await register.add_note(app, ref, None, met="inform_staff", actor="secretaris")
    view = await register.case_view(app, ref)
    assert [(e.action, e.value, e.at, e.actor) for e in view.events if e.action == "status"] == [
        ("status", s, t, "secretaris") for (s, _, _), t in zip(steps, times, strict=True)]
    assert (view.case.outcome, view.case.acknowledged_at, view.case.decided_at, view.case.closed_at) == (
        "partly_founded", times[0], times[3], times[5])
    assert [n.delivery for n in view.notifications] == ["sent"] * 6
    texts = chat.texts("ua-1")
    assert len(texts) == 6
    assert texts[3].startswith(uk._("News about {reference}:").format(reference=ref))
    assert uk._(
        "The complaints committee has decided: your complaint is partly founded. This means that "
        "the committee agrees with you on some points.") in texts[3]
    assert uk.ngettext("In {count} day we will ask you if the problem is really solved.",
                       "In {count} days we will ask you if the problem is really solved.",
                       14).format(count=14) in texts[5]
    states = {d.name: d.state(clock.now.date()) for d in view.deadlines if not d.cancelled}
    # Mediation (001 art. 14.2) suspended the decision deadline; it restarted with the committee.
    assert states == {"acknowledge": "met", "inform_staff": "met", "mediation_report": "met",
                      "decision_preferred": "met", "decision_latest": "met",
                      "board_response": "met"}
    async with app.db.unit_of_work() as uow:
        audit = [(a.action, a.detail) for a in await uow.audit.list() if a.reference == ref]
    assert ("status_changed", "decided (partly_founded)") in audit
    assert audit.count(("status_notified", "sent")) == 6


async def test_refused_status_changes_say_why(app: App, chat: RecordingChannel) -> None:
    """Skipping the committee, a decision without outcome, a final status, or an unknown reference
    are refused with a clear Dutch message, and nothing changes."""
    _client, ref = await file_complaint(app, "c-1")
    with pytest.raises(register.RegisterError, match="van 'received' naar 'decided' kan niet"):
        await register.set_status(app, ref, "decided", outcome="founded")
    await register.set_status(app, ref, "with_committee")
    with pytest.raises(register.RegisterError, match="bij 'decided' hoort een uitkomst"):
        await register.set_status(app, ref, "decided")
    with pytest.raises(register.RegisterError, match="onbekende status 'done'"):
        await register.set_status(app, ref, "done")
    await register.set_status(app, ref, "withdrawn")
    with pytest.raises(register.RegisterError, match="dit is een eindstatus"):
        await register.set_status(app, ref, "closed")
    with pytest.raises(register.RegisterError, match="onbekende referentie 'KW-2026-999999'"):
        await register.set_status(app, "KW-2026-999999", "closed")
    view = await register.case_view(app, ref)
    assert [e.value for e in view.events] == ["with_committee", "withdrawn"]
    assert len(chat.texts()) == 2


async def test_unreachable_client_needs_manual_contact_by_phone(
    app: App, clock: Clock, smtp_server: Any
) -> None:
    """Without a running chat the update falls back to the phone number the client chose; the
    register records it, the digest lists it (no number in the mail) until --contacted."""
    _client, ref = await file_complaint(app, "c-2", contact="phone", contact_value="+31 6 12345678")
    clock.advance(days=1)
    change = await register.set_status(app, ref, "acknowledged")
    assert (change.delivery, change.method) == ("manual", "phone")
    sections, queued = await register.queue_digest(app)
    assert queued
    assert sections["manual"] == [
        f"{ref}: statusbericht 'ontvangst bevestigd' niet afgeleverd (23-11-2026); "
        "neem contact op per telefoon"]
    await app.worker.run_once()
    digest = mails(smtp_server)[-1]
    body = digest.get_body().get_content()  # type: ignore[union-attr]
    assert "neem contact op per telefoon" in body and "+31" not in body and "Sara" not in body
    assert digest["To"] == "klachtencommissie@regioverband.nl"
    done = await register.add_note(app, ref, "Gebeld, klant weet het.", contacted=True)
    assert done == ["notitie opgeslagen (versleuteld)",
                    "contact vastgelegd; 1 open handmatig contact afgehandeld"]
    sections, _ = await register.queue_digest(app)
    assert sections["manual"] == []


async def test_lapse_after_two_months_unreachable(app: App, clock: Clock) -> None:
    """002 §4.1: a client unreachable for lapse_days (61) loses the case; one day less does not,
    and a client who writes again is reachable."""
    app.organisation = dataclasses.replace(app.organisation, lapse_days=61)
    _c1, lost = await file_complaint(app, "c-lost")
    c2, back = await file_complaint(app, "c-back")
    await register.set_status(app, lost, "acknowledged")  # no channel runs: manual contact
    await register.set_status(app, back, "acknowledged")
    clock.advance(days=60)
    assert await register.lapse_unreachable(app) == []
    await c2.command("help")  # the second client writes again
    clock.advance(days=1)
    assert await register.lapse_unreachable(app) == [lost]
    lapsed = (await register.case_view(app, lost)).case
    assert (lapsed.status, lapsed.closed_at) == ("lapsed", clock.now)
    assert (await register.case_view(app, back)).case.status == "acknowledged"


async def test_no_lapse_where_the_procedure_has_no_such_rule(app: App, clock: Clock) -> None:
    """001 has no lapse for an unreachable client: the default organisation's cases never lapse."""
    assert app.organisation.lapse_days is None
    _client, ref = await file_complaint(app, "c-stays")
    await register.set_status(app, ref, "acknowledged")
    clock.advance(days=400)
    assert await register.lapse_unreachable(app) == []
    assert (await register.case_view(app, ref)).case.status == "acknowledged"


async def test_digest_once_a_day_lists_due_and_overdue(
    app: App, chat: RecordingChannel, clock: Clock, smtp_server: Any
) -> None:
    """The daily run mails the committee the deadlines due within 3 days or overdue, once a day."""
    _client, ref = await file_complaint(app, "c-3")  # received 22-11-2026
    clock.advance(days=4)  # 26-11: acknowledgement due 29-11 (in 3 days)
    result = await run_daily_once(app)
    assert result is not None and result.digest_sent
    assert await run_daily_once(app) is None  # the same day again: nothing
    await app.worker.run_once()
    first = mails(smtp_server)[-1]
    assert first["Subject"] == "[Klachtwijzer] Dagoverzicht register 26-11-2026: 2 termijnen"
    body = first.get_body().get_content()  # type: ignore[union-attr]
    assert (f"- {ref} (klacht, ontvangen): ontvangstbevestiging (001 art. 14.1) uiterlijk "
            "29-11-2026, over 3 dagen") in body
    clock.advance(days=4)  # 30-11: overdue by one day
    lines = await register.list_cases(app, due_only=True)
    assert [line.case.reference for line in lines] == [ref]
    assert await run_daily_once(app) is not None
    await app.worker.run_once()
    body = mails(smtp_server)[-1].get_body().get_content()  # type: ignore[union-attr]
    assert "uiterlijk 29-11-2026, VERLOPEN sinds 1 dag" in body


async def test_daily_run_that_died_halfway_runs_again_after_an_hour(
    app: App, chat: RecordingChannel, clock: Clock, smtp_server: Any
) -> None:
    """A daily run claimed by a process that then died is run again after the lease, once."""
    _client, ref = await file_complaint(app, "c-dead")
    clock.advance(days=4)  # the acknowledgement is due: the digest has something to say
    now = clock.now
    local = now.astimezone(register.ORG_TZ)
    async with app.db.unit_of_work() as uow:  # another process claimed today's run and died
        assert await uow.register.claim_daily_run(
            now, datetime.combine(local.date(), time(0), register.ORG_TZ), DAILY_LEASE)
        await uow.commit()
    assert await run_daily_once(app) is None  # it may still be running
    clock.advance(minutes=30)
    assert await run_daily_once(app) is None
    clock.advance(minutes=31)
    result = await run_daily_once(app)  # more than an hour: taken over
    assert result is not None and result.digest_sent
    clock.advance(hours=2)
    assert await run_daily_once(app) is None  # finished: not again today
    await app.worker.run_once()
    digests = [m for m in mails(smtp_server) if "Dagoverzicht" in m["Subject"]]
    assert [m["Subject"] for m in digests] == [
        f"[Klachtwijzer] Dagoverzicht register {local.strftime('%d-%m-%Y')}: 2 termijnen"]
    assert ref in digests[0].get_body().get_content()  # type: ignore[union-attr]


async def test_daily_run_forgets_old_update_ids(app: App, chat: RecordingChannel, clock: Clock) -> None:
    """The daily run forgets update ids older than 30 days and keeps the recent ones."""
    async with app.db.unit_of_work() as uow:
        await uow.inbound.seen("telegram", "old", clock.now)
        await uow.commit()
    clock.advance(days=29)
    async with app.db.unit_of_work() as uow:
        await uow.inbound.seen("telegram", "recent", clock.now)
        await uow.commit()
    clock.advance(days=2)
    result = await run_daily_once(app)
    assert result is not None and result.pruned_updates == 1
    async with app.db.unit_of_work() as uow:
        assert (await uow.inbound.seen("telegram", "recent", clock.now),
                await uow.inbound.seen("telegram", "old", clock.now)) == (True, False)


async def test_scheduler_loop_delivers_and_stops(app: App, chat: RecordingChannel, clock: Clock) -> None:
    """run_daily delivers a pending client message (queued while the chat ran elsewhere) and stops."""
    import asyncio

    _client, ref = await file_complaint(app, "c-4")
    async with app.db.unit_of_work() as uow:
        await uow.register.add_notification(ref, "status", clock.now, status="received")
        await uow.commit()
    stop = asyncio.Event()
    task = asyncio.create_task(run_daily(app, stop, interval=0.01))
    for _ in range(200):
        if chat.delivered:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(chat.texts("c-4")) == 1


async def test_follow_up_question_and_answers(
    app: App, chat: RecordingChannel, clock: Clock, smtp_server: Any
) -> None:
    """14 days after closing, the client is asked in Arabic; 'no' with a comment is stored
    (comment encrypted) and reaches the coordinator's attention in the digest."""
    client, ref = await file_complaint(app, "c-ar", lang="ar")
    await register.set_status(app, ref, "acknowledged")
    await register.set_status(app, ref, "closed")
    clock.advance(days=13)
    assert await register.send_follow_ups(app) == 0
    clock.advance(days=1)
    assert await register.send_follow_ups(app) == 1
    assert await register.send_follow_ups(app) == 0  # asked once
    ar = app.catalogs.get("ar")
    question = chat.delivered[-1][1]
    assert question.text == rules.follow_up_message(ar, ref).text and question.rtl
    assert question.button_ids() == [f"fu_yes:{ref}", f"fu_partly:{ref}", f"fu_no:{ref}"]
    await client.send(Choice(f"fu_no:{ref}"))
    assert [m.text for m in client.last] == [
        ar._("Thank you for telling us. A coordinator will look at it and contact you."),
        ar._("Do you want to tell us more? Type it here. Or press the button.")]
    await client.type("لم يتغير شيء")
    assert client.last[0].text == ar._("Thank you. We passed it on.")
    async with app.db.unit_of_work() as uow:
        answer = await uow.register.follow_up(ref)
    assert answer is not None and (answer.answer, answer.comment) == ("no", "لم يتغير شيء")
    sections, _ = await register.queue_digest(app)
    assert sections["attention"] == [f"{ref}: antwoord 'nee' op 06-12-2026; met toelichting"]
    await register.add_note(app, ref, None, attention_done=True)
    sections, _ = await register.queue_digest(app)
    assert sections["attention"] == []


async def test_follow_up_forged_or_foreign_reference_is_refused(
    app: App, chat: RecordingChannel
) -> None:
    """A follow-up button for someone else's case, or malformed, records nothing."""
    _owner, ref = await file_complaint(app, "owner")
    stranger, _ = await file_complaint(app, "stranger")
    en = app.catalogs.get("en")
    await stranger.send(Choice(f"fu_no:{ref}"))
    assert stranger.last[0].text == en._("This button is no longer valid. Please use the buttons below.")
    await stranger.send(Choice("fu_maybe:KW-2026-000001"))
    await stranger.send(Choice("fu_no:" + "X" * 5000))
    async with app.db.unit_of_work() as uow:
        assert await uow.register.follow_up(ref) is None


async def test_purge_keeps_one_day_short_and_destroys_one_day_past(
    app: App, chat: RecordingChannel, clock: Clock
) -> None:
    """001 art. 17.4: a dossier closed 5 years ago minus one day stays; plus one day it is gone,
    with its attachment and outbox copies; its anonymised row stays."""
    old_file = await app.files.save(b"photo of the old case")
    new_file = await app.files.save(b"photo of the newer case")
    _c1, old = await file_complaint(app, "old", attachment=old_file)
    await app.worker.run_once()
    await register.set_status(app, old, "closed")
    clock.advance(days=1)
    _c2, new = await file_complaint(app, "new", attachment=new_file)
    await app.worker.run_once()
    await register.set_status(app, new, "closed")
    clock.now = datetime(2031, 11, 22, 9, 30, tzinfo=UTC) + timedelta(days=1) - timedelta(seconds=1)
    result = await register.purge(app)
    assert (result.cases, result.files, result.outbox_rows) == ((old,), 1, 1)
    assert not app.files.exists(old_file) and app.files.exists(new_file)
    async with app.db.unit_of_work() as uow:
        old_case = await uow.cases.get(old)
        new_case = await uow.cases.get(new)
        old_mail = await uow.outbox.count_by_status()
    assert old_case is not None and new_case is not None
    assert (old_case.payload, old_case.conversation_id, old_case.erased_at) == (None, None, clock.now)
    assert new_case.payload is not None and old_mail["sent"] == 1
    rows = await register.app_rows(app)
    assert [r["reference"] for r in rows] == [old, new]
    clock.advance(days=1)
    assert (await register.purge(app)).cases == (new,)
    assert not app.files.exists(new_file)


async def test_signal_solved_on_the_spot(app: App, clock: Clock) -> None:
    """A coordinator registers a signal solved on the spot (003 §5): closed at once, no client."""
    case = await register.add_case(app, kind="signal", schema="A", category="help", language="uk",
                                   location="Locatie Zeist", note="Uitgelegd")
    assert (case.reference, case.status, case.closed_at, case.location) == (
        "KW-2026-000001", "closed", clock.now, "Locatie Zeist")
    with pytest.raises(register.RegisterError, match="onbekende categorie 'hunger'"):
        await register.add_case(app, category="hunger")
    rows = await register.app_rows(app, date(2026, 1, 1), date(2026, 12, 31))
    assert rows == [{
        "reference": "KW-2026-000001", "kind": "signal", "schema": "A", "category": "help",
        "language": "uk", "channel": "in_person", "organisation": "Steunpunt Vluchtelingen De Bilt",
        "location": "Locatie Zeist", "month": "2026-11", "status": "closed", "outcome": None,
        "days_to_acknowledgement": None, "days_to_decision": None, "acknowledged_on_time": None,
        "decided_on_time": None, "follow_up": None}]
