"""The staff desk's accounts, one-time links, recovery codes, sessions and failed logins (issue 12).

Like every repository it never commits. It stores what it is given: password hashes (Argon2id,
made in `bot/desk/security.py`), SHA-256 hashes of random tokens, the TOTP secret encrypted with
the database's cipher. The rules (who may log in, how long to wait) live in the desk.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, literal, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import RowMapping

from storage.records import AuditEntry, NotFoundError
from storage.repositories import _new_id, _Repository
from storage.schema import (
    STAFF_ROLES,
    audit_log,
    cases,
    staff_accounts,
    staff_invites,
    staff_login_failures,
    staff_recovery_codes,
    staff_sessions,
)

__all__ = ["StaffAccount", "StaffRepository", "StaffSession"]


@dataclass(kw_only=True, frozen=True)
class StaffAccount:
    id: int
    email: str = field(repr=False)
    role: str
    organisation: str
    language: str
    password_hash: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    totp_last_step: int | None = None
    enrolled_at: datetime | None = None
    disabled_at: datetime | None = None
    failed_logins: int = 0
    wait_until: datetime | None = None
    locked_at: datetime | None = None
    created_at: datetime
    last_login_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this person (never the e-mail address)."""
        return f"desk#{self.id}"


@dataclass(kw_only=True, frozen=True)
class StaffSession:
    key_hash: str
    account_id: int | None
    data: dict[str, Any] = field(repr=False)
    created_at: datetime
    seen_at: datetime


class StaffRepository(_Repository):
    __slots__ = ()

    # --- accounts --------------------------------------------------------------------------------

    def _account(self, row: RowMapping) -> StaffAccount:
        secret = row["totp_secret"]
        return StaffAccount(
            id=row["id"], email=row["email"], role=row["role"], organisation=row["organisation"],
            language=row["language"], password_hash=row["password_hash"],
            totp_secret=None if secret is None else self._cipher.decrypt(secret).decode(),
            totp_last_step=row["totp_last_step"], enrolled_at=row["enrolled_at"],
            disabled_at=row["disabled_at"], failed_logins=row["failed_logins"],
            wait_until=row["wait_until"], locked_at=row["locked_at"], created_at=row["created_at"],
            last_login_at=row["last_login_at"],
        )

    async def add(self, email: str, role: str, organisation: str, at: datetime) -> StaffAccount:
        if role not in STAFF_ROLES:
            raise ValueError(f"unknown role {role!r}")
        new_id = _new_id(await self._conn.execute(sql_insert(staff_accounts).values(
            email=email, role=role, organisation=organisation, created_at=at)))
        return await self.get(new_id)

    async def get(self, account_id: int) -> StaffAccount:
        row = (await self._conn.execute(
            select(staff_accounts).where(staff_accounts.c.id == account_id))).mappings().one_or_none()
        if row is None:
            raise NotFoundError(f"no staff account {account_id}")
        return self._account(row)

    async def by_email(self, email: str) -> StaffAccount | None:
        row = (await self._conn.execute(
            select(staff_accounts).where(staff_accounts.c.email == email))).mappings().one_or_none()
        return None if row is None else self._account(row)

    async def accounts(self, organisation: str | None = None) -> builtins.list[StaffAccount]:
        stmt = select(staff_accounts).order_by(staff_accounts.c.email)
        if organisation is not None:
            stmt = stmt.where(staff_accounts.c.organisation == organisation)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._account(row) for row in rows]

    async def change(self, account_id: int, **values: Any) -> None:
        """Set columns of one account (the TOTP secret is encrypted here)."""
        if "totp_secret" in values and values["totp_secret"] is not None:
            values["totp_secret"] = self._cipher.encrypt(str(values["totp_secret"]).encode())
        result = await self._conn.execute(
            update(staff_accounts).where(staff_accounts.c.id == account_id).values(**values))
        if result.rowcount != 1:
            raise NotFoundError(f"no staff account {account_id}")

    # --- one-time links ---------------------------------------------------------------------------

    async def add_invite(self, account_id: int, token_hash: str, at: datetime, expires_at: datetime) -> None:
        """A new link; earlier unused links of the account stop working."""
        await self._conn.execute(update(staff_invites).where(
            staff_invites.c.account_id == account_id, staff_invites.c.used_at.is_(None)
        ).values(used_at=at))
        await self._conn.execute(sql_insert(staff_invites).values(
            account_id=account_id, token_hash=token_hash, created_at=at, expires_at=expires_at))

    async def invite(self, token_hash: str, now: datetime) -> int | None:
        """The account of a link that is unused and not expired."""
        row = (await self._conn.execute(select(staff_invites.c.account_id).where(
            staff_invites.c.token_hash == token_hash, staff_invites.c.used_at.is_(None),
            staff_invites.c.expires_at > now))).first()
        return None if row is None else int(row.account_id)

    async def use_invite(self, token_hash: str, at: datetime) -> bool:
        result = await self._conn.execute(update(staff_invites).where(
            staff_invites.c.token_hash == token_hash, staff_invites.c.used_at.is_(None)
        ).values(used_at=at))
        return result.rowcount == 1

    # --- recovery codes ---------------------------------------------------------------------------

    async def set_recovery_codes(self, account_id: int, hashes: builtins.list[str]) -> None:
        await self._conn.execute(delete(staff_recovery_codes).where(
            staff_recovery_codes.c.account_id == account_id))
        for code_hash in hashes:
            await self._conn.execute(sql_insert(staff_recovery_codes).values(
                account_id=account_id, code_hash=code_hash))

    async def use_recovery_code(self, account_id: int, code_hash: str, at: datetime) -> bool:
        result = await self._conn.execute(update(staff_recovery_codes).where(
            staff_recovery_codes.c.account_id == account_id,
            staff_recovery_codes.c.code_hash == code_hash,
            staff_recovery_codes.c.used_at.is_(None)).values(used_at=at))
        return result.rowcount == 1

    # --- sessions ---------------------------------------------------------------------------------

    async def session(self, key_hash: str) -> StaffSession | None:
        row = (await self._conn.execute(select(staff_sessions).where(
            staff_sessions.c.key_hash == key_hash))).mappings().one_or_none()
        if row is None:
            return None
        return StaffSession(key_hash=row["key_hash"], account_id=row["account_id"],
                            data=json.loads(self._cipher.decrypt(row["data"])),
                            created_at=row["created_at"], seen_at=row["seen_at"])

    async def save_session(self, key_hash: str, account_id: int | None, data: dict[str, Any],
                           at: datetime, *, new: bool) -> None:
        blob = self._cipher.encrypt(json.dumps(data).encode())
        if new:
            await self._conn.execute(sql_insert(staff_sessions).values(
                key_hash=key_hash, account_id=account_id, data=blob, created_at=at, seen_at=at))
        else:
            await self._conn.execute(update(staff_sessions).where(
                staff_sessions.c.key_hash == key_hash).values(account_id=account_id, data=blob,
                                                              seen_at=at))

    async def end_session(self, key_hash: str) -> None:
        await self._conn.execute(delete(staff_sessions).where(staff_sessions.c.key_hash == key_hash))

    async def end_sessions(self, account_id: int) -> int:
        """End every session of an account (disabled, second factor reset, 'log out everywhere')."""
        result = await self._conn.execute(delete(staff_sessions).where(
            staff_sessions.c.account_id == account_id))
        return result.rowcount

    async def prune_sessions(self, seen_before: datetime) -> int:
        result = await self._conn.execute(delete(staff_sessions).where(
            staff_sessions.c.seen_at < seen_before))
        return result.rowcount

    async def session_count(self, account_id: int) -> int:
        row = (await self._conn.execute(select(func.count()).select_from(staff_sessions).where(
            staff_sessions.c.account_id == account_id))).scalar_one()
        return int(row)

    # --- failed logins per address ------------------------------------------------------------------

    async def add_failure(self, address_hash: str, at: datetime) -> None:
        await self._conn.execute(sql_insert(staff_login_failures).values(address_hash=address_hash, at=at))

    async def failures_since(self, address_hash: str, since: datetime) -> int:
        row = (await self._conn.execute(select(func.count()).select_from(staff_login_failures).where(
            staff_login_failures.c.address_hash == address_hash,
            staff_login_failures.c.at >= since))).scalar_one()
        return int(row)

    async def prune_failures(self, before: datetime) -> None:
        await self._conn.execute(delete(staff_login_failures).where(staff_login_failures.c.at < before))

    # --- the audit log, as the desk shows it ----------------------------------------------------------

    async def audit(self, *, reference: str | None = None, organisation: str | None = None,
                    limit: int = 200) -> builtins.list[AuditEntry]:
        """Entries newest first: of one case, or of an organisation (its cases and its staff)."""
        stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if reference is not None:
            stmt = stmt.where(audit_log.c.reference == reference)
        elif organisation is not None:
            own_cases = select(cases.c.reference).where(cases.c.organisation == organisation)
            own_staff = select(literal("desk#") + cast(staff_accounts.c.id, String(16))).where(
                staff_accounts.c.organisation == organisation)
            stmt = stmt.where(audit_log.c.reference.in_(own_cases) | audit_log.c.actor.in_(own_staff))
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [AuditEntry(id=r["id"], at=r["at"], actor=r["actor"], action=r["action"],
                           reference=r["reference"], detail=r["detail"]) for r in rows]
