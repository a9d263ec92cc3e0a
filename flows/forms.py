"""Filling in a form: which question comes next, what an answer or a button does, and the submission.

A form's questions are states named `<form>_<field>` (`field_state`). Each handler here records the
client's answer in the turn and returns the state to go to; the engine then fires the machine's edge
to it, so this module knows nothing of the machine. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows import rules
from flows.model import SubmitCase
from flows.procedure import ADMISSIBILITY_RULES, Form, Procedure
from flows.turn import Turn

TEXT_FIELDS = {
    "who",  # typing your name answers "for myself" and the name at once (issue 14)
    "name",
    "name_or_anonymous",
    "representative_name",
    "representative_relation",
    "staff",
    "description",
    "description_optional",
    "when",
    "tried",
}
LONG_FIELDS = {"description", "description_optional", "tried"}
# The button that ends a long text sent in parts (issue 14.10); the parts are in `data["parts"]`.
PARTS_DONE = "parts_done"
# Buttons on text fields: button id -> the answer it stands for.
FIELD_BUTTONS: dict[str, dict[str, str]] = {
    "staff": {"staff_unknown": ""},
    "when": {"when_unknown": ""},
    "tried": {"tried_nothing": ""},
    "name_or_anonymous": {"anonymous": ""},
    "description_optional": {"skip": ""},
}


def field_state(form: Form, field_id: str) -> str:
    return f"{form.id}_{field_id}"


def field_triggers(field_id: str, form: Form | None = None) -> tuple[str, ...]:
    """The machine's triggers out of a field's question: its buttons, or `answer` for typed text."""
    if field_id == "who":
        options = form.who if form else ("self", "representative", "anonymous")
        return ("answer", *(f"who_{option}" for option in options))
    if field_id == "contact":
        return ("contact_chat",)
    if field_id == "consent":
        return ("consent_yes", "consent_no")
    if field_id in LONG_FIELDS:
        # A text over the limit is kept in parts; "Done" ends it (issue 14.10, see PARTS_DONE).
        return ("answer", PARTS_DONE, *FIELD_BUTTONS.get(field_id, {}))
    return ("answer", *FIELD_BUTTONS.get(field_id, {}))


def applies(turn: Turn, field_id: str) -> bool:
    """Whether the question is asked at all, given the answers so far (who the complaint is for)."""
    who = turn.answers.get("who")
    if field_id == "consent":
        # 000 "alleen gedeeld met toestemming": asked on the summary, where Send is the consent.
        return False
    if field_id == "name":
        return who != "anonymous"
    if field_id == "representative_name":
        # 002 §3.2: a group names its representative, who the organisation talks with.
        return who in ("representative", "group")
    if field_id == "representative_relation":
        return who == "representative"
    return True


def clear_draft(data: dict[str, Any]) -> None:
    """Forget the form being filled in; what was already sent is kept."""
    for key in ("answers", "attachments", "admissibility", "adm_return", "editing", "form",
                "pending", "incident_date", "parts"):
        data.pop(key, None)


def submission(turn: Turn, form: Form,
               cites: Mapping[str, str] = ADMISSIBILITY_RULES) -> dict[str, Any]:
    """The structured request, in the shape of `complaint.json` (see flows/complaint.py);
    `cites`: the articles its admissibility cites (the procedure's `admissibility_rules`)."""
    a, data = turn.answers, turn.data
    adm = data.get("admissibility", {"status": "admissible", "rule": cites["admissible"]})
    kind = form.id
    if adm.get("status") in ("anonymous", "report_only"):
        kind = "report"  # 001 art. 13.3 and 17.5: registered only
    who = a.get("who", "self")
    anonymous = who == "anonymous" or (
        "name_or_anonymous" in form.fields and not a.get("name_or_anonymous")
    )
    contact = a.get("contact") or {"method": "chat", "value": None}
    when = a.get("when")
    representative = None
    if who == "representative":
        representative = {
            "name": a.get("representative_name"),
            "relation": a.get("representative_relation"),
        }
    elif who == "group":
        # 002 §3.2: the organisation communicates with the representative the group named.
        representative = {"name": a.get("representative_name"), "relation": "group"}
    talked = data.get("talked")
    return {
        "kind": kind,
        "schema": data.get("schema"),
        "category": data.get("category"),
        "language": turn.t.language,
        "confidant_preference": data.get("preference")
        if form.id == "confidant_request"
        else None,
        "complainant": {
            "name": None if anonymous else (a.get("name") or a.get("name_or_anonymous")),
            "anonymous": anonymous,
            "contact": contact,
        },
        "representative": representative,
        # 001 art. 2.3, 002 §3.2: self, representative, affected, group or anonymous.
        "complainant_type": "anonymous" if anonymous else who,
        "staff_involved": a.get("staff"),
        "description": a.get("description") or a.get("description_optional"),
        "incident_dates": {"text": when, "parsed": data.get("incident_date")}
        if when
        else None,
        "steps_taken": {"talked": talked, "text": a.get("tried")},
        "admissibility": {"status": adm.get("status", "admissible"),
                          "rule": adm.get("rule", cites["admissible"])},
        "consent": {"given": bool(a.get("consent")),
                    "share_with": form.mailbox, "at": turn.now.isoformat()},
        "attachments": list(data.get("attachments", [])),
        "emergency_shown": bool(data.get("emergency_shown")),
    }


class Forms:
    """The procedure's forms: lookups by state, and what each answer or button leads to."""

    def __init__(self, procedure: Procedure) -> None:
        self.procedure = procedure

    # --- lookups -------------------------------------------------------------------------------

    def current(self, turn: Turn) -> Form:
        """The form being filled in (the complaint unless a request form was started)."""
        return self.procedure.forms[turn.data.get("form", "complaint")]

    def form_of(self, state: str) -> Form | None:
        for form in self.procedure.forms.values():
            if state.startswith(form.id + "_"):
                return form
        return None

    def field_of(self, state: str) -> str:
        form = self.form_of(state)
        return state[len(form.id) + 1 :] if form else ""

    def takes_text(self, turn: Turn) -> bool:
        return turn.state.endswith("_contact_value") or (
            self.form_of(turn.state) is not None and self.field_of(turn.state) in TEXT_FIELDS
        )

    def next_field(self, turn: Turn, after: str) -> str:
        """The next question of the form: skip what does not apply; when editing, only gaps."""
        form = self.current(turn)
        editing = turn.data.get("editing", False)
        start = form.fields.index(after) + 1
        for field_id in form.fields[start:]:
            if not applies(turn, field_id):
                continue
            if editing and field_id in turn.answers:
                continue
            return field_state(form, field_id)
        turn.data["editing"] = False
        if turn.answers.get("consent") is False:
            return "no_consent"
        return "summary"

    # --- answers: each returns the state to go to ----------------------------------------------

    def field_choice(self, turn: Turn, button: str) -> str:
        """A button pressed at a field's question (the machine's trigger is the button)."""
        field_id = self.field_of(turn.state)
        answers = turn.answers
        if field_id == "who":
            answers["who"] = button.removeprefix("who_")
            if answers["who"] == "anonymous":
                # 001 art. 13.3: anonymous complaints are registered, not handled.
                turn.data["admissibility"] = {
                    "status": "anonymous", "rule": self.procedure.admissibility_rules["anonymous"]}
                return "admissibility"
            if turn.data.get("admissibility", {}).get("status") == "anonymous":
                turn.data.pop("admissibility")
        elif field_id == "contact":
            method = button.removeprefix("contact_")
            answers["contact"] = {"method": method, "value": None}
            if method in ("phone", "email"):
                return f"{turn.data['form']}_contact_value"
        elif field_id == "consent":
            answers["consent"] = button == "consent_yes"
            if not answers["consent"]:
                return "no_consent"
        else:
            answers[field_id] = FIELD_BUTTONS[field_id][button] or None
        return self.next_field(turn, field_id)

    def answer(self, turn: Turn, field_id: str, text: str) -> str:
        """A typed answer to a field's question (the machine's trigger is `answer`)."""
        if field_id == "who":
            # A name typed at "who is it for?" is the client's own (001 art. 12.1).
            turn.answers["who"] = "self"
            if turn.data.get("admissibility", {}).get("status") == "anonymous":
                turn.data.pop("admissibility")
            field_id = "name"
        turn.answers[field_id] = text
        if field_id == "when":
            parsed = rules.parse_incident_date(text, turn.t.language, turn.now)
            turn.data["incident_date"] = parsed.isoformat() if parsed else None
            adm = turn.data.get("admissibility", {})
            out_of_time = rules.is_out_of_time(
                parsed, turn.data.get("category"), self.procedure, turn.now.date()
            )
            if out_of_time and adm.get("status") not in ("anonymous", "report_only"):
                turn.data["admissibility"] = {
                    "status": "possibly_out_of_time", "decided": False,
                    "rule": self.procedure.admissibility_rules["out_of_time"],
                }
                turn.data["adm_return"] = field_id
                return "admissibility"
            if not out_of_time and adm.get("status") == "possibly_out_of_time":
                turn.data.pop("admissibility")
        return self.next_field(turn, field_id)

    def contact_value(self, turn: Turn, text: str) -> str | None:
        """A typed phone number or e-mail address (trigger `answer`); None if it is not one.

        When it is not, the client has been told why and the question is to be asked again.
        """
        contact = turn.answers.get("contact", {})
        method = contact.get("method")
        value = rules.normalise_phone(text) if method == "phone" else rules.normalise_email(text)
        if value is None:
            turn.say(
                turn.t._(
                    "This does not look like a phone number. Please try again. "
                    "For example: {example}"
                ).format(example=turn.t.ltr("+31 6 12345678"))
                if method == "phone"
                else turn.t._(
                    "This does not look like an e-mail address. Please try again. "
                    "For example: {example}"
                ).format(example=turn.t.ltr("name@example.nl"))
            )
            return None
        turn.answers["contact"] = {"method": method, "value": value}
        return self.next_field(turn, "contact")

    def admissibility_choice(self, turn: Turn, button: str) -> str:
        """The client's answer to 'anonymous' or 'possibly out of time' (trigger: the button)."""
        adm = turn.data.setdefault("admissibility", {})
        if button == "adm_stop":
            clear_draft(turn.data)
            return "stopped"
        if button == "adm_give_name":
            turn.data.pop("admissibility", None)
            turn.answers.pop("who", None)
            return field_state(self.current(turn), "who")
        if button == "adm_register" and adm.get("status") == "possibly_out_of_time":
            adm["status"] = "report_only"
            adm["rule"] = self.procedure.admissibility_rules["registered_only"]
        adm["decided"] = True
        after = turn.data.pop("adm_return", "who")
        return self.next_field(turn, after)

    def summary_choice(self, turn: Turn, button: str) -> str:
        """Send, change or cancel at the summary (trigger: the button); sending adds the effect."""
        if button == "change":
            return "edit"
        if button == "cancel":
            # Nothing is sent; the answers stay, recorded as "no consent", until the client
            # sends them after all or deletes them (000 "alleen gedeeld met toestemming").
            turn.answers["consent"] = False
            return "no_consent"
        # The summary says who receives it and that pressing Send is the consent (000).
        turn.answers["consent"] = True
        form = self.current(turn)
        request = submission(turn, form, self.procedure.admissibility_rules)
        turn.data["pending"] = {"kind": request["kind"], "form": form.id,
                               "preference": turn.data.get("preference"),
                               "contact": turn.answers.get("contact")}
        turn.effects.append(SubmitCase(request, self.procedure.mailboxes[form.mailbox]))
        return "submitting"
