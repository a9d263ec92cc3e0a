"""The organisation a deployment serves: its procedure, mailboxes, staff and periods (from its TOML)."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.mail.pgp import PublicKey, keys_by_address, load_mailbox_keys
from flows.procedure import Procedure, load_procedure, procedure_path
from flows.rules import normalise_email


@dataclass(frozen=True)
class Confidant:
    """A confidant (vertrouwenspersoon): a staff member with one or more addresses on channels.

    Telegram by numeric user id (never a username), WhatsApp by number (wa_id: digits only).
    Offers go to every address on a channel running in this process; they chat where they accept.
    """

    telegram_id: int | None
    gender: Literal["female", "male"]
    whatsapp: str | None = None
    desk: str | None = None  # the e-mail of their desk account (role confidant, same organisation)

    @property
    def addresses(self) -> tuple[tuple[str, str], ...]:
        """(channel, chat id) of each address."""
        out: list[tuple[str, str]] = []
        if self.telegram_id is not None:
            out.append(("telegram", str(self.telegram_id)))
        if self.whatsapp is not None:
            out.append(("whatsapp", self.whatsapp))
        if self.desk is not None:
            out.append(("desk", self.desk))
        return tuple(out)

    @property
    def key(self) -> int:
        """A stable number for storage (who accepted, one live chat each): the Telegram id, or
        the WhatsApp number negated (Telegram ids are positive, so the two never meet)."""
        if self.telegram_id is not None:
            return self.telegram_id
        if self.whatsapp is not None:
            return -int(self.whatsapp)
        if self.desk is not None:  # below every negated WhatsApp number (at most 15 digits)
            digest = hashlib.sha256(self.desk.encode()).hexdigest()[:12]
            return -(10**16 + int(digest, 16))
        raise ValueError("a confidant without an address")


@dataclass(frozen=True)
class Organisation:
    """The organisation running the bot: its name, procedure, mailboxes, staff and periods."""

    name: str
    procedure: Procedure
    slug: str = "default"  # how links, cases and staff name it in a deployment of several
    retention_years: int = 5  # 001 art. 17.4
    mailboxes: dict[str, str] = field(default_factory=dict)
    confidants: tuple[Confidant, ...] = ()
    coordinators: tuple[int, ...] = ()  # Telegram user ids; never usernames
    coordinator_numbers: tuple[str, ...] = ()  # WhatsApp numbers (wa_id: digits only)
    handoff_timeout_minutes: int = 30
    follow_up_days: int = 14  # 003 §4: ask whether the problem was really solved
    lapse_days: int | None = None  # 002 §4.1 (Lentl: 61): unreachable this long; None: never
    whatsapp_template: str | None = None  # used outside WhatsApp's 24-hour window
    # OpenPGP public keys by lower-cased mailbox address: mail to it is sent encrypted (PGP/MIME).
    mailbox_keys: dict[str, PublicKey] = field(default_factory=dict)

    @property
    def coordinator_addresses(self) -> tuple[tuple[str, str], ...]:
        """(channel, chat id) of each coordinator: Telegram user ids and WhatsApp numbers."""
        return (*(("telegram", str(user_id)) for user_id in self.coordinators),
                *(("whatsapp", number) for number in self.coordinator_numbers))


def _whatsapp_number(path: Path, section: str, value: object) -> str:
    """A WhatsApp number as its wa_id: "+31 6 1234 5678" -> "31612345678" (8 to 15 digits)."""
    number = "".join(str(value).split()).removeprefix("+")
    if not number.isdigit() or not number.isascii() or not 8 <= len(number) <= 15:
        raise ConfigError(f"{path}: [[{section}]] whatsapp must be a phone number in "
                          "international form, digits only (e.g. \"31612345678\")")
    return number


def _lapse_days(path: Path, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{path}: register.lapse_days must be a whole number of days, at least 1")
    return value


def _telegram_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _coordinator(path: Path, item: object) -> tuple[int | None, str | None]:
    """One `[[coordinators]]` entry: telegram = <user id> and/or whatsapp = "<number>"."""
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: each [[coordinators]] entry must be a table")
    telegram = item.get("telegram")
    whatsapp = item.get("whatsapp")
    if telegram is None and whatsapp is None:
        raise ConfigError(f"{path}: each [[coordinators]] entry needs telegram = <user id> "
                          "and/or whatsapp = \"<number>\"")
    if telegram is not None and not _telegram_id(telegram):
        raise ConfigError(f"{path}: [[coordinators]] telegram must be a numeric user id")
    number = None if whatsapp is None else _whatsapp_number(path, "coordinators", whatsapp)
    return telegram, number


def _staff_member(path: Path, item: object) -> Confidant:
    """One `[[confidants]]` entry: gender, and telegram = <user id>, whatsapp = "<number>" and/or
    desk = "<e-mail of their desk account>"."""
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: each [[confidants]] entry must be a table")
    gender = item.get("gender")
    telegram = item.get("telegram")
    whatsapp = item.get("whatsapp")
    if gender not in ("female", "male"):
        raise ConfigError(f"{path}: each [[confidants]] entry needs gender 'female' or 'male'")
    if telegram is not None and not _telegram_id(telegram):
        raise ConfigError(f"{path}: [[confidants]] telegram must be a numeric user id")
    number = None if whatsapp is None else _whatsapp_number(path, "confidants", whatsapp)
    desk = item.get("desk")
    if desk is not None and (not isinstance(desk, str) or "@" not in desk or len(desk) > 254):
        raise ConfigError(f"{path}: [[confidants]] desk must be the e-mail of a desk account")
    desk = desk.strip().lower() if isinstance(desk, str) else None
    if telegram is None and number is None and desk is None:
        raise ConfigError(f"{path}: each [[confidants]] entry needs telegram, whatsapp and/or desk")
    return Confidant(telegram, gender, number, desk)


DEFAULT_ORGANISATION_NAME = "Steunpunt Vluchtelingen De Bilt"


class ConfigError(ValueError):
    """The organisation config cannot be used; the message says what to fix."""


def load_organisation(path: Path | None) -> Organisation:
    """The organisation from its TOML file, or the default of leaflet `000` when there is none.

    A file that lists several `[[organisations]]` gives its first; `load_deployment` gives all.
    """
    return load_deployment(path).default


@dataclass(frozen=True)
class Deployment:
    """The organisations one deployment serves (issue 11); the first is the default.

    A deployment of one organisation behaves as before: no picker, no slug in links needed.
    """

    organisations: tuple[Organisation, ...]

    @property
    def default(self) -> Organisation:
        return self.organisations[0]

    @property
    def several(self) -> bool:
        """More than one organisation: clients pick theirs, staff commands name theirs."""
        return len(self.organisations) > 1

    def get(self, slug: str | None) -> Organisation | None:
        """The organisation with this slug, or None."""
        return next((o for o in self.organisations if o.slug == slug), None)

    def of(self, slug: str | None) -> Organisation:
        """The organisation with this slug; the default for None or a slug no longer configured."""
        return self.get(slug) or self.default

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(o.slug for o in self.organisations)


SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


def load_deployment(path: Path | None) -> Deployment:
    """Every organisation of the config: one file as before, or `[[organisations]]` entries.

    Each `[[organisations]]` entry is shaped like a one-organisation file, with a `slug` (the
    name in links: lower-case letters, digits and dashes), or names such a file: `file = "x.toml"`
    beside the config, plus its `slug`.
    """
    if path is None:
        procedure = load_procedure()
        return Deployment((Organisation(DEFAULT_ORGANISATION_NAME, procedure,
                                        mailboxes=dict(procedure.mailboxes)),))
    raw = _read(path)
    entries = raw.get("organisations")
    if entries is None:
        return Deployment((_organisation(path, raw, str(raw.get("slug", "default"))),))
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: organisations must be one or more [[organisations]] entries")
    found: list[Organisation] = []
    for entry in entries:
        slug = entry.get("slug")
        if not isinstance(slug, str) or not SLUG.fullmatch(slug):
            raise ConfigError(f"{path}: each [[organisations]] entry needs a slug of lower-case "
                              f"letters, digits and dashes (at most 32), got {slug!r}")
        if "file" in entry:
            source = path.parent / str(entry["file"])
            found.append(_organisation(source, {**_read(source), **{k: v for k, v in entry.items()
                                                                   if k != "file"}}, slug))
        else:
            found.append(_organisation(path, entry, slug))
    slugs = [o.slug for o in found]
    names = [o.name for o in found]
    if len(set(slugs)) != len(slugs) or len(set(names)) != len(names):
        raise ConfigError(f"{path}: two [[organisations]] entries have the same slug or name")
    return Deployment(tuple(found))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"KLACHTWIJZER_CONFIG {path}: {exc}") from exc


def _organisation(path: Path, raw: dict[str, Any], slug: str) -> Organisation:
    """One organisation from its table (a whole file, or one [[organisations]] entry)."""
    chosen = raw.get("procedure")  # a bundled procedure's name, or a file beside the config
    procedure = load_procedure(procedure_path(str(chosen), path.parent) if chosen else None)
    mailboxes = dict(procedure.mailboxes)
    for key, value in raw.get("mailboxes", {}).items():
        if key not in mailboxes:
            raise ConfigError(f"{path}: unknown mailbox '{key}' (known: {sorted(mailboxes)})")
        if normalise_email(str(value)) is None:
            raise ConfigError(f"{path}: mailbox '{key}' is not an e-mail address: {value!r}")
        mailboxes[key] = str(value)
    try:
        mailbox_keys = keys_by_address(mailboxes, load_mailbox_keys(path, raw, known=mailboxes))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    years = int(raw.get("retention", {}).get("years", 5))
    if years < 1:
        raise ConfigError(f"{path}: retention.years must be at least 1")
    procedure = Procedure(**{**procedure.__dict__, "mailboxes": mailboxes})
    telegram = raw.get("telegram", {})
    confidants = []
    for item in telegram.get("confidants", []):
        gender = item.get("gender")
        if gender not in ("female", "male") or not isinstance(item.get("id"), int):
            raise ConfigError(
                f"{path}: each telegram.confidants entry needs a numeric id and gender "
                f"'female' or 'male', got {item!r}"
            )
        confidants.append(Confidant(item["id"], gender))
    for item in raw.get("confidants", []):
        confidants.append(_staff_member(path, item))
    keys = [c.key for c in confidants]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{path}: a confidant is listed twice (same Telegram id or number)")
    coordinators = list(telegram.get("coordinators", []))
    if not all(_telegram_id(c) for c in coordinators):
        raise ConfigError(f"{path}: telegram.coordinators must be numeric user ids")
    numbers: list[str] = []
    entries = raw.get("coordinators", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: coordinators must be [[coordinators]] entries")
    for item in entries:  # [[coordinators]] telegram = 900 and/or whatsapp = "+31612345678"
        user_id, number = _coordinator(path, item)
        if user_id is not None and user_id not in coordinators:
            coordinators.append(user_id)
        if number is not None and number not in numbers:
            numbers.append(number)
    register = raw.get("register", {})
    return Organisation(
        name=str(raw.get("name", DEFAULT_ORGANISATION_NAME)),
        procedure=procedure,
        slug=slug,
        retention_years=years,
        mailboxes=mailboxes,
        confidants=tuple(confidants),
        coordinators=tuple(coordinators),
        coordinator_numbers=tuple(numbers),
        handoff_timeout_minutes=int(raw.get("handoff", {}).get("timeout_minutes", 30)),
        follow_up_days=int(register.get("follow_up_days", 14)),
        # The procedure's rule (002 §4.1: two months), unless the config sets its own.
        lapse_days=_lapse_days(path, register.get("lapse_days", procedure.lapse_days)),
        whatsapp_template=raw.get("whatsapp", {}).get("template"),
        mailbox_keys=mailbox_keys,
    )
