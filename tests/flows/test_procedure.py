"""Procedure definitions: the default one, and clear errors for definitions the engine cannot run."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from flows.procedure import ProcedureError, default_procedure_path, load_procedure, parse_procedure


def raw_default() -> dict[str, Any]:
    return tomllib.loads(default_procedure_path().read_text(encoding="utf-8"))


def test_default_is_leaflet_000_with_regulation_001() -> None:
    """The default procedure has Schema A and B of 000, its two mailboxes and 001's deadlines."""
    p = load_procedure()
    assert p.mailboxes == {
        "committee": "klachtencommissie@regioverband.nl",
        "confidants": "vertrouwenspersonen@regioverband.nl",
    }
    assert p.schemas["A"].steps == ("talk", "mediation", "complaint")
    assert p.schemas["B"].steps == ("talk", "confidant", "complaint")
    assert (p.schemas["A"].ask_danger, p.schemas["B"].ask_danger) == (False, True)
    assert p.schemas["B"].face_person is False
    assert p.deadlines["acknowledge"] == 7 and p.deadlines["decision_latest"] == 42
    assert [o.id for o in p.triage] == ["dissatisfied", "behaviour", "unsure"]
    assert p.triage[2].schema == "B"  # "not sure" goes to the confidant path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["schemas"]["A"].update(steps=["talk", "dance", "complaint"]), "unknown step 'dance'"),
        (lambda r: r["forms"]["complaint"].update(fields=["who", "name"]), "must ask for consent"),
        (lambda r: r["forms"]["complaint"].update(mailbox="nobody"), "unknown mailbox 'nobody'"),
        (lambda r: r["schemas"]["B"].update(steps=["talk", "complaint", "confidant"]), "must end"),
        (lambda r: r["triage"][0].update(schema="Z"), "unknown schema"),
        (lambda r: r.pop("mailboxes"), "missing 'mailboxes'"),
        (lambda r: r["deadlines"].update(someday=3), "unknown deadlines"),
    ],
)
def test_invalid_definitions_are_refused_clearly(change: Any, message: str) -> None:
    """A definition the engine cannot run is refused with a message that says what is wrong."""
    raw = copy.deepcopy(raw_default())
    change(raw)
    with pytest.raises(ProcedureError, match=message):
        parse_procedure(raw)
