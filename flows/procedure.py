"""A complaint procedure as data: read from a TOML definition and checked against what the engine knows.

The default is `procedures/regioverband.toml` (leaflet `000` with regulation `001`). An organisation
with another procedure points `procedure` in its config to its own file; the engine builds its state
machine from whatever this module returns, so no code path names Schema A or B.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Step kinds the engine can run, and the form each one fills (None: an explanation with a question).
STEP_FORMS: dict[str, str | None] = {
    "talk": None,  # 000 step 1: talk to the person, then their manager
    "mediation": "mediation_request",  # 000 Schema A step 2, 001 art. 4
    "confidant": "confidant_request",  # 000 Schema B step 2, 001 art. 5
    "complaint": "complaint",  # 000 step 3, 001 art. 12
}
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


class ProcedureError(ValueError):
    """The definition file is not a procedure this engine can run; the message says why."""


@dataclass(frozen=True)
class Form:
    id: str
    mailbox: str
    fields: tuple[str, ...]


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

    def form_for_step(self, step: str) -> Form | None:
        form_id = STEP_FORMS[step]
        return self.forms[form_id] if form_id else None


def default_procedure_path() -> Path:
    return Path(__file__).parent / "procedures" / "regioverband.toml"


def load_procedure(path: Path | None = None) -> Procedure:
    """Read and check a procedure definition; raise `ProcedureError` with a clear message."""
    source = path or default_procedure_path()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProcedureError(f"{source}: {exc}") from exc
    return parse_procedure(raw, origin=str(source))


def _require(table: dict[str, Any], key: str, origin: str) -> Any:
    if key not in table:
        raise ProcedureError(f"{origin}: missing '{key}'")
    return table[key]


def parse_procedure(raw: dict[str, Any], origin: str = "<procedure>") -> Procedure:
    head = _require(raw, "procedure", origin)
    mailboxes = {str(k): str(v) for k, v in _require(raw, "mailboxes", origin).items()}
    deadlines = {str(k): int(v) for k, v in raw.get("deadlines", {}).items()}
    unknown = set(deadlines) - DEADLINES
    if unknown:
        raise ProcedureError(f"{origin}: unknown deadlines {sorted(unknown)}")
    adm = raw.get("admissibility", {})

    forms: dict[str, Form] = {}
    for form_id, table in _require(raw, "forms", origin).items():
        fields = tuple(str(f) for f in _require(table, "fields", f"{origin} forms.{form_id}"))
        bad = [f for f in fields if f not in FIELDS]
        if bad:
            raise ProcedureError(f"{origin}: form '{form_id}' has unknown fields {bad}")
        if "consent" not in fields:
            # Nothing is shared without the client's consent (000 "Belangrijke regels").
            raise ProcedureError(f"{origin}: form '{form_id}' must ask for consent")
        mailbox = str(_require(table, "mailbox", f"{origin} forms.{form_id}"))
        if mailbox not in mailboxes:
            raise ProcedureError(f"{origin}: form '{form_id}' uses unknown mailbox '{mailbox}'")
        forms[form_id] = Form(form_id, mailbox, fields)

    schemas: dict[str, Schema] = {}
    for schema_id, table in _require(raw, "schemas", origin).items():
        steps = tuple(str(s) for s in _require(table, "steps", f"{origin} schemas.{schema_id}"))
        for step in steps:
            if step not in STEP_FORMS:
                raise ProcedureError(f"{origin}: schema '{schema_id}' has unknown step '{step}'")
            form_id = STEP_FORMS[step]
            if form_id and form_id not in forms:
                raise ProcedureError(f"{origin}: step '{step}' needs form '{form_id}'")
        if not steps or steps[-1] != "complaint":
            raise ProcedureError(f"{origin}: schema '{schema_id}' must end with 'complaint'")
        categories = tuple(str(c) for c in table.get("categories", ()))
        bad = [c for c in categories if c not in CATEGORIES]
        if bad:
            raise ProcedureError(f"{origin}: schema '{schema_id}' has unknown categories {bad}")
        schemas[schema_id] = Schema(
            id=schema_id,
            categories=categories,
            ask_danger=bool(table.get("ask_danger", False)),
            face_person=bool(table.get("face_person", True)),
            steps=steps,
        )

    triage: list[TriageOption] = []
    for item in _require(raw, "triage", origin):
        option = TriageOption(
            id=str(item["id"]), schema=str(item["schema"]), category=item.get("category")
        )
        if option.id not in TRIAGE_IDS:
            raise ProcedureError(f"{origin}: unknown triage option '{option.id}'")
        if option.schema not in schemas:
            raise ProcedureError(f"{origin}: triage '{option.id}' names unknown schema")
        triage.append(option)

    return Procedure(
        id=str(_require(head, "id", origin)),
        name=str(head.get("name", head["id"])),
        mailboxes=mailboxes,
        deadlines=deadlines,
        limit_months=int(adm.get("limit_months", 12)),
        no_limit_categories=frozenset(adm.get("no_limit_categories", ())),
        triage=tuple(triage),
        schemas=schemas,
        forms=forms,
    )
