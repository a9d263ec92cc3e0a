"""The steps of a schema: what a button at a step does, and how a form is started.

A talk that helped ends the conversation or registers a signal (003 §5); a confidant or mediation
step starts its request form; an external step (002 §4.3, 004 step 4) ends here; an exclusion
(002 §3.1) leads to the referral. The engine hands these buttons to `Steps.choice` and moves the
machine through the `Driver` it passes in, so this module never imports the engine. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from flows.forms import field_state
from flows.graph import next_kind, step_at, step_number, step_state
from flows.model import SubmitCase
from flows.procedure import Form, Procedure, Schema, Step
from flows.turn import Driver, Turn


class Steps:
    """The steps of one procedure; `driver` (the engine) fires the machine and asks again."""

    def __init__(self, procedure: Procedure, driver: Driver) -> None:
        self.procedure = procedure
        self.driver = driver

    def choice(self, turn: Turn, button: str) -> None:
        """A button at a step's own state: talk, confidant, mediation, external or exclusions."""
        data = turn.data
        at = step_at(self.procedure, turn.state)
        schema = self._schema(turn)
        index = at[1] if at else data.get("step", 0)
        step = at[2] if at else self.procedure.step(schema.steps[index])
        following = index + 1
        if button == "talk_helped":
            data["talked"] = "helped"
            if step.register_solved and step.mailbox:
                self._register_solved(turn, step.mailbox, button)
            else:
                self.driver.fire(turn, button, "resolved")
            return
        if button == "talk_later":
            # 004: the steps are taken one by one; this step comes first.
            turn.say(turn.t._("Please take this step first. Then come back here: this question "
                              "waits for you."))
            self.driver.prompt(turn)
            return
        if button in ("talk_not_helped", "talk_not_tried"):
            data["talked"] = button.removeprefix("talk_")
        elif button == "skip_to_complaint":
            # 001 art. 4.6: the client may go to the committee directly at any time.
            following = next_kind(self.procedure, schema, index, "complaint") or following
        elif button.startswith("pref_") and button != "pref_no_thanks":
            data["preference"] = button.removeprefix("pref_")
            self.start_form(turn, self._form_of_step(step, "confidant_request"), button)
            return
        elif button == "request_yes":
            self.start_form(turn, self._form_of_step(step, "mediation_request"), button)
            return
        elif button == "external_done":
            self.driver.fire(turn, button, "done")
            return
        elif button.startswith("excl_") and button != "excl_none":
            # 002 §3.1: not for this procedure; the referral says where to go instead.
            data["exclusion"] = button.removeprefix("excl_")
            self.driver.fire(turn, button, "referral")
            return
        self.go_to_step(turn, following, button)

    def _form_of_step(self, step: Step, default: str) -> Form:
        return self.procedure.forms[step.form or default]

    def _register_solved(self, turn: Turn, mailbox: str, trigger: str) -> None:
        """Register a solved talk as a signal: no name, no words of the client (003 §5)."""
        signal: dict[str, Any] = {
            "kind": "signal",
            "schema": turn.data.get("schema"),
            "category": turn.data.get("category"),
            "language": turn.t.language,
            "confidant_preference": None,
            "complainant": {"name": None, "anonymous": True,
                            "contact": {"method": "chat", "value": None}},
            "representative": None,
            "complainant_type": None,
            "staff_involved": None,
            "description": None,
            "incident_dates": None,
            "steps_taken": {"talked": "helped", "text": None},
            # 002 §2.3: dissatisfaction solved in the talk is not a complaint.
            "admissibility": {"status": "report_only", "rule": "002 §2.3"},
            "consent": {"given": False, "share_with": mailbox, "at": turn.now.isoformat()},
            "attachments": [],
            "emergency_shown": bool(turn.data.get("emergency_shown")),
        }
        turn.data["pending"] = {"kind": "signal", "form": None}
        turn.effects.append(SubmitCase(signal, self.procedure.mailboxes[mailbox]))
        self.driver.fire(turn, trigger, "submitting")

    def go_to_step(self, turn: Turn, index: int, trigger: str) -> None:
        """Move to step `index` of the schema; a complaint step starts its form."""
        schema = self._schema(turn)
        turn.data["step"] = index
        target = step_state(self.procedure, schema, index)
        step = self.procedure.step(schema.steps[index])
        if step.kind == "complaint":
            self.start_form(turn, self._form_of_step(step, "complaint"), trigger, target)
        else:
            self.driver.fire(turn, trigger, target)

    def start_form(self, turn: Turn, form: Form, trigger: str, target: str | None = None) -> None:
        """Say what the form is for, then ask its first question (or go to `target`)."""
        turn.data["form"] = form.id
        turn.data["answers"] = {}
        t = turn.t
        schema = self._schema(turn)
        index = turn.data.get("step", 0)
        if self.procedure.kinds(schema)[index] != "complaint":
            index = next_kind(self.procedure, schema, -1, "complaint") or 0
        if form.id == "complaint" and form.receiver == "manager":
            # 002 §4.2: the manager of the employee contacts the client to talk about it.
            intro = t._(
                "Step {step} of {total}: your complaint.\n"
                "The manager of the employee contacts you to talk about your complaint. I will "
                "ask you a few questions. At the end you can check and change your answers."
            )
        elif form.id == "confidant_request" and form.receiver == "confidant":
            intro = t._("I will ask you a few short questions. Then we send your request to the "
                        "confidant. You do not have to give your name.")
        else:
            intro = {
                "complaint": t._(
                    "Step {step} of {total}: the formal complaint.\n"
                    "The complaints committee looks into your complaint. I will ask you a few "
                    "questions. At the end you can check and change your answers."
                ),
                "mediation_request": t._(
                    "I will ask you a few short questions. Then we send your request to the chair "
                    "of the complaints committee."
                ),
                "confidant_request": t._(
                    "I will ask you a few short questions. Then we send your request to the "
                    "confidants. You do not have to give your name."
                ),
                "report": t._(
                    "I will ask you a few short questions. Then we register your report."
                ),
            }[form.id]
        turn.say(intro.format(**step_number(self.procedure, schema, index)))
        self.driver.fire(turn, trigger, target or field_state(form, form.fields[0]))

    def _schema(self, turn: Turn) -> Schema:
        return self.procedure.schemas[turn.data["schema"]]
