"""Staff accounts: invitations, enrolment (password + TOTP + recovery codes), login with the
throttle, and what an administrator does to an account. Every change is audited by account id,
never by e-mail address.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import bot.desk.security as security
from bot.desk.config import DeskConfig
from flows.i18n import N_
from flows.model import LANGUAGES
from storage import UnitOfWork
from storage.schema import STAFF_ROLES
from storage.staff_accounts import StaffAccount

if TYPE_CHECKING:
    from bot.services.ports import ServiceHost

log = logging.getLogger("bot.desk")

_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f<>,;]+@[^@\s\x00-\x1f\x7f<>,;]+\.[^@\s\x00-\x1f\x7f<>,;]+$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class DeskError(Exception):
    """A refusal with a message id of the catalogs (translated where it is shown)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def normal_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise DeskError(N_("This is not an e-mail address."))
    return email


async def invite_account(host: ServiceHost, config: DeskConfig, email: str, role: str,
                         organisation: str, *, actor: str = "cli", language: str = "nl") -> str:
    """Create the account (or renew the link of one not yet enrolled) with the desk's language
    for the person; returns the one-time link."""
    email = normal_email(email)
    if role not in STAFF_ROLES:
        raise DeskError(N_("Choose one of the roles."))
    if language not in LANGUAGES:
        raise DeskError(N_("Choose one of the languages."))
    if not _SLUG.match(organisation):
        raise DeskError(N_("The organisation is its short name, e.g. default."))
    token = security.new_token()
    now = host.clock()
    async with host.db.unit_of_work() as uow:
        account = await uow.staff.by_email(email)
        if account is not None and (account.enrolled_at is not None
                                    or account.organisation != organisation):
            raise DeskError(N_("This person already has an account."))
        if account is None:
            account = await uow.staff.add(email, role, organisation, now)
        await uow.staff.change(account.id, role=role, organisation=organisation, language=language)
        await uow.staff.add_invite(account.id, security.token_hash(token), now, now + config.invite_valid)
        await uow.audit.record(now, actor, "desk_invited", None, f"account {account.id} ({role})")
        await uow.commit()
    log.info("desk: invitation for account %s", account.id)
    return f"{config.base_url}/enrol/{token}"


@dataclass(frozen=True)
class Invitation:
    """A one-time link, and whether it also went by mail (or why not: a message id)."""

    link: str
    mailed_to: str | None
    not_mailed: str | None


async def invite_and_mail(host: ServiceHost, config: DeskConfig, email: str, role: str,
                          organisation: str, *, actor: str = "cli", language: str = "nl",
                          inviter: str | None = None) -> Invitation:
    """Invite, then mail the link through the outbox when outgoing mail is set up and the link is
    one the person can open; the caller always shows the link too."""
    from bot.desk.labels import ROLES
    from bot.services.invitations import queue_invitation, why_not_mailed

    link = await invite_account(host, config, email, role, organisation, actor=actor,
                                language=language)
    reason = why_not_mailed(link, mail_configured=config.mail)
    if reason is not None:
        return Invitation(link, None, reason)
    address = normal_email(email)
    await queue_invitation(host, email=address, link=link, language=language, role=ROLES[role],
                           organisation=host.deployment.of(organisation), inviter=inviter,
                           valid=config.invite_valid, actor=actor)
    return Invitation(link, address, None)


async def reset_second_factor(host: ServiceHost, config: DeskConfig, account_id: int, *,
                              actor: str) -> str:
    """Forget the password and TOTP, end the sessions; the new one-time link enrols again."""
    token = security.new_token()
    now = host.clock()
    async with host.db.unit_of_work() as uow:
        await uow.staff.change(account_id, password_hash=None, totp_secret=None, totp_last_step=None,
                               enrolled_at=None, failed_logins=0, wait_until=None, locked_at=None)
        await uow.staff.set_recovery_codes(account_id, [])
        await uow.staff.end_sessions(account_id)
        await uow.staff.add_invite(account_id, security.token_hash(token), now, now + config.invite_valid)
        await uow.audit.record(now, actor, "desk_second_factor_reset", None, f"account {account_id}")
        await uow.commit()
    return f"{config.base_url}/enrol/{token}"


async def invited(host: ServiceHost, token: str) -> StaffAccount | None:
    """The account a one-time link enrols, while the link is valid."""
    async with host.db.unit_of_work(read_only=True) as uow:
        account_id = await uow.staff.invite(security.token_hash(token), host.clock())
        return None if account_id is None else await uow.staff.get(account_id)


def check_new_password(password: str, again: str) -> None:
    if password != again:
        raise DeskError(N_("The two passwords are not the same."))
    if not security.PASSWORD_MIN <= len(password) <= security.PASSWORD_MAX:
        raise DeskError(N_("Choose a password of at least 12 characters."))


async def enrol(host: ServiceHost, token: str, password: str, secret: str, code: str) -> tuple[
        StaffAccount, list[str]]:
    """Set the password and the TOTP secret (confirmed by a code); returns the recovery codes."""
    now = host.clock()
    step = security.totp_step(secret, code, now, None)
    if step is None:
        raise DeskError(N_("The code is not right. Type the 6 digits your app shows now."))
    codes = security.new_recovery_codes()
    password_hash = security.hash_password(password)
    async with host.db.unit_of_work() as uow:
        account_id = await uow.staff.invite(security.token_hash(token), now)
        if account_id is None or not await uow.staff.use_invite(security.token_hash(token), now):
            raise DeskError(N_("This link is no longer valid. Ask an administrator for a new one."))
        await uow.staff.change(account_id, password_hash=password_hash, totp_secret=secret,
                               totp_last_step=step, enrolled_at=now, failed_logins=0,
                               wait_until=None, locked_at=None)
        await uow.staff.set_recovery_codes(account_id, [security.recovery_hash(c) for c in codes])
        await uow.staff.end_sessions(account_id)
        await uow.audit.record(now, f"desk#{account_id}", "desk_enrolled", None, None)
        account = await uow.staff.get(account_id)
        await uow.commit()
    return account, codes


@dataclass(frozen=True)
class LoginResult:
    account: StaffAccount | None
    refusal: str | None  # a message id


WRONG = N_("The e-mail address, password or code is wrong.")
WAIT = N_("Too many attempts. Wait a moment and try again.")
LOCKED = N_("This account is locked after too many attempts. An administrator can unlock it.")


async def log_in(host: ServiceHost, throttle: security.Throttle, email: str, password: str,
                 code: str, address: str) -> LoginResult:
    """Check password and second factor, within the throttle; every outcome is audited."""
    now = host.clock()
    where = security.address_hash(address)
    try:
        email = normal_email(email)
    except DeskError:
        email = ""
    async with host.db.unit_of_work(read_only=True) as uow:
        account = await uow.staff.by_email(email) if email else None
        recent = await uow.staff.failures_since(where, now - throttle.window)
    refusal = _refused_before(account, recent, throttle, now)
    if refusal is not None:
        await _audit(host, now, account, "desk_login_throttled")
        return LoginResult(None, refusal)
    good = security.check_password(account.password_hash if account else None, password)
    step: int | None = None
    recovery = False
    if good and account is not None and account.totp_secret is not None:
        step = security.totp_step(account.totp_secret, code, now, account.totp_last_step)
        recovery = step is None and security.looks_like_recovery_code(code)
    async with host.db.unit_of_work() as uow:
        if recovery and account is not None:
            recovery = await uow.staff.use_recovery_code(account.id, security.recovery_hash(code), now)
        if account is not None and good and (step is not None or recovery):
            await uow.staff.change(account.id, failed_logins=0, wait_until=None, last_login_at=now,
                                   **({"totp_last_step": step} if step is not None else {}))
            await uow.audit.record(now, account.actor, "desk_login",
                                   None, "recovery code" if recovery else None)
            await uow.commit()
            passed = account.id
        else:
            await _count_failure(uow, throttle, account, where, now)
            await uow.commit()
            passed = None
    if passed is None:
        return LoginResult(None, WRONG)
    return LoginResult(await _reload(host, passed), None)


async def _count_failure(uow: UnitOfWork, throttle: security.Throttle, account: StaffAccount | None,
                         where: str, now: datetime) -> None:
    await uow.staff.add_failure(where, now)
    if account is not None:
        failures = account.failed_logins + 1
        wait = throttle.wait_after(failures)
        await uow.staff.change(
            account.id, failed_logins=failures, wait_until=None if wait is None else now + wait,
            **({"locked_at": now} if failures >= throttle.lock_after else {}))
        action = "desk_locked" if failures >= throttle.lock_after else "desk_login_failed"
        await uow.audit.record(now, account.actor, action, None, f"{failures} in a row")
    else:
        await uow.audit.record(now, "desk", "desk_login_failed", None, "unknown account")


def _refused_before(account: StaffAccount | None, recent: int, throttle: security.Throttle,
                    now: datetime) -> str | None:
    if recent >= throttle.per_address:
        return WAIT
    if account is None:
        return None
    if account.locked_at is not None:
        return LOCKED
    if account.disabled_at is not None or account.enrolled_at is None:
        return WRONG
    if account.wait_until is not None and now < account.wait_until:
        return WAIT
    return None


async def _reload(host: ServiceHost, account_id: int) -> StaffAccount:
    async with host.db.unit_of_work(read_only=True) as uow:
        return await uow.staff.get(account_id)


async def _audit(host: ServiceHost, now: datetime, account: StaffAccount | None, action: str) -> None:
    async with host.db.unit_of_work() as uow:
        await uow.audit.record(now, account.actor if account else "desk", action, None, None)
        await uow.commit()


async def administer(host: ServiceHost, admin: StaffAccount, account_id: int, action: str,
                     role: str | None = None) -> None:
    """disable, enable, unlock, sessions (end them), or role (with `role`), on an account of the
    admin's organisation."""
    now = host.clock()
    async with host.db.unit_of_work() as uow:
        target = await uow.staff.get(account_id)
        if target.organisation != admin.organisation:
            raise DeskError(N_("You may not do that."))
        if target.id == admin.id and action in ("disable", "role"):
            raise DeskError(N_("You cannot change your own account here."))
        if action == "disable":
            await uow.staff.change(account_id, disabled_at=now)
            await uow.staff.end_sessions(account_id)
        elif action == "enable":
            await uow.staff.change(account_id, disabled_at=None)
        elif action == "sessions":
            await uow.staff.end_sessions(account_id)
        elif action == "unlock":
            await uow.staff.change(account_id, locked_at=None, failed_logins=0, wait_until=None)
        elif action == "role" and role in STAFF_ROLES:
            await uow.staff.change(account_id, role=role)
            await uow.staff.end_sessions(account_id)
        else:
            raise DeskError(N_("Choose one of the roles."))
        await uow.audit.record(now, admin.actor, f"desk_account_{action}", None,
                               f"account {account_id}" + (f" ({role})" if role else ""))
        await uow.commit()
