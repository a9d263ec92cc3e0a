"""Procedure definitions: the default one, and clear errors for definitions the engine cannot run."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from flows.procedure import (
    ProcedureError,
    default_procedure_path,
    is_placeholder,
    load_procedure,
    parse_procedure,
)


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


# --- the bundled procedures of 002 and 004, and errors that name the file and line -------------

PROCEDURES = default_procedure_path().parent
LENTL = """\
[procedure]
id = "x"

[mailboxes]
complaints = "k@example.org"

[[triage]]
id = "dissatisfied"
schema = "main"

[schemas.main]
steps = ["talk_first", "okc"]

[steps.talk_first]
kind = "talk"
with = "employee"

[steps.okc]
kind = "external"
link = "https://example.org"

[forms.complaint]
mailbox = "complaints"
fields = ["who", "name", "consent"]
"""


def test_lentl_definition_follows_002() -> None:
    """002: exclusions, the talk, the manager, the OKC; 36 months for youth care; lapse after 2 months."""
    p = load_procedure(PROCEDURES / "lentl.toml")
    assert p.schemas["main"].steps == ("check", "employee", "manager", "okc")
    assert p.kinds(p.schemas["main"]) == ("exclusions", "talk", "complaint", "external")
    assert (p.limit_for("help"), p.limit_for("youth_care"), p.limit_for("sexual_harassment")) \
        == (12, 36, None)
    assert [e.referral for e in p.exclusions] == [
        "municipal_decision", "own_procedure", "handled_before", "court", "damages"]
    assert p.forms["complaint"].who == ("self", "representative", "affected", "group", "anonymous")
    assert p.steps["employee"].register_solved and p.lapse_days == 61


def test_coaching_definition_follows_004() -> None:
    """004: coach, the named confidant (anonymous), the generalist, the committee's website form."""
    p = load_procedure(PROCEDURES / "coaching.toml")
    assert p.kinds(p.schemas["steps"]) == ("talk", "confidant", "talk", "external")
    assert p.steps["coach"].ways == ("talk", "whatsapp", "email")
    assert p.steps["confidant"].name == "Aileen Kivits" and not p.steps["confidant"].preference
    assert p.steps["generalist"].required
    assert p.steps["committee"].link == "https://www.erisietsmisgegaan.nl"
    assert p.lapse_days is None


@pytest.mark.parametrize(
    ("old", "new", "message", "line"),
    [
        ('kind = "external"', 'kind = "phone_call"', "unknown step kind 'phone_call'", 19),
        ('schema = "main"', 'schema = "mian"', "unknown schema 'mian' (a route to nowhere)", 9),
        ('steps = ["talk_first", "okc"]', 'steps = ["talk_first", "nowhere"]',
         "unknown step 'nowhere'", 12),
        ('with = "employee"', 'with = "neighbour"', "unknown role 'neighbour'", 16),
        ('link = "https://example.org"', 'next = "goodbye"\nlink = "x"', "unknown text id 'goodbye'",
         20),
        ('fields = ["who", "name", "consent"]', 'fields = ["who", "shoe_size", "consent"]',
         "unknown field 'shoe_size'", 24),
        ('with = "employee"', 'with = "employee"\ncolour = "red"', "unknown key 'colour'", 17),
    ],
)
def test_mistakes_name_the_file_and_line(tmp_path: Any, old: str, new: str, message: str,
                                         line: int) -> None:
    """A mistake in a definition names the file, the line and the table, and says what is wrong."""
    path = tmp_path / "broken.toml"
    assert old in LENTL
    path.write_text(LENTL.replace(old, new), encoding="utf-8")
    with pytest.raises(ProcedureError) as caught:
        load_procedure(path)
    assert str(caught.value).startswith(f"{path}, line {line}: [")
    assert message in str(caught.value)


def test_small_definition_without_a_complaint_committee_loads(tmp_path: Any) -> None:
    """A procedure may end outside the bot (an external step) instead of with a complaint."""
    path = tmp_path / "ok.toml"
    path.write_text(LENTL, encoding="utf-8")
    assert load_procedure(path).kinds(load_procedure(path).schemas["main"]) == ("talk", "external")


# --- [handling]: who reads, who decides, what a confidant must pass on ------------------------


def test_each_bundled_procedure_says_who_reads_and_the_rules() -> None:
    """001: committee, confidants (crime to the board); 002: manager, organisation decides, no
    confidant; 004: the one confidant (danger, together), nobody else reads a complaint."""
    regional, lentl, coaching = (load_procedure(PROCEDURES / f"{name}.toml").handling
                                 for name in ("regioverband", "lentl", "coaching"))
    assert (regional.readers, regional.decides, regional.confidant_exception) == (
        ("committee", "confidants", "coordinator"), "committee", "crime_to_board")
    assert (lentl.readers, lentl.decides, lentl.confidant_exception) == (
        ("manager", "coordinator"), "organisation", None)
    assert lentl.heard_by_person and lentl.records_consulted
    assert (coaching.readers, coaching.confidant_exception, coaching.heard_by_person) == (
        ("confidant",), "danger_together", False)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[forms.complaint]", '[handling]\nreaders = ["neighbours"]\n\n[forms.complaint]',
         "unknown reader 'neighbours'"),
        ("[forms.complaint]", '[handling]\nreaders = []\n\n[forms.complaint]',
         "readers must name 1 to 3"),
        ("[forms.complaint]", '[handling]\ndecides = "chair"\n\n[forms.complaint]',
         "unknown decider 'chair'"),
        ("[forms.complaint]", '[handling]\nconfidant_exception = "never"\n\n[forms.complaint]',
         "unknown confidant exception 'never'"),
        ('fields = ["who", "name", "consent"]',
         'fields = ["who", "name", "consent"]\nreceiver = "confidant"\n\n[handling]\nreaders = '
         '["confidant"]', "needs confidant_exception"),
        ('id = "x"', 'id = "x"\nlapse_days = 0', "lapse_days must be a whole number"),
    ],
)
def test_handling_mistakes_are_refused(tmp_path: Any, old: str, new: str, message: str) -> None:
    """A [handling] the texts cannot say truly (unknown reader, a confidant without the exception
    they must pass on) or a lapse of no days is refused with the file and line."""
    path = tmp_path / "broken.toml"
    assert old in LENTL
    path.write_text(LENTL.replace(old, new), encoding="utf-8")
    with pytest.raises(ProcedureError, match=message) as caught:
        load_procedure(path)
    assert str(caught.value).startswith(f"{path}, line ")


def test_placeholders_are_listed_for_check_config() -> None:
    """002 names no complaints address nor OKC page: Lentl's are example.org placeholders, listed
    so `check-config` can report them; the default and 004 carry none."""
    assert load_procedure(PROCEDURES / "lentl.toml").placeholders() == [
        "mailbox 'complaints' = klachten@lentl.example.org",
        "step 'okc' link = https://okc.example.org",
    ]
    assert load_procedure().placeholders() == []
    assert load_procedure(PROCEDURES / "coaching.toml").placeholders() == []


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [("k@example.org", True), ("https://okc.example.org/page", True), ("x@mail.example.com", True),
     ("https://klachten.test", True), ("a@b.invalid", True), ("klachten@lentl.nl", False),
     ("https://www.erisietsmisgegaan.nl", False), ("info@notexample.org", False)],
)
def test_is_placeholder(value: str, placeholder: bool) -> None:
    """Reserved example and test domains (RFC 2606, 6761) are placeholders; real ones are not."""
    assert is_placeholder(value) is placeholder


def test_no_limit_when_the_source_names_none() -> None:
    """004 names no time limit: limit_months = 0 means none, for every category."""
    coaching = load_procedure(PROCEDURES / "coaching.toml")
    assert [coaching.limit_for(c) for c in ("help", "conflict", "other")] == [None, None, None]


def test_admissibility_cites_the_procedures_own_articles() -> None:
    """complaint.json cites 001 art. 13 for the regional procedure, 002 §3.1 for Lentl."""
    regional = load_procedure()
    lentl = load_procedure(PROCEDURES / "lentl.toml")
    assert regional.admissibility_rules["out_of_time"] == "001 art. 13.1"
    assert set(lentl.admissibility_rules.values()) == {"002 §3.1"}
