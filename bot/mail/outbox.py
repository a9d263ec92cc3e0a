"""Delivering the outbox: transports (SMTP, files) and the worker that retries until delivered.

A complaint must never be lost. The service writes the composed mail into the outbox in the same
transaction that registers the case; this worker sends it, at least once, with the Message-ID fixed
at composition time so a resend after a crash is recognisable as the same mail. Transient failures
are retried for ever with exponential back-off (30 s doubling, capped at one hour): a mail server
that is down for days still gets the mail afterwards. Only a permanent refusal (5xx) stops it, and
that is audited.

Personal data stays out of logs and error texts: only outbox ids, case references, SMTP codes and a
short server text with any mail address removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import aiosmtplib

logger = logging.getLogger(__name__)

# --- errors -------------------------------------------------------------------------------------

_ADDRESS_LIKE = re.compile(r"\S+@\S+")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


def short_reason(text: str, limit: int = 120) -> str:
    """A server's text, safe to log and store: printable ASCII, addresses removed, truncated."""
    cleaned = _ADDRESS_LIKE.sub("<address>", _UNPRINTABLE.sub(" ", text))
    cleaned = " ".join(cleaned.split())
    return cleaned[:limit]


class MailError(Exception):
    """A delivery failed. `code` is the SMTP reply code when there is one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"smtp {code}: {reason}" if code is not None else reason)


class TransientMailError(MailError):
    """Try again later (4xx reply, connection refused or lost, timeout, local disk trouble)."""


class PermanentMailError(MailError):
    """The server refused the mail for good (5xx reply); never retry it."""


# --- transports ---------------------------------------------------------------------------------


class MailTransport(Protocol):
    """Hands one composed message to the next hop."""

    async def send(self, raw: bytes, *, sender: str, recipients: list[str], message_id: str) -> None: ...


def _classify(code: int, message: str) -> MailError:
    reason = short_reason(message)
    if 500 <= code <= 599:
        return PermanentMailError(reason, code)
    return TransientMailError(reason, code)


class SmtpTransport:
    """Delivery through an SMTP server with aiosmtplib, one connection per message.

    Mapping: 4xx replies, refused or lost connections and timeouts are transient; 5xx replies are
    permanent. Two exceptions are kept transient because they are about our configuration, not this
    message, and the mail must wait until an operator fixes them: a refused login (e.g. 535) and a
    server that does not support what we asked (e.g. STARTTLS).
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        tls: Literal["none", "starttls", "tls"] = "starttls",
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.tls = tls
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpTransport(host={self.host!r}, port={self.port}, tls={self.tls!r})"

    async def send(self, raw: bytes, *, sender: str, recipients: list[str], message_id: str) -> None:
        try:
            refused, _ = await aiosmtplib.send(
                raw,
                sender=sender,
                recipients=recipients,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password,
                use_tls=self.tls == "tls",
                start_tls=self.tls == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # Every recipient refused: permanent only if every refusal was permanent.
            errors = [_classify(r.code, r.message) for r in exc.recipients]
            transient = [e for e in errors if isinstance(e, TransientMailError)]
            raise (transient or errors or [TransientMailError("recipients refused")])[0] from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TransientMailError(f"login refused: {short_reason(exc.message)}", exc.code) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise TransientMailError(f"not supported: {short_reason(exc.message)}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Refused or lost connections, timeouts, TLS handshake errors.
            raise TransientMailError(type(exc).__name__) from None
        if refused:
            # Delivered to some recipients; a retry would duplicate it for them, so we stop here.
            codes = sorted(r.code for r in refused.values())
            logger.warning("mail %s refused by %d recipient(s), codes %s", message_id, len(refused), codes)


def safe_file_name(message_id: str) -> str:
    """A file name from a Message-ID: `<a.b@c>` -> `a.b@c`; only [A-Za-z0-9._@-] are kept."""
    name = re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip().strip("<>"))[:200].lstrip(".")
    return name or "message"


def _write_atomically(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / name
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


class FileTransport:
    """The embedded default when no SMTP server is configured: one `.eml` file per message.

    Files are `<outbox_dir>/<message id>.eml`, mode 0600, written atomically; sending the same
    message again (same Message-ID) rewrites the same file, so a retry never makes a second copy.
    """

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)

    def path_for(self, message_id: str) -> Path:
        return self.outbox_dir / f"{safe_file_name(message_id)}.eml"

    async def send(self, raw: bytes, *, sender: str, recipients: list[str], message_id: str) -> None:
        name = self.path_for(message_id).name
        try:
            await asyncio.to_thread(_write_atomically, self.outbox_dir, name, raw)
        except OSError as exc:
            raise TransientMailError(f"cannot write outbox file: {type(exc).__name__}") from None


# --- what the worker needs from the database ----------------------------------------------------


class OutboxItemLike(Protocol):
    """One queued mail (storage's OutboxItem)."""

    @property
    def id(self) -> Any: ...
    @property
    def case_reference(self) -> str | None: ...
    @property
    def purpose(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def raw(self) -> bytes | None: ...
    @property
    def attempts(self) -> int: ...


class OutboxRepository(Protocol):
    async def due(self, now: datetime, limit: int, /) -> Sequence[OutboxItemLike]: ...
    async def lease(self, ids: Sequence[Any], until: datetime, /) -> None: ...
    async def mark_sent(self, id: Any, at: datetime, /) -> None: ...
    async def mark_retry(self, id: Any, next_attempt_at: datetime, error: str, /) -> None: ...
    async def mark_failed(self, id: Any, error: str, /) -> None: ...


class AuditLog(Protocol):
    async def record(
        self,
        at: datetime,
        actor: str,
        action: str,
        /,
        reference: str | None = None,
        detail: str | None = None,
    ) -> Any: ...


class OutboxUnitOfWork(Protocol):
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def audit(self) -> AuditLog: ...
    async def commit(self) -> None: ...


class OutboxDatabase(Protocol):
    def unit_of_work(self) -> AbstractAsyncContextManager[OutboxUnitOfWork]: ...


# --- the worker ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Retry delays: `initial` doubling per failed attempt, never more than `cap`."""

    initial: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay(self, failed_attempts: int) -> timedelta:
        """The wait after the `failed_attempts`-th failure (1 -> initial, 2 -> 2x initial...)."""
        exponent = min(max(failed_attempts - 1, 0), 32)
        delay: timedelta = self.initial * (2**exponent)
        return min(delay, self.cap)


ACTOR = "outbox"
# How long a claimed mail is not due for other processes while this one sends it (far longer
# than an SMTP attempt may take: the transport's timeouts).
LEASE = timedelta(minutes=10)


class OutboxWorker:
    """Sends due outbox items; each result is committed in its own unit of work."""

    def __init__(
        self,
        db: OutboxDatabase,
        transport: MailTransport,
        sender: str,
        clock: Callable[[], datetime],
        backoff: Backoff | None = None,
        batch_size: int = 50,
        lease: timedelta = LEASE,
    ) -> None:
        self._db = db
        self._transport = transport
        self._sender = sender
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._batch_size = batch_size
        self._lease = lease

    async def run_once(self) -> int:
        """Try every due item once; returns how many were delivered.

        The due items are claimed first, in one write transaction (PostgreSQL: FOR UPDATE SKIP
        LOCKED; SQLite: the write lock): their next attempt moves `lease` ahead, so another
        process does not take them while this one sends; each result then ends the lease. A
        process that dies while sending leaves its items due again when the lease runs out."""
        now = self._clock()
        async with self._db.unit_of_work() as uow:
            items = list(await uow.outbox.due(now, self._batch_size))
            if not items:
                return 0
            await uow.outbox.lease([item.id for item in items], now + self._lease)
            await uow.commit()
        delivered = 0
        for item in items:
            if await self._deliver(item):
                delivered += 1
        return delivered

    async def run_forever(self, stop: asyncio.Event, interval: float = 10.0) -> None:
        """Run `run_once` every `interval` seconds until `stop` is set; survives any failure."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # the database may be briefly unavailable; keep going
                logger.warning("outbox run failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def _deliver(self, item: OutboxItemLike) -> bool:
        if item.raw is None:
            await self._fail(item, "no content to send")
            return False
        try:
            await self._transport.send(
                item.raw,
                sender=self._sender,
                recipients=[item.recipient],
                message_id=item.message_id,
            )
        except PermanentMailError as exc:
            await self._fail(item, str(exc))
            return False
        except TransientMailError as exc:
            await self._retry(item, str(exc))
            return False
        except Exception as exc:  # a bug or an unexpected library error: never lose the mail
            await self._retry(item, f"unexpected {type(exc).__name__}")
            return False
        now = self._clock()
        async with self._db.unit_of_work() as uow:
            await uow.outbox.mark_sent(item.id, now)
            await uow.audit.record(now, ACTOR, "mail_sent", reference=item.case_reference)
            await uow.commit()
        logger.info("outbox item %s (case %s, %s) sent", item.id, item.case_reference, item.purpose)
        return True

    async def _retry(self, item: OutboxItemLike, error: str) -> None:
        now = self._clock()
        failed_attempts = item.attempts + 1
        next_attempt = now + self._backoff.delay(failed_attempts)
        async with self._db.unit_of_work() as uow:
            await uow.outbox.mark_retry(item.id, next_attempt, error)
            await uow.commit()
        logger.info(
            "outbox item %s (case %s) attempt %d failed (%s); next attempt at %s",
            item.id,
            item.case_reference,
            failed_attempts,
            error,
            next_attempt.isoformat(),
        )

    async def _fail(self, item: OutboxItemLike, error: str) -> None:
        now = self._clock()
        async with self._db.unit_of_work() as uow:
            await uow.outbox.mark_failed(item.id, error)
            await uow.audit.record(now, ACTOR, "mail_failed", reference=item.case_reference, detail=error)
            await uow.commit()
        logger.error(
            "outbox item %s (case %s, %s) failed permanently: %s",
            item.id,
            item.case_reference,
            item.purpose,
            error,
        )
