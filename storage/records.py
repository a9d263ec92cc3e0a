"""Plain dataclasses going in and out of the repositories, and storage errors.

Fields that hold personal data (chat ids, drafts, payloads, raw mail) are left out of `repr`, so
that a record logged by accident does not leak them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AuditEntry",
    "CaseRecord",
    "ConcurrentUpdateError",
    "NotFoundError",
    "OutboxItem",
    "StorageError",
    "StoredConversation",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class StorageError(Exception):
    """Base class of the storage package's own errors (never carries personal data)."""


class NotFoundError(StorageError, LookupError):
    """The row to change does not exist."""


class ConcurrentUpdateError(StorageError):
    """Another transaction changed or created the same row first; redo the unit of work."""


@dataclass(kw_only=True)
class StoredConversation:
    """A conversation's state and draft; `data` is encrypted at rest."""

    id: int | None = None
    channel: str
    chat_id: str = field(repr=False)
    state: str
    language: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    version: int = 0
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)


@dataclass(kw_only=True)
class CaseRecord:
    """A registered case: the one record of the `cases` table, for intake and the register alike.

    `payload` (the complaint.json) is encrypted at rest and None after erasure. Only
    `CaseRepository` loads it; the register's queries leave it None (they list and count without
    decrypting: `RegisterRepository.payload` reads it, `erased_at` says whether it is gone).
    `location`, `outcome` and the `*_at` facts are the anonymised columns the register keeps after
    the dossier is destroyed.
    """

    id: int | None = None
    reference: str
    conversation_id: int | None = None
    channel: str
    kind: str
    schema: str
    category: str | None = None
    language: str
    status: str = "received"
    mailbox: str
    payload: dict[str, Any] | None = field(default=None, repr=False)
    location: str | None = None
    outcome: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    acknowledged_at: datetime | None = None
    decided_at: datetime | None = None
    closed_at: datetime | None = None
    withdrawn_at: datetime | None = None
    erased_at: datetime | None = None
    organisation: str = "default"  # the organisation's slug in the deployment's config

    @property
    def stored_id(self) -> int:
        """`id` of a case read from the database (where it is never None)."""
        if self.id is None:
            raise ValueError(f"case {self.reference} is not stored yet")
        return self.id

    @property
    def ended_at(self) -> datetime | None:
        """When the case reached a final status (closed, withdrawn, lapsed); retention runs from it."""
        return self.closed_at or self.withdrawn_at


@dataclass(kw_only=True)
class OutboxItem:
    """An e-mail waiting to be (or already) sent; `raw` is encrypted and cleared once sent.

    `attempts` counts failed delivery attempts.
    """

    id: int | None = None
    case_reference: str | None = None
    purpose: str
    recipient: str
    message_id: str
    raw: bytes | None = field(default=None, repr=False)
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utc_now)
    last_error: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    sent_at: datetime | None = None


@dataclass(kw_only=True, frozen=True)
class AuditEntry:
    """One line of the audit log (no personal data by construction)."""

    id: int
    at: datetime
    actor: str
    action: str
    reference: str | None = None
    detail: str | None = None
