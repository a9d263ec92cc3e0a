"""bot.mail.outbox: transports against a real SMTP server, and the retrying worker on real storage."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from bot.mail.compose import POLICY, compose_case_mail
from bot.mail.outbox import (
    Backoff,
    FileTransport,
    OutboxWorker,
    PermanentMailError,
    SmtpTransport,
    TransientMailError,
)
from storage import Cipher, Database, OutboxItem, generate_key
from tests.bot.mailbox import complaint_json

SENDER = "klachtwijzer@steunpunt.example"
RECIPIENT = "vertrouwenspersonen@regioverband.nl"
MESSAGE_ID = "<kw-2026-000123.1@steunpunt.example>"
START = datetime(2026, 3, 5, 13, 4, tzinfo=UTC)


class FakeClock:
    """A UTC clock the test moves forward by hand (no sleeping)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg



def raw_mail(doc: dict[str, Any]) -> bytes:
    msg = compose_case_mail(doc, sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID)
    return msg.as_bytes()


def transport_for(server: Any) -> SmtpTransport:
    return SmtpTransport(server.host, server.port, tls="none", timeout=5)


# --- FileTransport ------------------------------------------------------------------------------


async def test_file_transport_writes_one_private_eml(tmp_path: Path, mail_doc: Any) -> None:
    """FileTransport writes `<message id>.eml` with mode 0600 holding the raw mail."""
    raw = raw_mail(mail_doc())
    outbox = tmp_path / "outbox"
    await FileTransport(outbox).send(raw, sender=SENDER, recipients=[RECIPIENT], message_id=MESSAGE_ID)
    path = outbox / "kw-2026-000123.1@steunpunt.example.eml"
    assert (
        sorted(os.listdir(outbox)),
        stat.S_IMODE(path.stat().st_mode),
        path.read_bytes(),
    ) == ([path.name], 0o600, raw)


async def test_file_transport_is_idempotent_per_message_id(tmp_path: Path, mail_doc: Any) -> None:
    """Sending the same Message-ID twice leaves one file and no temporary files."""
    raw = raw_mail(mail_doc())
    transport = FileTransport(tmp_path)
    for _ in range(2):
        await transport.send(raw, sender=SENDER, recipients=[RECIPIENT], message_id=MESSAGE_ID)
    assert sorted(os.listdir(tmp_path)) == ["kw-2026-000123.1@steunpunt.example.eml"]


async def test_file_transport_name_cannot_leave_the_directory(tmp_path: Path) -> None:
    """A hostile Message-ID cannot make the file land outside the outbox directory."""
    outbox = tmp_path / "outbox"
    await FileTransport(outbox).send(
        b"x", sender=SENDER, recipients=[RECIPIENT], message_id="<../../evil/x@y>"
    )
    assert (sorted(os.listdir(outbox)), sorted(os.listdir(tmp_path))) == (
        ["_.._evil_x@y.eml"],
        ["outbox"],
    )


# --- SmtpTransport against a real aiosmtpd server -----------------------------------------------


async def test_smtp_transport_delivers_to_real_server(smtp_server: Any, mail_doc: Any) -> None:
    """The server receives the mail: same envelope, same Message-ID, same complaint.json."""
    doc = mail_doc()
    await transport_for(smtp_server).send(
        raw_mail(doc),
        sender=f"Klachtwijzer <{SENDER}>",  # a display name is reduced to the address
        recipients=[RECIPIENT],
        message_id=MESSAGE_ID,
    )
    [received] = smtp_server.handler.received
    msg = parse(received.content)
    assert (received.mail_from, received.rcpt_tos, msg["Message-ID"], complaint_json(msg)) == (
        SENDER,
        [RECIPIENT],
        MESSAGE_ID,
        doc,
    )


@pytest.mark.parametrize("reply", ["421 4.3.2 Service shutting down", "451 4.3.0 Try again later"])
async def test_smtp_4xx_is_transient(smtp_server: Any, mail_doc: Any, reply: str) -> None:
    """A 4xx answer to DATA raises TransientMailError with that code."""
    smtp_server.handler.replies = [reply]
    with pytest.raises(TransientMailError) as caught:
        await transport_for(smtp_server).send(
            raw_mail(mail_doc()), sender=SENDER, recipients=[RECIPIENT], message_id=MESSAGE_ID
        )
    assert (caught.value.code, smtp_server.handler.received) == (int(reply[:3]), [])


async def test_smtp_550_is_permanent_and_names_no_address(smtp_server: Any, mail_doc: Any) -> None:
    """A 550 raises PermanentMailError whose text keeps the code but drops the address."""
    smtp_server.handler.replies = ["550 5.1.1 <klant@example.org> mailbox unavailable"]
    with pytest.raises(PermanentMailError) as caught:
        await transport_for(smtp_server).send(
            raw_mail(mail_doc()), sender=SENDER, recipients=[RECIPIENT], message_id=MESSAGE_ID
        )
    assert str(caught.value) == "smtp 550: 5.1.1 <address> mailbox unavailable"


async def test_smtp_connection_refused_is_transient(smtp_unused_port: int) -> None:
    """Nobody listening on the port raises TransientMailError (retry later)."""
    transport = SmtpTransport("127.0.0.1", smtp_unused_port, tls="none", timeout=5)
    with pytest.raises(TransientMailError):
        await transport.send(b"x", sender=SENDER, recipients=[RECIPIENT], message_id=MESSAGE_ID)


# --- OutboxWorker on the real storage.Database --------------------------------------------------


@pytest.fixture
def outbox_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def outbox_db(tmp_path: Path, outbox_clock: FakeClock) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'klachtwijzer.db'}"
    db = await Database.open(url, Cipher([generate_key()]), clock=outbox_clock)
    try:
        yield db
    finally:
        await db.close()


async def enqueue(db: Database, raw: bytes, now: datetime) -> int:
    async with db.unit_of_work() as uow:
        item_id = await uow.outbox.add(
            OutboxItem(
                case_reference="KW-2026-000123",
                purpose="case",
                recipient=RECIPIENT,
                message_id=MESSAGE_ID,
                raw=raw,
                next_attempt_at=now,
                created_at=now,
            )
        )
        await uow.commit()
    return item_id


async def load(db: Database, item_id: int) -> OutboxItem:
    async with db.unit_of_work(read_only=True) as uow:
        item = await uow.outbox.get(item_id)
    assert item is not None
    return item


async def audit_actions(db: Database) -> list[tuple[str, str | None, str | None]]:
    async with db.unit_of_work(read_only=True) as uow:
        entries = await uow.audit.list()
    return [(e.action, e.reference, e.detail) for e in reversed(entries)]


def worker_for(db: Database, server: Any, clock: FakeClock) -> OutboxWorker:
    return OutboxWorker(db, transport_for(server), SENDER, clock)


def test_backoff_doubles_from_30_seconds_and_caps_at_one_hour() -> None:
    """Retry delays are 30 s, 60 s, 120 s ... and never more than one hour."""
    delays = [Backoff().delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10_000)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


async def test_worker_retries_421_then_delivers_once(
    outbox_db: Database, outbox_clock: FakeClock, smtp_server: Any, mail_doc: Any
) -> None:
    """421 three times then 250: one delivery, same Message-ID, retries 30/60/120 s apart."""
    smtp_server.handler.replies = ["421 4.3.2 Try again later"] * 3
    item_id = await enqueue(outbox_db, raw_mail(mail_doc()), outbox_clock())
    worker = worker_for(outbox_db, smtp_server, outbox_clock)

    waits: list[float] = []
    results: list[int] = []
    for _ in range(3):
        results.append(await worker.run_once())
        item = await load(outbox_db, item_id)
        waits.append((item.next_attempt_at - outbox_clock()).total_seconds())
        results.append(await worker.run_once())  # not due yet: the server is not contacted
        outbox_clock.now = item.next_attempt_at
    results.append(await worker.run_once())

    item = await load(outbox_db, item_id)
    [received] = smtp_server.handler.received
    assert (
        results,
        waits,
        smtp_server.handler.data_calls,
        parse(received.content)["Message-ID"],
        item.status,
        item.attempts,
        item.raw,
        await audit_actions(outbox_db),
    ) == (
        [0, 0, 0, 0, 0, 0, 1],
        [30, 60, 120],
        4,
        MESSAGE_ID,
        "sent",
        3,
        None,
        [("mail_sent", "KW-2026-000123", None)],
    )


async def test_worker_550_fails_is_audited_and_not_retried(
    outbox_db: Database, outbox_clock: FakeClock, smtp_server: Any, mail_doc: Any
) -> None:
    """550: the item is marked failed, audited as mail_failed, and never sent again."""
    smtp_server.handler.replies = ["550 5.7.1 Message rejected"]
    item_id = await enqueue(outbox_db, raw_mail(mail_doc()), outbox_clock())
    worker = worker_for(outbox_db, smtp_server, outbox_clock)

    first = await worker.run_once()
    outbox_clock.advance(timedelta(days=1))
    second = await worker.run_once()

    item = await load(outbox_db, item_id)
    assert (
        first,
        second,
        smtp_server.handler.data_calls,
        item.status,
        await audit_actions(outbox_db),
    ) == (
        0,
        0,
        1,
        "failed",
        [("mail_failed", "KW-2026-000123", "smtp 550: 5.7.1 Message rejected")],
    )


async def test_worker_survives_five_days_of_server_down(
    outbox_db: Database, outbox_clock: FakeClock, smtp_server: Any, mail_doc: Any
) -> None:
    """Server down for 5 simulated days: still pending (waits capped at 1 h), then delivered."""
    await smtp_server.stop()
    item_id = await enqueue(outbox_db, raw_mail(mail_doc()), outbox_clock())
    worker = worker_for(outbox_db, smtp_server, outbox_clock)

    longest_wait = timedelta(0)
    end = START + timedelta(days=5)
    while outbox_clock() < end:
        await worker.run_once()
        item = await load(outbox_db, item_id)
        longest_wait = max(longest_wait, item.next_attempt_at - outbox_clock())
        outbox_clock.advance(timedelta(minutes=20))
    down = await load(outbox_db, item_id)

    await smtp_server.start()  # same port
    outbox_clock.advance(timedelta(hours=1))
    delivered = await worker.run_once()
    up = await load(outbox_db, item_id)
    [received] = smtp_server.handler.received
    assert (
        down.status,
        down.attempts >= 100,
        longest_wait,
        delivered,
        up.status,
        parse(received.content)["Message-ID"],
    ) == ("pending", True, timedelta(hours=1), 1, "sent", MESSAGE_ID)


async def test_worker_logs_no_personal_data(
    outbox_db: Database,
    outbox_clock: FakeClock,
    smtp_server: Any,
    mail_doc: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker logs name outbox ids and references, never addresses or the client's words."""
    smtp_server.handler.replies = ["451 4.2.0 <klant@example.org> over quota"]
    doc = mail_doc()
    await enqueue(outbox_db, raw_mail(doc), outbox_clock())
    worker = worker_for(outbox_db, smtp_server, outbox_clock)
    with caplog.at_level(logging.DEBUG, logger="bot.mail.outbox"):
        await worker.run_once()
        outbox_clock.advance(timedelta(minutes=1))
        await worker.run_once()
    text = caplog.text
    leaks = [s for s in (RECIPIENT, "klant@example.org", doc["description"]) if s in text]
    assert (leaks, "KW-2026-000123" in text) == ([], True)


async def test_run_forever_delivers_and_stops(
    outbox_db: Database, outbox_clock: FakeClock, smtp_server: Any, mail_doc: Any
) -> None:
    """run_forever sends due mail and returns promptly once the stop event is set."""
    await enqueue(outbox_db, raw_mail(mail_doc()), outbox_clock())
    stop = asyncio.Event()
    task = asyncio.create_task(
        worker_for(outbox_db, smtp_server, outbox_clock).run_forever(stop, interval=0.01)
    )
    for _ in range(500):
        if smtp_server.handler.received:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(smtp_server.handler.received) == 1


async def test_two_workers_on_one_database_send_every_mail_once(
    database_url: str, outbox_clock: FakeClock, smtp_server: Any, mail_doc: Any
) -> None:
    """Two workers (two processes' engines) on one database, at the same time: each mail once."""
    cipher = Cipher([generate_key()])
    first = await Database.open(database_url, cipher, clock=outbox_clock)
    second = await Database.open(database_url, cipher, clock=outbox_clock)
    try:
        for n in range(30):
            async with first.unit_of_work() as uow:
                await uow.outbox.add(OutboxItem(
                    case_reference=f"KW-2026-{n:06d}", purpose="case", recipient=RECIPIENT,
                    message_id=f"<kw-2026-{n:06d}.1@steunpunt.example>",
                    raw=compose_case_mail(
                        mail_doc(f"KW-2026-{n:06d}"), sender=SENDER, recipient=RECIPIENT,
                        message_id=f"<kw-2026-{n:06d}.1@steunpunt.example>").as_bytes(),
                    next_attempt_at=outbox_clock(),
                    created_at=outbox_clock()))
                await uow.commit()
        workers = [OutboxWorker(db, transport_for(smtp_server), SENDER, outbox_clock, batch_size=7)
                   for db in (first, second)]
        for _ in range(5):
            await asyncio.gather(*(worker.run_once() for worker in workers))
        ids = sorted(parse(m.content)["Message-ID"] for m in smtp_server.handler.received)
    finally:
        await first.close()
        await second.close()
    assert ids == sorted(f"<kw-2026-{n:06d}.1@steunpunt.example>" for n in range(30))


async def test_a_claimed_mail_is_not_due_for_another_worker_until_its_lease_ran_out(
    outbox_db: Database, outbox_clock: FakeClock, smtp_server: Any, mail_doc: Any
) -> None:
    """A mail claimed by a process that then died is sent by another one after the lease."""
    item_id = await enqueue(outbox_db, raw_mail(mail_doc()), outbox_clock())
    async with outbox_db.unit_of_work() as uow:  # claimed, then the claimer is gone
        [item] = await uow.outbox.due(outbox_clock(), 10)
        await uow.outbox.lease([item.id], outbox_clock() + timedelta(minutes=10))
        await uow.commit()
    worker = worker_for(outbox_db, smtp_server, outbox_clock)
    before = await worker.run_once()
    outbox_clock.advance(timedelta(minutes=10))
    after = await worker.run_once()
    assert (before, after, (await load(outbox_db, item_id)).status,
            len(smtp_server.handler.received)) == (0, 1, "sent", 1)
