"""A complaint procedure as data: read from a TOML definition and checked against what the engine knows.

The default is `procedures/regioverband.toml` (leaflet `000` with regulation `001`). An organisation
with another procedure points `procedure` in its config to its own file; the engine builds its state
machine from whatever this module returns, so no code path names Schema A or B.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Step kinds the engine can run, and the form each one fills by default (None: an explanation
# with a question). A definition names its steps in `[steps.<id>]` tables (`kind = ...`); a bare
# kind in a schema's `steps` is a step of that kind with its defaults (the default procedure).
STEP_FORMS: dict[str, str | None] = {
    "talk": None,  # 000 step 1, 002 §2, 004 step 1 and 3: talk to someone, named by role
    "mediation": "mediation_request",  # 000 Schema A step 2, 001 art. 4
    "confidant": "confidant_request",  # 000 Schema B step 2, 001 art. 5, 004 step 2
    "complaint": "complaint",  # 000 step 3, 001 art. 12, 002 §4.2
    "external": None,  # 002 §4.3, 004 step 4: where to go outside the bot, and what happens next
    "exclusions": None,  # 002 §3.1: what this procedure does not handle, and where to go instead
}
# Steps after which the client can take the complaint no further here: a schema ends with one.
FINAL_KINDS: frozenset[str] = frozenset({"complaint", "external"})
# Forms the engine knows: each has its own introduction, summary line and receipt.
FORM_IDS: frozenset[str] = frozenset(
    {"complaint", "mediation_request", "confidant_request", "report"}
)
FIELDS: frozenset[str] = frozenset(
    {
        "who",
        "name",
        "name_or_anonymous",
        "representative_name",
        "representative_relation",
        "staff",
        "description",
        "description_optional",
        "when",
        "tried",
        "contact",
        "consent",
    }
)
TRIAGE_IDS: frozenset[str] = frozenset({"dissatisfied", "behaviour", "unsure"})
CATEGORIES: frozenset[str] = frozenset(
    {
        "help",
        "conflict",
        "discrimination",
        "bullying",
        "aggression",
        "sexual_harassment",
        "youth_care",  # 002 §3.1: 36 months
        "nuisance",  # 002 §3.1 and §3.2: direct nuisance from the organisation's work
        "other",
        "unsure",
    }
)
DEADLINES: frozenset[str] = frozenset(
    {
        "acknowledge",
        "missing_information",
        "inform_staff",
        "mediation_report",
        "decision_preferred",
        "decision_latest",
        "board_response",
    }
)
# Who a complaint is for: the buttons of the "who" question (001 art. 2.3, 002 §3.2).
WHO_OPTIONS: frozenset[str] = frozenset({"self", "representative", "affected", "group", "anonymous"})
DEFAULT_WHO: tuple[str, ...] = ("self", "representative", "anonymous")
# Who receives a form: the summary and the receipt say it in full sentences, one per receiver.
RECEIVERS: frozenset[str] = frozenset({"committee", "chair", "confidants", "confidant", "manager"})
DEFAULT_RECEIVER: dict[str, str] = {
    "complaint": "committee",
    "mediation_request": "chair",
    "confidant_request": "confidants",
    "report": "committee",
}
# Roles a step names (talk with, then; who handles a complaint). Their words are in the catalogs.
ROLES: frozenset[str] = frozenset(
    {"volunteer", "coordinator", "employee", "manager", "coach", "generalist"}
)
# Ways to raise it at a talk step (004 step 1: a talk, WhatsApp or mail; step 3: mail, phone, talk).
WAYS: frozenset[str] = frozenset({"talk", "whatsapp", "email", "phone"})
# Text ids: what happens after an external step; the referral of an exclusion; a note at a field.
NEXT_TEXTS: frozenset[str] = frozenset({"committee_own_rules", "form_contact_two_working_days"})
REFERRALS: frozenset[str] = frozenset(
    {"municipal_decision", "own_procedure", "handled_before", "court", "damages"}
)
NOTES: frozenset[str] = frozenset({"representative_limits"})
# Who may read the client's answers: the welcome names them (`[handling] readers`, at most 3).
READERS: frozenset[str] = frozenset({"committee", "confidants", "confidant", "coordinator",
                                     "manager"})
# Who decides whether an anonymous or old complaint is handled: the committee (001 art. 13) or
# the organisation (002 §3.1). The out-of-time and anonymous texts say it.
DECIDERS: frozenset[str] = frozenset({"committee", "organisation"})
# What a confidant must pass on, said wherever a confidant is promised: a possible crime to the
# board (001 art. 5.2), or danger, talked about together (004 step 2).
CONFIDANT_EXCEPTIONS: frozenset[str] = frozenset({"crime_to_board", "danger_together"})
# Host names that are placeholders (RFC 2606, RFC 6761): a config must replace them.
_PLACEHOLDER_HOSTS = ("example.org", "example.com", "example.net")
_PLACEHOLDER_TLDS = (".example", ".invalid", ".test", ".localhost")

_HEAD_KEYS = frozenset({"id", "name", "sources", "lapse_days"})
_STEP_KEYS = frozenset(
    {"kind", "form", "with", "then", "ways", "name", "link", "email", "phone", "next", "role",
     "register_solved", "mailbox", "required", "preference", "choose"}
)
_FORM_KEYS = frozenset({"mailbox", "fields", "who", "receiver", "notes"})
_SCHEMA_KEYS = frozenset({"categories", "ask_danger", "face_person", "steps"})
_ADM_KEYS = frozenset({"limit_months", "no_limit_categories", "category_limits", "rules"})
# The articles `complaint.json` cites for its admissibility (the default: regulation 001).
ADMISSIBILITY_RULES: dict[str, str] = {
    "admissible": "001 art. 13", "out_of_time": "001 art. 13.1", "anonymous": "001 art. 13.3",
    "registered_only": "001 art. 17.5"}
_EXCLUSION_KEYS = frozenset({"id", "referral", "link"})
_HANDLING_KEYS = frozenset({"readers", "decides", "heard_by_person", "records_consulted",
                            "confidant_exception"})


class ProcedureError(ValueError):
    """The definition file is not a procedure this engine can run; the message says why and where."""


@dataclass(frozen=True)
class Form:
    id: str
    mailbox: str
    fields: tuple[str, ...]
    who: tuple[str, ...] = DEFAULT_WHO
    receiver: str = "committee"
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of a schema. `id` names its state (`<schema>_<id>`); `kind` says how it runs.

    Organisation-specific names, addresses and links (`name`, `link`, `email`, `phone`) are data
    and shown as they are; roles, ways and text ids are the engine's and translated.
    """

    id: str
    kind: str
    form: str | None = None
    role: str | None = None  # talk: who to talk with; complaint: who handles it
    then: str | None = None  # talk: who next, if the talk does not help
    ways: tuple[str, ...] = ()
    name: str | None = None
    link: str | None = None
    email: str | None = None
    phone: str | None = None
    next: str | None = None  # external: text id of what happens next
    register_solved: bool = False  # talk: a solved talk is registered as a signal (003 §5)
    mailbox: str | None = None  # where that signal goes
    required: bool = False  # talk: take this step before the next (004: one by one)
    preference: bool = True  # confidant: the client may choose a woman or a man (000)
    choose: str | None = None  # external: the words to click on its website (004 step 4)


@dataclass(frozen=True)
class Exclusion:
    """002 §3.1: something this procedure does not handle; `referral` says where to go instead."""

    id: str
    referral: str
    link: str | None = None


@dataclass(frozen=True)
class Schema:
    id: str
    categories: tuple[str, ...]
    ask_danger: bool
    face_person: bool
    steps: tuple[str, ...]


@dataclass(frozen=True)
class TriageOption:
    id: str
    schema: str
    category: str | None


@dataclass(frozen=True)
class Handling:
    """Who reads what the client sends and the rules they keep: the welcome, the consent and the
    admissibility texts are built from this, so each procedure's texts say what is true for it.

    The defaults are those of the default procedure (000 + 001).
    """

    readers: tuple[str, ...] = ("committee", "confidants", "coordinator")
    decides: str = "committee"  # 001 art. 13; 002 §3.1: "organisation"
    heard_by_person: bool = True  # 001 art. 14.4 and 14.9; 002 §4.1 and §4.2
    records_consulted: bool = False  # 002 §4.1: staff may look things up in their systems
    confidant_exception: str | None = "crime_to_board"  # 001 art. 5.2; 004: "danger_together"


@dataclass(frozen=True)
class Procedure:
    id: str
    name: str
    mailboxes: dict[str, str]
    deadlines: dict[str, int]
    limit_months: int
    no_limit_categories: frozenset[str]
    triage: tuple[TriageOption, ...]
    schemas: dict[str, Schema]
    forms: dict[str, Form]
    steps: dict[str, Step] = field(default_factory=dict)
    category_limits: dict[str, int] = field(default_factory=dict)
    exclusions: tuple[Exclusion, ...] = ()
    # 002 §4.1: a complaint lapses after this many days unreachable; None: the source gives none.
    lapse_days: int | None = None
    handling: Handling = field(default_factory=Handling)
    # Which article each admissibility finding cites in complaint.json ([admissibility.rules]).
    admissibility_rules: dict[str, str] = field(default_factory=lambda: dict(ADMISSIBILITY_RULES))

    def step(self, step_id: str) -> Step:
        """A step by id; a bare kind (the default procedure's style) is that kind's default step."""
        return self.steps.get(step_id) or Step(step_id, step_id, STEP_FORMS.get(step_id))

    def form_for_step(self, step: str) -> Form | None:
        form_id = self.step(step).form
        return self.forms[form_id] if form_id else None

    def kinds(self, schema: Schema) -> tuple[str, ...]:
        return tuple(self.step(s).kind for s in schema.steps)

    def limit_for(self, category: str | None) -> int | None:
        """The admissibility limit in months for a category; None: no limit (002 §3.1)."""
        if category in self.no_limit_categories:
            return None
        months = self.category_limits.get(str(category), self.limit_months)
        return months if months > 0 else None  # 0: no limit (004 names none)

    def placeholders(self) -> list[str]:
        """Addresses and links that are placeholders (example.org, .invalid, ...): a source named
        none (002 §4.2, §4.3), so the organisation's config must set the real ones. Each as
        one line for `klachtwijzer check-config`."""
        found = [f"mailbox '{name}' = {value}" for name, value in self.mailboxes.items()
                 if is_placeholder(value)]
        for step_id, step in self.steps.items():
            for key in ("link", "email"):
                value = getattr(step, key)
                if value and is_placeholder(value):
                    found.append(f"step '{step_id}' {key} = {value}")
        found += [f"exclusion '{e.id}' link = {e.link}" for e in self.exclusions
                  if e.link and is_placeholder(e.link)]
        return found


def is_placeholder(value: str) -> bool:
    """Whether an address or link points at a reserved example or test domain (RFC 2606, 6761)."""
    host = value.rpartition("@")[2] if "@" in value and "://" not in value else \
        re.sub(r"^[a-z][a-z0-9+.-]*://", "", value.strip().lower()).split("/")[0]
    host = host.strip().lower().rstrip(".").split(":")[0]
    return (host in _PLACEHOLDER_HOSTS or host.endswith(tuple("." + h for h in _PLACEHOLDER_HOSTS))
            or host.endswith(_PLACEHOLDER_TLDS) or host in {t[1:] for t in _PLACEHOLDER_TLDS})


def default_procedure_path() -> Path:
    return Path(__file__).parent / "procedures" / "regioverband.toml"


def bundled_procedures() -> dict[str, Path]:
    """The procedures that ship with Klachtwijzer, by name: regioverband (000 + 001, the default),
    lentl (002) and coaching (004)."""
    folder = Path(__file__).parent / "procedures"
    return {path.stem: path for path in sorted(folder.glob("*.toml"))}


def procedure_path(value: str, base: Path) -> Path:
    """A procedure named in a config: a bundled one by name ("lentl"), else a file relative to
    `base` (the config's folder)."""
    bundled = bundled_procedures()
    if value in bundled:
        return bundled[value]
    return base / value


def load_procedure(path: Path | None = None) -> Procedure:
    """Read and check a procedure definition; raise `ProcedureError` naming the file and line."""
    source = path or default_procedure_path()
    try:
        text = source.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProcedureError(f"{source}: {exc}") from exc
    return parse_procedure(raw, origin=str(source), text=text)


class _Where:
    """Finds the line of a table or key in the definition's text, for error messages.

    A small search, not a TOML parser: `[table]` or the n-th `[[table]]` header, then `key =`
    below it (up to the next header). Good enough to point a person at the right place.
    """

    def __init__(self, origin: str, text: str | None) -> None:
        self.origin = origin
        self.lines = (text or "").splitlines()

    def _header(self, table: str, index: int | None) -> int | None:
        name = re.escape(table).replace(r"\.", r"\s*\.\s*")
        pattern = (re.compile(rf"^\s*\[\[\s*{name}\s*\]\]") if index is not None
                   else re.compile(rf"^\s*\[\s*{name}\s*\]"))
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if pattern.match(line):
                if index is None or seen == index:
                    return number
                seen += 1
        return None

    def line(self, table: str, key: str | None = None, index: int | None = None) -> int | None:
        header = self._header(table, index) if table else 0
        if header is None:
            # A dotted or inline table: look for the last part of its name as a key.
            parent, _, last = table.rpartition(".")
            return self.line(parent, last) if last and parent != table else None
        if key is None:
            return header or None
        key_line = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number in range(header + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if re.match(r"^\s*\[", line):
                break
            if key_line.match(line):
                return number
        return header or None

    def fail(self, message: str, table: str = "", key: str | None = None,
             index: int | None = None) -> ProcedureError:
        number = self.line(table, key, index)
        place = self.origin + (f", line {number}" if number else "")
        shown = f"[[{table}]] number {index + 1}" if index is not None else f"[{table}]"
        return ProcedureError(f"{place}: {shown + ' ' if table else ''}{message}")


def _require(table: dict[str, Any], key: str, where: _Where, name: str = "",
             index: int | None = None) -> Any:
    if key not in table:
        raise where.fail(f"missing '{key}'", name, None, index)
    return table[key]


def _unknown_keys(table: dict[str, Any], known: frozenset[str], where: _Where, name: str,
                  index: int | None = None) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise where.fail(f"unknown key '{extra[0]}' (known: {', '.join(sorted(known))})",
                         name, extra[0], index)


def _known(value: Any, known: frozenset[str], what: str, where: _Where, table: str,
           key: str | None,
           index: int | None = None) -> str:
    if value not in known:
        raise where.fail(f"unknown {what} '{value}' (known: {', '.join(sorted(known))})",
                         table, key, index)
    return str(value)


def _parse_step(step_id: str, table: dict[str, Any], forms: dict[str, Form],
                mailboxes: dict[str, str], where: _Where) -> Step:
    name = f"steps.{step_id}"
    _unknown_keys(table, _STEP_KEYS, where, name)
    kind = _known(_require(table, "kind", where, name), frozenset(STEP_FORMS), "step kind", where,
                  name, "kind")
    form_id = table.get("form", STEP_FORMS[kind])
    if form_id is not None and form_id not in forms:
        raise where.fail(f"step '{step_id}' needs form '{form_id}', which is not defined", name,
                         "form" if "form" in table else "kind")
    role = table.get("role", table.get("with"))
    for key in ("with", "then", "role"):
        if key in table:
            _known(table[key], ROLES, "role", where, name, key)
    ways = tuple(str(w) for w in table.get("ways", ()))
    for way in ways:
        _known(way, WAYS, "way", where, name, "ways")
    if "next" in table:
        _known(table["next"], NEXT_TEXTS, "text id", where, name, "next")
    mailbox = table.get("mailbox")
    if mailbox is not None and mailbox not in mailboxes:
        raise where.fail(f"unknown mailbox '{mailbox}'", name, "mailbox")
    if table.get("register_solved") and mailbox is None:
        raise where.fail("register_solved needs a mailbox for the signal", name,
                         "register_solved")
    if kind == "talk" and role is None:
        raise where.fail("a talk step needs 'with' (who to talk with)", name, "kind")
    if kind == "external" and not (table.get("link") or table.get("name")):
        raise where.fail("an external step needs a 'name' or 'link' to show", name, "kind")
    return Step(
        id=step_id, kind=kind, form=form_id, role=role, then=table.get("then"), ways=ways,
        name=table.get("name"), link=table.get("link"), email=table.get("email"),
        phone=table.get("phone"), next=table.get("next"),
        register_solved=bool(table.get("register_solved", False)), mailbox=mailbox,
        required=bool(table.get("required", False)),
        preference=bool(table.get("preference", True)), choose=table.get("choose"),
    )


def parse_procedure(raw: dict[str, Any], origin: str = "<procedure>",
                    text: str | None = None) -> Procedure:
    """Check a parsed definition; `text` (the file's text) lets errors name the line."""
    where = _Where(origin, text)
    head = _require(raw, "procedure", where)
    _unknown_keys(head, _HEAD_KEYS, where, "procedure")
    mailboxes = {str(k): str(v) for k, v in _require(raw, "mailboxes", where).items()}
    deadlines = {str(k): int(v) for k, v in raw.get("deadlines", {}).items()}
    unknown = sorted(set(deadlines) - DEADLINES)
    if unknown:
        raise where.fail(f"unknown deadlines {unknown}", "deadlines", unknown[0])
    adm = raw.get("admissibility", {})
    _unknown_keys(adm, _ADM_KEYS, where, "admissibility")
    no_limit = {str(c) for c in adm.get("no_limit_categories", ())}
    category_limits: dict[str, int] = {}
    for category, months in adm.get("category_limits", {}).items():
        _known(category, CATEGORIES, "category", where, "admissibility.category_limits", category)
        if int(months) <= 0:
            no_limit.add(category)  # 0: no limit (002 §3.1, sexual harassment)
        else:
            category_limits[category] = int(months)

    cited = adm.get("rules", {})
    _unknown_keys(cited, frozenset(ADMISSIBILITY_RULES), where, "admissibility.rules")
    admissibility_rules = {**ADMISSIBILITY_RULES, **{str(k): str(v) for k, v in cited.items()}}

    forms: dict[str, Form] = {}
    for form_id, table in _require(raw, "forms", where).items():
        name = f"forms.{form_id}"
        _known(form_id, FORM_IDS, "form", where, name, None)
        _unknown_keys(table, _FORM_KEYS, where, name)
        fields = tuple(str(f) for f in _require(table, "fields", where, name))
        for f in fields:
            _known(f, FIELDS, "field", where, name, "fields")
        if "consent" not in fields:
            # Nothing is shared without the client's consent (000 "Belangrijke regels").
            raise where.fail(f"form '{form_id}' must ask for consent", name, "fields")
        mailbox = str(_require(table, "mailbox", where, name))
        if mailbox not in mailboxes:
            raise where.fail(f"form '{form_id}' uses unknown mailbox '{mailbox}'", name,
                             "mailbox")
        who = tuple(str(w) for w in table.get("who", DEFAULT_WHO))
        for option in who:
            _known(option, WHO_OPTIONS, "'who' option", where, name, "who")
        receiver = _known(table.get("receiver", DEFAULT_RECEIVER[form_id]), RECEIVERS,
                          "receiver", where, name, "receiver")
        notes = {str(k): str(v) for k, v in table.get("notes", {}).items()}
        for field_id, note in notes.items():
            _known(field_id, frozenset(fields), "field", where, name, "notes")
            _known(note, NOTES, "text id", where, name, "notes")
        forms[form_id] = Form(form_id, mailbox, fields, who, receiver, notes)

    steps: dict[str, Step] = {}
    for step_id, table in raw.get("steps", {}).items():
        steps[step_id] = _parse_step(step_id, table, forms, mailboxes, where)

    exclusions: list[Exclusion] = []
    for index, item in enumerate(raw.get("exclusions", [])):
        _unknown_keys(item, _EXCLUSION_KEYS, where, "exclusions", index)
        exclusion_id = str(_require(item, "id", where, "exclusions", index))
        referral = item.get("referral", exclusion_id)
        if referral not in REFERRALS:
            raise where.fail(f"unknown referral text '{referral}' (known: "
                             f"{', '.join(sorted(REFERRALS))})", "exclusions",
                             "referral" if "referral" in item else "id", index)
        exclusions.append(Exclusion(exclusion_id, str(referral), item.get("link")))

    schemas: dict[str, Schema] = {}
    for schema_id, table in _require(raw, "schemas", where).items():
        name = f"schemas.{schema_id}"
        _unknown_keys(table, _SCHEMA_KEYS, where, name)
        schema_steps = tuple(str(s) for s in _require(table, "steps", where, name))
        for step in schema_steps:
            if step not in steps and step not in STEP_FORMS:
                raise where.fail(f"schema '{schema_id}' has unknown step '{step}' (a step "
                                 f"kind, or a [steps.{step}] table)", name, "steps")
            kind = steps[step].kind if step in steps else step
            form_id = steps[step].form if step in steps else STEP_FORMS[step]
            if form_id and form_id not in forms:
                raise where.fail(f"step '{step}' needs form '{form_id}'", name, "steps")
            if kind == "exclusions" and not exclusions:
                raise where.fail(f"step '{step}' needs an [[exclusions]] list", name, "steps")
        final = steps[schema_steps[-1]].kind if schema_steps and schema_steps[-1] in steps \
            else (schema_steps[-1] if schema_steps else None)
        if final not in FINAL_KINDS:
            raise where.fail(f"schema '{schema_id}' must end with a step that takes the "
                             "complaint further: 'complaint' or 'external'", name, "steps")
        categories = tuple(str(c) for c in table.get("categories", ()))
        for c in categories:
            _known(c, CATEGORIES, "category", where, name, "categories")
        schemas[schema_id] = Schema(
            id=schema_id,
            categories=categories,
            ask_danger=bool(table.get("ask_danger", False)),
            face_person=bool(table.get("face_person", True)),
            steps=schema_steps,
        )
    if exclusions and "report" not in forms:
        # 002 §3.1: who is referred elsewhere may still register a signal (a report).
        raise where.fail("[[exclusions]] need a [forms.report] to register a signal",
                         "exclusions", None, 0)

    triage: list[TriageOption] = []
    for index, item in enumerate(_require(raw, "triage", where)):
        choice = TriageOption(
            id=str(_require(item, "id", where, "triage", index)),
            schema=str(_require(item, "schema", where, "triage", index)),
            category=item.get("category"),
        )
        if choice.id not in TRIAGE_IDS:
            raise where.fail(f"unknown triage option '{choice.id}'", "triage", "id", index)
        if choice.schema not in schemas:
            raise where.fail(f"triage '{choice.id}' names unknown schema '{choice.schema}' "
                             "(a route to nowhere)", "triage", "schema", index)
        triage.append(choice)

    lapse = head.get("lapse_days")
    if lapse is not None and (not isinstance(lapse, int) or isinstance(lapse, bool) or lapse < 1):
        raise where.fail("lapse_days must be a whole number of days, at least 1", "procedure",
                         "lapse_days")
    return Procedure(
        id=str(_require(head, "id", where, "procedure")),
        name=str(head.get("name", head["id"])),
        mailboxes=mailboxes,
        deadlines=deadlines,
        limit_months=int(adm.get("limit_months", 12)),
        no_limit_categories=frozenset(no_limit),
        triage=tuple(triage),
        schemas=schemas,
        forms=forms,
        steps=steps,
        category_limits=category_limits,
        exclusions=tuple(exclusions),
        lapse_days=int(lapse) if lapse is not None else None,
        handling=_parse_handling(raw.get("handling"), forms, where),
        admissibility_rules=admissibility_rules,
    )


def _parse_handling(table: dict[str, Any] | None, forms: dict[str, Form],
                    where: _Where) -> Handling:
    """The `[handling]` table: who reads, who decides, and what a confidant must pass on.

    Without the table, the default procedure's handling; with it, a confidant exception only
    where the table names one.
    """
    name = "handling"
    default = Handling() if table is None else Handling(confidant_exception=None)
    table = table or {}
    _unknown_keys(table, _HANDLING_KEYS, where, name)
    readers = tuple(str(r) for r in table.get("readers", default.readers))
    for reader in readers:
        _known(reader, READERS, "reader", where, name, "readers")
    if not 1 <= len(readers) <= 3:
        raise where.fail("readers must name 1 to 3 readers", name, "readers")
    decides = _known(table.get("decides", default.decides), DECIDERS, "decider", where, name,
                     "decides")
    exception = table.get("confidant_exception", default.confidant_exception)
    if exception is not None:
        exception = _known(exception, CONFIDANT_EXCEPTIONS, "confidant exception", where, name,
                           "confidant_exception")
    if exception is None and any(f.receiver in ("confidants", "confidant")
                                 for f in forms.values()):
        # A confidant is never promised without the one thing they must pass on.
        raise where.fail("a procedure with a confidant needs confidant_exception (what the "
                         "confidant must pass on)", name, None)
    return Handling(
        readers=readers, decides=decides,
        heard_by_person=bool(table.get("heard_by_person", default.heard_by_person)),
        records_consulted=bool(table.get("records_consulted", default.records_consulted)),
        confidant_exception=exception,
    )
