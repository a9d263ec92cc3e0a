"""The intake conversation: one `transitions` machine per procedure, one pure `step` per event.

`Engine.step(conversation, event, now)` returns the new conversation, the messages to send and the
effects to carry out. It does no I/O: translations are loaded before, and effects are carried out by
the application service, which feeds their results back as events (`CaseRegistered`,
`DossierLoaded`).

The machine is built once from the procedure definition. Each event is fired straight at the
machine's `Event` with a throw-away `Turn` as its model: the conversation is attached for exactly
one event. (`Machine.add_model` binds an `is_<state>` helper per state and costs ~0.35 ms per call
with this machine; firing the event directly costs ~0.015 ms.)

Overlays (choose language, confirm restart, erase or withdraw) are modal dialogs on top of the
procedure: they are kept in `data["overlay"]`, never change the machine's state, and so can be used
at any moment without losing progress.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from transitions import Machine, MachineError, State

from flows import rules
from flows.handoff import file_marker
from flows.i18n import Catalogs, Translator
from flows.model import (
    LANGUAGES,
    Attachment,
    AttachmentRefused,
    Button,
    CaseRegistered,
    Choice,
    Command,
    Conversation,
    DossierLoaded,
    Effect,
    EraseDossier,
    Event,
    LoadDossier,
    OutMessage,
    Start,
    StepResult,
    SubmitCase,
    Text,
    WithdrawCase,
)
from flows.procedure import Form, Procedure, Schema
from flows.register import (
    FollowUpStep,
    follow_up_choice,
    follow_up_text,
    reply_choice,
    reply_text,
)
from flows.texts import (
    CATEGORY,
    CONTACT,
    FIELD,
    GLOBAL_ACTIONS,
    KIND,
    LANGUAGE_NAMES,
    PREFERENCE,
    STATUS,
    SUMMARY,
    TRIAGE,
    WHO,
)

MAX_ATTACHMENTS = 10
# 002 §4.1: a complaint can be withdrawn while it is being handled, not after the decision.
WITHDRAWABLE = frozenset({"received", "acknowledged", "in_mediation", "with_committee"})
COMMANDS = ("start", "help", "language", "dossier", "withdraw", "erase", "restart", "new")
TEXT_FIELDS = {
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
# Buttons on text fields: button id -> the answer it stands for.
FIELD_BUTTONS: dict[str, dict[str, str]] = {
    "staff": {"staff_unknown": ""},
    "when": {"when_unknown": ""},
    "tried": {"tried_nothing": ""},
    "name_or_anonymous": {"anonymous": ""},
    "description_optional": {"skip": ""},
}
END_STATES = ("done", "resolved", "stopped")


@dataclass
class Turn:
    """The model the machine sees during one event: the conversation plus what the event produced."""

    engine: Engine
    conv: Conversation
    t: Translator
    now: datetime
    out: list[OutMessage] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    dest: str = ""

    @property
    def state(self) -> str:  # transitions reads and writes the model's `state`
        return self.conv.state

    @state.setter
    def state(self, value: str) -> None:
        self.conv.state = value

    @property
    def data(self) -> dict[str, Any]:
        return self.conv.data

    @property
    def answers(self) -> dict[str, Any]:
        answers: dict[str, Any] = self.conv.data.setdefault("answers", {})
        return answers

    def on_enter(self, event_data: Any) -> None:
        """Every state shows its question when it is entered (a `transitions` callback).

        `submitting` is passed through within one unit of work, so it has nothing to show.
        """
        if self.conv.state != "submitting":
            self.engine.prompt(self)

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> None:
        self.out.append(OutMessage(text=text, buttons=buttons, rtl=self.t.rtl))


def _rows(*buttons: Button, per_row: int = 1) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


class Engine:
    """The conversation for one procedure, in every language of the catalogs."""

    def __init__(self, procedure: Procedure, catalogs: Catalogs, organisation: str = "") -> None:
        self.procedure = procedure
        self.catalogs = catalogs
        self.organisation = organisation or procedure.name
        self.edges = self._edges()
        self.machine = Machine(
            model=None,
            states=[State(name, on_enter="on_enter") for name in self.edges],
            initial="language",
            auto_transitions=False,
            send_event=True,
        )
        for source, triggers in self.edges.items():
            for trigger, dests in triggers.items():
                for dest in sorted(dests):
                    self.machine.add_transition(
                        trigger, source, dest, conditions=[_routes_to(dest)]
                    )

    # --- the graph --------------------------------------------------------------------------

    def step_state(self, schema: Schema, index: int) -> str:
        step = schema.steps[index]
        form = self.procedure.form_for_step(step)
        if step == "complaint" and form:
            return self.field_state(form, form.fields[0])
        return f"{schema.id}_{step}"

    @staticmethod
    def field_state(form: Form, field_id: str) -> str:
        return f"{form.id}_{field_id}"

    def _edges(self) -> dict[str, dict[str, set[str]]]:
        """Every state, and for each trigger the states it may lead to. Built from the procedure."""
        p = self.procedure
        edges: dict[str, dict[str, set[str]]] = {}

        def add(source: str, trigger: str, *dests: str) -> None:
            edges.setdefault(source, {}).setdefault(trigger, set()).update(dests)

        for lang in LANGUAGES:
            add("language", f"lang_{lang}", "privacy")
        add("privacy", "ok", "triage")
        for option in p.triage:
            schema = p.schemas[option.schema]
            asks_category = option.category is None and bool(schema.categories)
            add("triage", option.id, "category" if asks_category else self._after_category(schema))
        for schema in p.schemas.values():
            for category in schema.categories:
                add("category", category, self._after_category(schema))
            if schema.ask_danger:
                for trigger in ("danger_yes", "danger_no"):
                    add("danger", trigger, self.step_state(schema, 0))
        complaint = p.forms["complaint"]
        complaint_start = self.field_state(complaint, complaint.fields[0])
        for schema in p.schemas.values():
            for index, step in enumerate(schema.steps):
                state = self.step_state(schema, index)
                following = (
                    self.step_state(schema, index + 1) if index + 1 < len(schema.steps) else state
                )
                form = p.form_for_step(step)
                if step == "talk":
                    add(state, "talk_helped", "resolved")
                    add(state, "talk_not_helped", following)
                    add(state, "talk_not_tried", following)
                    add(state, "skip_to_complaint", complaint_start)
                elif step == "mediation" and form:
                    add(state, "request_yes", self.field_state(form, form.fields[0]))
                    add(state, "request_no", following)
                elif step == "confidant" and form:
                    for pref in ("pref_female", "pref_male", "pref_none"):
                        add(state, pref, self.field_state(form, form.fields[0]))
                    add(state, "pref_no_thanks", following)
        for form in p.forms.values():
            states = [self.field_state(form, f) for f in form.fields]
            for index, field_id in enumerate(form.fields):
                source = states[index]
                onward = {*states[index + 1 :], "summary", "admissibility", "no_consent"}
                for trigger in self._field_triggers(field_id):
                    add(source, trigger, *onward)
                if field_id == "contact":
                    add(source, "contact_phone", f"{form.id}_contact_value")
                    add(source, "contact_email", f"{form.id}_contact_value")
                    add(f"{form.id}_contact_value", "answer", *onward)
            add("edit", "edit", *states, f"{form.id}_contact_value")
        complaint_states = [self.field_state(complaint, f) for f in complaint.fields]
        add("admissibility", "adm_send", *complaint_states, "summary", "no_consent")
        add("admissibility", "adm_register", *complaint_states, "summary", "no_consent")
        add("admissibility", "adm_give_name", complaint_start)
        add("admissibility", "adm_stop", "stopped")
        add("summary", "confirm", "submitting")
        add("summary", "change", "edit")
        add("summary", "cancel", "stopped")
        add("no_consent", "consent_yes", "summary")
        add("no_consent", "discard", "stopped")
        request_steps = {
            self.step_state(s, i + 1)
            for s in p.schemas.values()
            for i in range(len(s.steps) - 1)
        }
        add("submitting", "registered", "done", "after_request")
        add("after_request", "continue", *request_steps)
        add("after_request", "finish", "done")
        # Every state after the language may start over (restart, new complaint).
        for source in [*edges, *END_STATES]:
            if source not in ("language", "privacy"):
                add(source, "reset", "triage")
        valid = set(edges)
        for triggers in edges.values():
            for trigger in triggers:
                triggers[trigger] &= valid
        return edges

    @staticmethod
    def _field_triggers(field_id: str) -> tuple[str, ...]:
        if field_id == "who":
            return ("who_self", "who_representative", "who_anonymous")
        if field_id == "contact":
            return ("contact_chat",)
        if field_id == "consent":
            return ("consent_yes", "consent_no")
        return ("answer", *FIELD_BUTTONS.get(field_id, {}))

    # --- one event ----------------------------------------------------------------------------

    def step(self, conversation: Conversation, event: Event, now: datetime) -> StepResult:
        """Apply one event to a copy of the conversation; the caller's object is left untouched."""
        conv = copy.deepcopy(conversation)
        turn = Turn(engine=self, conv=conv, t=self.catalogs.get(conv.language), now=now)
        if isinstance(event, Start):
            self._on_start(turn, event)
        elif isinstance(event, Command):
            self._on_command(turn, event.name.lower().lstrip("/"))
        elif isinstance(event, Choice):
            self._on_choice(turn, event)
        elif isinstance(event, Text):
            self._on_text(turn, rules.clean_inbound(event.text))
        elif isinstance(event, Attachment | AttachmentRefused):
            self._on_attachment(turn, event)
        elif isinstance(event, CaseRegistered):
            self._on_registered(turn, event)
        elif isinstance(event, DossierLoaded):
            self._on_dossier(turn, event)
        return StepResult(conv, tuple(turn.out), tuple(turn.effects))

    def fire(self, turn: Turn, trigger: str, dest: str) -> None:
        """Move along the machine's edge `trigger` to `dest`; an edge the graph lacks is a bug."""
        turn.dest = dest
        event = self.machine.events.get(trigger)
        if event is None or not event.trigger(turn):
            raise MachineError(f"no edge {turn.state} --{trigger}--> {dest}")

    def _on_start(self, turn: Turn, event: Start) -> None:
        if turn.state == "language" and not turn.data.get("overlay"):
            hint = (event.language_hint or "").split("-")[0].lower()
            if hint in LANGUAGES:
                turn.data["hint"] = hint
                turn.conv.language = turn.conv.language or hint
                turn.t = self.catalogs.get(turn.conv.language)
            self.prompt(turn)
            return
        turn.say(turn.t._("Welcome back. This is where you were:"))
        self.prompt(turn)

    def _on_command(self, turn: Turn, name: str) -> None:
        t = turn.t
        if name == "start":
            self._on_start(turn, Start())
        elif name == "help":
            self._help(turn)
            self.prompt(turn)
        elif name == "language":
            turn.data["overlay"] = {"kind": "language"}
            self.prompt(turn)
        elif name == "dossier":
            turn.effects.append(LoadDossier())
        elif name == "withdraw":
            turn.effects.append(LoadDossier("withdraw"))
        elif name == "erase":
            turn.data["overlay"] = {"kind": "erase"}
            self.prompt(turn)
        elif name in ("restart", "new"):
            if turn.state in ("language", "privacy"):
                turn.data.pop("overlay", None)
                self.prompt(turn)
            elif turn.state in (*END_STATES, "triage"):
                self._restart(turn)
            else:
                turn.data["overlay"] = {"kind": "restart"}
                self.prompt(turn)
        else:
            turn.say(t._("I do not know this command."))
            self._help(turn)
            self.prompt(turn)

    def _help(self, turn: Turn) -> None:
        t = turn.t
        text = t._(
            "How this works:\n"
            "• Press a button, or type your answer.\n"
            "• /language: choose another language.\n"
            "• /dossier: see everything we stored about you.\n"
            "• /withdraw: withdraw a complaint you sent.\n"
            "• /erase: erase all your data.\n"
            "• /restart: start again.\n"
            "• /help: this help.\n"
            "In danger? Call {phone}."
        ).format(phone=t.ltr("112"))
        actions = ("language", "dossier", "withdraw", "erase", "restart")
        turn.say(text, _rows(*(self._global(t, a) for a in actions), per_row=2))

    @staticmethod
    def _global(t: Translator, action: str) -> Button:
        return Button(f"cmd:{action}", t._(GLOBAL_ACTIONS[action]))

    def _on_choice(self, turn: Turn, event: Choice) -> None:
        button = event.button_id
        if (self._follow_up(turn, follow_up_choice(turn.data, turn.t, button))
                or self._follow_up(turn, reply_choice(turn.data, turn.t, button))):
            return
        if button.startswith("cmd:") and button[4:] in COMMANDS:
            self._on_command(turn, button[4:])
            return
        overlay = turn.data.get("overlay")
        stale = event.state is not None and event.state != turn.state
        if stale or button not in self.current_buttons(turn):
            turn.say(turn.t._("This button is no longer valid. Please use the buttons below."))
            self.prompt(turn)
            return
        if overlay:
            self._overlay_choice(turn, overlay, button)
        else:
            self._procedure_choice(turn, button)

    def _follow_up(self, turn: Turn, step: FollowUpStep | None) -> bool:
        """Follow-up answers (003 §4) work at any moment; flows/register.py handles them."""
        if step is None:
            return False
        turn.out.extend(step.messages)
        turn.effects.extend(step.effects)
        if step.reprompt:
            self.prompt(turn)
        return True

    def _on_text(self, turn: Turn, text: str) -> None:
        t = turn.t
        if (self._follow_up(turn, follow_up_text(turn.data, t, text))
                or self._follow_up(turn, reply_text(turn.data, t, text))):
            return
        if turn.data.get("overlay") or not self._takes_text(turn):
            # A typed button label (or its number) counts as pressing it.
            message = self.render(turn)
            labels = [b for row in message.buttons for b in row]
            typed = text.strip().casefold()
            for number, b in enumerate(labels, start=1):
                if typed in (b.label.casefold(), str(number)):
                    self._on_choice(turn, Choice(b.id))
                    return
            turn.say(t._("Please choose one of the buttons."))
            self.prompt(turn)
            return
        if rules.is_blank(text):
            turn.say(t._("I did not receive any text. Please type your answer."))
            self.prompt(turn)
            return
        field_id = self._field_of(turn.state)
        limit = rules.MAX_LONG_TEXT if field_id in LONG_FIELDS else rules.MAX_SHORT_TEXT
        if len(text) > limit:
            turn.say(
                t._(
                    "Your text is too long: {length} characters. The limit is {limit}. "
                    "Please make it shorter. Nothing was saved."
                ).format(length=len(text), limit=limit)
            )
            self.prompt(turn)
            return
        if turn.state.endswith("_contact_value"):
            self._contact_value(turn, text)
            return
        self._answer(turn, field_id, text)

    def _on_attachment(self, turn: Turn, event: Attachment | AttachmentRefused) -> None:
        t = turn.t
        if isinstance(event, AttachmentRefused):
            if event.reason == "too_big":
                megabytes = max(1, event.limit_bytes // 1_000_000)
                turn.say(
                    t._("This file is too big. The limit is {size} MB. Please send a smaller file.")
                    .format(size=megabytes)
                )
            else:
                turn.say(t._("I could not read this file. Please try again."))
            return
        if self._form_of(turn.state) is None and turn.state != "summary":
            turn.say(t._("You can only add files while you write your complaint."))
            self.prompt(turn)
            return
        files: list[dict[str, Any]] = turn.data.setdefault("attachments", [])
        if len(files) >= MAX_ATTACHMENTS:
            turn.say(
                t.ngettext("You can add at most {count} file.", "You can add at most {count} files.",
                           MAX_ATTACHMENTS).format(count=MAX_ATTACHMENTS)
            )
            return
        files.append(
            {"ref": event.ref, "kind": event.kind, "size": event.size,
             "content_type": event.content_type}
        )
        turn.say(
            t.ngettext(
                "I added your file. You have added {count} file now.",
                "I added your file. You have added {count} files now.",
                len(files),
            ).format(count=len(files))
        )

    def _on_registered(self, turn: Turn, event: CaseRegistered) -> None:
        if turn.state != "submitting":
            return
        pending = turn.data.pop("pending", {})
        kind = pending.get("kind", "complaint")
        turn.data.setdefault("cases", []).append(
            {
                "reference": event.reference,
                "kind": kind,
                "status": "received",
                "created_at": event.created_at.isoformat(),
            }
        )
        turn.data["last_reference"] = event.reference
        self._receipt(turn, kind, event.reference, event.created_at, pending)
        form_id = pending.get("form")
        schema = self.procedure.schemas.get(turn.data.get("schema", ""))
        has_next = (
            form_id != "complaint"
            and schema is not None
            and turn.data.get("step", 0) + 1 < len(schema.steps)
        )
        for key in ("answers", "attachments", "admissibility", "editing", "form"):
            turn.data.pop(key, None)
        self.fire(turn, "registered", "after_request" if has_next else "done")

    def _on_dossier(self, turn: Turn, event: DossierLoaded) -> None:
        t = turn.t
        # The register may have moved a case on since the client last wrote: take its status.
        current = {c["reference"]: c["status"] for c in event.cases}
        for summary in turn.data.get("cases", []):
            summary["status"] = current.get(summary["reference"], summary["status"])
        if event.purpose == "withdraw":
            if not self._withdrawable(turn):
                turn.say(t._("You have no sent complaint that you can withdraw."))
            else:
                turn.data["overlay"] = {"kind": "withdraw"}
            self.prompt(turn)
            return
        lines = [t._("Everything we stored about you:")]
        lines.append(
            t._("Language: {language}").format(language=LANGUAGE_NAMES[turn.t.language])
        )
        answers = turn.data.get("answers", {})
        if answers:
            lines.append("")
            lines.append(t._("Answers you did not send yet:"))
            lines.extend(self._answer_lines(turn, answers))
        if not event.cases:
            lines.append("")
            lines.append(t._("You have not sent any complaint or request."))
        for case in event.cases:
            lines.append("")
            lines.append(
                t._("{reference}: {kind}, {status}, sent on {date}").format(
                    reference=t.ltr(case["reference"]),
                    kind=t._(KIND.get(case["kind"], case["kind"])),
                    status=t._(STATUS.get(case["status"], case["status"])),
                    date=t.date(datetime.fromisoformat(case["created_at"])),
                )
            )
            payload = case.get("payload")
            if payload:
                lines.extend(self._document_lines(turn, payload))
            else:
                lines.append(t._("(The content of this case was erased.)"))
            if case.get("messages"):
                lines.append(t._("Messages about this case:"))
            for message in case.get("messages") or []:
                who = t._("You") if message["from"] == "client" else t._("The organisation")
                lines.append("– " + t._("{date}, {who}: {text}").format(
                    date=t.date(datetime.fromisoformat(message["at"])), who=who,
                    text=t.quote(message["text"])))
        turn.say("\n".join(lines))
        self.prompt(turn)

    # --- the procedure -------------------------------------------------------------------------

    def _procedure_choice(self, turn: Turn, button: str) -> None:
        p, data, state = self.procedure, turn.data, turn.state
        if state == "language":
            turn.conv.language = button.removeprefix("lang_")
            turn.t = self.catalogs.get(turn.conv.language)
            self.fire(turn, button, "privacy")
        elif state == "privacy":
            self.fire(turn, "ok", "triage")
        elif state == "triage":
            option = next(o for o in p.triage if o.id == button)
            data.update(schema=option.schema, triage=option.id, step=0)
            data["category"] = option.category
            schema = p.schemas[option.schema]
            if option.category is None and schema.categories:
                self.fire(turn, button, "category")
            else:
                self.fire(turn, button, self._after_category(schema))
        elif state == "category":
            data["category"] = button
            self.fire(turn, button, self._after_category(self._schema(turn)))
        elif state == "danger":
            data["emergency_shown"] = button == "danger_yes"
            if button == "danger_yes":
                turn.say(
                    turn.t._(
                        "Call {phone} now. This is the emergency number for police, ambulance "
                        "and fire brigade. The call is free.\n"
                        "When you are safe, you can continue here."
                    ).format(phone=turn.t.ltr("112"))
                )
            self.fire(turn, button, self.step_state(self._schema(turn), 0))
        elif state == "summary":
            self._summary_choice(turn, button)
        elif state == "edit":
            field_id = button.removeprefix("edit_")
            data["editing"] = True
            self.fire(turn, "edit", self.field_state(self._current_form(turn), field_id))
        elif state == "admissibility":
            self._admissibility_choice(turn, button)
        elif state == "no_consent":
            if button == "consent_yes":
                turn.answers["consent"] = True
                self.fire(turn, button, "summary")
            else:
                self._clear_draft(turn)
                self.fire(turn, button, "stopped")
        elif state == "after_request":
            if button == "continue":
                self._go_to_step(turn, data.get("step", 0) + 1, button)
            else:
                self.fire(turn, button, "done")
        elif self._form_of(state) is not None:
            self._field_choice(turn, button)
        else:
            self._step_choice(turn, button)

    def _after_category(self, schema: Schema) -> str:
        return "danger" if schema.ask_danger else self.step_state(schema, 0)

    def _step_choice(self, turn: Turn, button: str) -> None:
        data = turn.data
        schema = self._schema(turn)
        index = data.get("step", 0)
        following = index + 1
        if button == "talk_helped":
            data["talked"] = "helped"
            self.fire(turn, button, "resolved")
            return
        if button in ("talk_not_helped", "talk_not_tried"):
            data["talked"] = button.removeprefix("talk_")
        elif button == "skip_to_complaint":
            # 001 art. 4.6: the client may go to the committee directly at any time.
            following = schema.steps.index("complaint")
        elif button.startswith("pref_") and button != "pref_no_thanks":
            data["preference"] = button.removeprefix("pref_")
            self._start_form(turn, self.procedure.forms["confidant_request"], button)
            return
        elif button == "request_yes":
            self._start_form(turn, self.procedure.forms["mediation_request"], button)
            return
        self._go_to_step(turn, following, button)

    def _go_to_step(self, turn: Turn, index: int, trigger: str) -> None:
        schema = self._schema(turn)
        turn.data["step"] = index
        target = self.step_state(schema, index)
        if schema.steps[index] == "complaint":
            self._start_form(turn, self.procedure.forms["complaint"], trigger, target)
        else:
            self.fire(turn, trigger, target)

    def _start_form(self, turn: Turn, form: Form, trigger: str, target: str | None = None) -> None:
        turn.data["form"] = form.id
        turn.data["answers"] = {}
        t = turn.t
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
        }[form.id]
        turn.say(intro.format(**self._step_number(turn, "complaint")))
        self.fire(turn, trigger, target or self.field_state(form, form.fields[0]))

    def _field_choice(self, turn: Turn, button: str) -> None:
        field_id = self._field_of(turn.state)
        answers = turn.answers
        if field_id == "who":
            answers["who"] = button.removeprefix("who_")
            if answers["who"] == "anonymous":
                # 001 art. 13.3: anonymous complaints are registered, not handled.
                turn.data["admissibility"] = {"status": "anonymous", "rule": "001 art. 13.3"}
                self.fire(turn, button, "admissibility")
                return
            if turn.data.get("admissibility", {}).get("status") == "anonymous":
                turn.data.pop("admissibility")
        elif field_id == "contact":
            method = button.removeprefix("contact_")
            answers["contact"] = {"method": method, "value": None}
            if method in ("phone", "email"):
                self.fire(turn, button, f"{turn.data['form']}_contact_value")
                return
        elif field_id == "consent":
            answers["consent"] = button == "consent_yes"
            if not answers["consent"]:
                self.fire(turn, button, "no_consent")
                return
        else:
            answers[field_id] = FIELD_BUTTONS[field_id][button] or None
        self.fire(turn, button, self._next_field(turn, field_id))

    def _answer(self, turn: Turn, field_id: str, text: str) -> None:
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
                    "status": "possibly_out_of_time", "rule": "001 art. 13.1", "decided": False,
                }
                turn.data["adm_return"] = field_id
                self.fire(turn, "answer", "admissibility")
                return
            if not out_of_time and adm.get("status") == "possibly_out_of_time":
                turn.data.pop("admissibility")
        self.fire(turn, "answer", self._next_field(turn, field_id))

    def _contact_value(self, turn: Turn, text: str) -> None:
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
            self.prompt(turn)
            return
        turn.answers["contact"] = {"method": method, "value": value}
        self.fire(turn, "answer", self._next_field(turn, "contact"))

    def _applies(self, turn: Turn, field_id: str) -> bool:
        who = turn.answers.get("who")
        if field_id == "name":
            return who != "anonymous"
        if field_id in ("representative_name", "representative_relation"):
            return who == "representative"
        return True

    def _next_field(self, turn: Turn, after: str) -> str:
        """The next question of the form: skip what does not apply; when editing, only gaps."""
        form = self._current_form(turn)
        editing = turn.data.get("editing", False)
        start = form.fields.index(after) + 1
        for field_id in form.fields[start:]:
            if not self._applies(turn, field_id):
                continue
            if editing and field_id in turn.answers:
                continue
            return self.field_state(form, field_id)
        turn.data["editing"] = False
        if turn.answers.get("consent") is False:
            return "no_consent"
        return "summary"

    def _admissibility_choice(self, turn: Turn, button: str) -> None:
        adm = turn.data.setdefault("admissibility", {})
        if button == "adm_stop":
            self._clear_draft(turn)
            self.fire(turn, button, "stopped")
            return
        if button == "adm_give_name":
            turn.data.pop("admissibility", None)
            turn.answers.pop("who", None)
            self.fire(turn, button, self.field_state(self._current_form(turn), "who"))
            return
        if button == "adm_register" and adm.get("status") == "possibly_out_of_time":
            adm["status"] = "report_only"
            adm["rule"] = "001 art. 17.5"
        adm["decided"] = True
        after = turn.data.pop("adm_return", "who")
        self.fire(turn, button, self._next_field(turn, after))

    def _summary_choice(self, turn: Turn, button: str) -> None:
        if button == "change":
            self.fire(turn, button, "edit")
        elif button == "cancel":
            self._clear_draft(turn)
            self.fire(turn, button, "stopped")
        else:
            form = self._current_form(turn)
            submission = self.submission(turn, form)
            turn.data["pending"] = {"kind": submission["kind"], "form": form.id,
                                   "preference": turn.data.get("preference"),
                                   "contact": turn.answers.get("contact")}
            turn.effects.append(SubmitCase(submission, self.procedure.mailboxes[form.mailbox]))
            self.fire(turn, button, "submitting")

    def submission(self, turn: Turn, form: Form) -> dict[str, Any]:
        """The structured request, in the shape of `complaint.json` (see flows/complaint.py)."""
        a, data = turn.answers, turn.data
        adm = data.get("admissibility", {"status": "admissible", "rule": "001 art. 13"})
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
            "staff_involved": a.get("staff"),
            "description": a.get("description") or a.get("description_optional"),
            "incident_dates": {"text": when, "parsed": data.get("incident_date")}
            if when
            else None,
            "steps_taken": {"talked": talked, "text": a.get("tried")},
            "admissibility": {"status": adm.get("status", "admissible"),
                              "rule": adm.get("rule", "001 art. 13")},
            "consent": {"given": bool(a.get("consent")),
                        "share_with": form.mailbox, "at": turn.now.isoformat()},
            "attachments": list(data.get("attachments", [])),
            "emergency_shown": bool(data.get("emergency_shown")),
        }

    # --- overlays ------------------------------------------------------------------------------

    def _overlay_choice(self, turn: Turn, overlay: dict[str, Any], button: str) -> None:
        t = turn.t
        kind = overlay["kind"]
        turn.data.pop("overlay")
        if kind == "language":
            turn.conv.language = button.removeprefix("lang_")
            turn.t = self.catalogs.get(turn.conv.language)
            self.prompt(turn)
        elif button == "no":
            turn.say(t._("OK, we go on."))
            self.prompt(turn)
        elif kind == "restart":
            self._restart(turn)
        elif kind == "erase":
            turn.effects.append(EraseDossier())
            turn.say(
                t._(
                    "All your data is erased. If we had already sent something, we asked the "
                    "receiver to erase it too. You can start again at any time with /start."
                )
            )
            turn.conv.state = "language"
            turn.conv.data = {}
        elif kind == "withdraw":
            reference = button.removeprefix("wd_")
            turn.data["overlay"] = {"kind": "withdraw_confirm", "reference": reference}
            self.prompt(turn)
        elif kind == "withdraw_confirm":
            reference = overlay["reference"]
            for case in turn.data.get("cases", []):
                if case["reference"] == reference:
                    case["status"] = "withdrawn"
            turn.effects.append(WithdrawCase(reference))
            turn.say(
                t._("{reference} is withdrawn. We passed this on. It stays registered.")
                .format(reference=t.ltr(reference))
            )
            self.prompt(turn)

    def _restart(self, turn: Turn) -> None:
        self._clear_draft(turn)
        for key in ("schema", "triage", "category", "step", "talked", "preference",
                    "emergency_shown"):
            turn.data.pop(key, None)
        turn.data.pop("overlay", None)
        self.fire(turn, "reset", "triage")

    @staticmethod
    def _clear_draft(turn: Turn) -> None:
        for key in ("answers", "attachments", "admissibility", "adm_return", "editing", "form",
                    "pending", "incident_date"):
            turn.data.pop(key, None)

    # --- what the client sees ------------------------------------------------------------------

    def prompt(self, turn: Turn) -> None:
        turn.out.append(self.render(turn))

    def current_buttons(self, turn: Turn) -> list[str]:
        return self.render(turn).button_ids()

    def render(self, turn: Turn) -> OutMessage:
        """The question of the current state (or open overlay), with its buttons."""
        overlay = turn.data.get("overlay")
        text, buttons = self._render_overlay(turn, overlay) if overlay else self._render(turn)
        return OutMessage(text=text, buttons=buttons, rtl=turn.t.rtl)

    def _language_buttons(self, turn: Turn) -> tuple[tuple[Button, ...], ...]:
        current = turn.conv.language
        return _rows(
            *(
                Button(f"lang_{lang}", ("✓ " if lang == current else "") + LANGUAGE_NAMES[lang])
                for lang in LANGUAGES
            ),
            per_row=2,
        )

    def _render_overlay(
        self, turn: Turn, overlay: dict[str, Any]
    ) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        t = turn.t
        kind = overlay["kind"]
        yes_no = {
            "restart": (t._("Yes, start again"), t._("No, go on")),
            "erase": (t._("Yes, erase all"), t._("No")),
            "withdraw_confirm": (t._("Yes, withdraw"), t._("No")),
        }
        if kind == "language":
            return self._language_prompt(turn), self._language_buttons(turn)
        if kind == "withdraw":
            cases = self._withdrawable(turn)
            return (
                t._("Which one do you want to withdraw?"),
                _rows(*(Button(f"wd_{c['reference']}", c["reference"]) for c in cases),
                      Button("no", t._("No"))),
            )
        text = {
            "restart": t._("Start again? Your answers so far will be deleted. "
                           "What you already sent stays."),
            "erase": t._(
                "Do you really want to erase all your data? This cannot be undone. "
                "A complaint that you sent is then erased here too."
            ),
            "withdraw_confirm": t._(
                "Do you really want to withdraw {reference}? Then nobody works on it any more. "
                "It stays registered."
            ).format(reference=t.ltr(str(overlay.get("reference", "")))),
        }[kind]
        yes, no = yes_no[kind]
        return text, _rows(Button("yes", yes), Button("no", no), per_row=2)

    @staticmethod
    def _withdrawable(turn: Turn) -> list[dict[str, Any]]:
        return [c for c in turn.data.get("cases", []) if c["status"] in WITHDRAWABLE]

    def _language_prompt(self, turn: Turn) -> str:
        if turn.conv.language:
            return turn.t._("Choose your language.")
        return "\n".join(self.catalogs.get(lang)._("Choose your language.") for lang in LANGUAGES)

    def _render(self, turn: Turn) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        t, state = turn.t, turn.state
        if state == "language":
            return self._language_prompt(turn), self._language_buttons(turn)
        if state == "privacy":
            return (
                t._(
                    "Welcome. This is the complaints chat of {organisation}.\n"
                    "Here you can tell us if you are not happy with the help you get, or if "
                    "someone treated you badly.\n\n"
                    "Your privacy:\n"
                    "• We keep your answers in your own file. Only the people who handle "
                    "complaints can read them: the complaints committee, a confidant or a "
                    "coordinator.\n"
                    # 001 art. 14.4 and 14.9: the staff member hears the complaint, sees the documents.
                    "• A formal complaint is also shown to the person it is about, so that they "
                    "can answer.\n"
                    # 001 art. 5.2: secrecy, with one exception the client must know beforehand.
                    "• A confidant keeps what you say secret. There is one exception: a possible "
                    "crime. The confidant must report that to the board of the organisation.\n"
                    "• We share nothing else without your consent.\n"
                    "• You can always see your file, withdraw your complaint or erase your "
                    "data.\n\n"
                    "Type /help at any moment for help."
                ).format(organisation=self.organisation),
                _rows(Button("ok", t._("Continue"))),
            )
        if state == "triage":
            text = t._(
                "What is it about?\n"
                "• Not happy with the help, or a disagreement with your volunteer.\n"
                "• Unwanted behaviour: for example discrimination, bullying, aggression or "
                "sexual harassment.\n"
                "• Not sure? Then we take you to a confidant. A confidant is on your side."
            )
            return text, _rows(*(Button(o.id, t._(TRIAGE[o.id])) for o in self.procedure.triage))
        if state == "category":
            schema = self._schema(turn)
            return (
                t._("What fits best?"),
                _rows(*(Button(c, t._(CATEGORY[c])) for c in schema.categories), per_row=2),
            )
        if state == "danger":
            return (
                t._("First: are you in danger right now?"),
                _rows(Button("danger_yes", t._("Yes, I am in danger")), Button("danger_no",
                      t._("No")), per_row=2),
            )
        if state.endswith("_talk"):
            return self._render_talk(turn)
        if state.endswith("_mediation"):
            return (
                t._(
                    "Step {step} of {total}: help to find a solution.\n"
                    "The chair of the complaints committee can help you and the other person "
                    "to find a solution together. This is called mediation. It is free.\n"
                    "Do you want to ask for mediation?"
                ).format(**self._step_number(turn, "mediation")),
                _rows(Button("request_yes", t._("Yes, ask for it")),
                      Button("request_no", t._("No, formal complaint"))),
            )
        if state.endswith("_confidant"):
            # 001 art. 5.2: secrecy, except a possible crime, which the confidant reports to the board.
            return (
                t._(
                    "Step {step} of {total}: a confidant.\n"
                    "A confidant listens to you and helps you to find a solution. The confidant "
                    "is on your side and keeps what you say secret. One exception: a possible "
                    "crime must be reported to the board of the organisation. "
                    "You do not have to give your name.\n"
                    "Do you want a confidant? You may choose a woman or a man."
                ).format(**self._step_number(turn, "confidant")),
                _rows(
                    Button("pref_female", t._("A woman")),
                    Button("pref_male", t._("A man")),
                    Button("pref_none", t._("No preference")),
                    Button("pref_no_thanks", t._("No, thank you")),
                    per_row=2,
                ),
            )
        if state == "admissibility":
            return self._render_admissibility(turn)
        if state == "summary":
            return self._render_summary(turn)
        if state == "edit":
            form = self._current_form(turn)
            fields = [f for f in form.fields if self._applies(turn, f)]
            return (
                t._("What do you want to change?"),
                _rows(*(Button(f"edit_{f}", t._(FIELD[f])) for f in fields), per_row=2),
            )
        if state == "no_consent":
            return (
                t._(
                    "We send nothing without your consent. Your answers stay in your file until "
                    "you erase them. You can still give consent later."
                ),
                _rows(Button("consent_yes", t._("Send it after all")),
                      Button("discard", t._("Delete my answers"))),
            )
        if state == "submitting":
            return t._("One moment, please. We are sending it."), ()
        if state == "after_request":
            return (
                t._("Do you also want to make a formal complaint now? You can also do it later."),
                _rows(Button("continue", t._("Yes, make complaint")),
                      Button("finish", t._("No, that is all"))),
            )
        if state in END_STATES:
            text = {
                "done": t._("You are done. What do you want to do now?"),
                "resolved": t._(
                    "Good to hear that talking helped. If the problem comes back, you can come "
                    "back here at any time."
                ),
                "stopped": t._("We stopped. Nothing was sent."),
            }[state]
            return text, _rows(self._global(t, "new"), self._global(t, "dossier"),
                               self._global(t, "help"), per_row=2)
        return self._render_field(turn)

    def _render_talk(self, turn: Turn) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        t = turn.t
        schema = self._schema(turn)
        number = self._step_number(turn, "talk")
        if not schema.face_person:
            # Unwanted behaviour, or "not sure" (000 Schema B, 004 step 2): never send the client
            # to the person or their manager first. Open with what they may do: the confidant.
            text = t._(
                "Step {step} of {total}: talk about it, if you want.\n"
                "A confidant can help you. You can go to a confidant now. If you feel safe, you "
                "may first talk about it with someone at the organisation. You choose.\n"
                "Did you already talk about it with someone?"
            ).format(**number)
            not_tried = t._("No")
        else:
            text = t._(
                "Step {step} of {total}: talk about it.\n"
                "First talk with the person it is about. Does that not help? Then talk with "
                "their manager, the coordinator."
            ).format(**number) + "\n" + t._("Did you try this?")
            not_tried = t._("No, I prefer not to")
        return text, _rows(
            Button("talk_helped", t._("Yes, it helped")),
            Button("talk_not_helped", t._("Yes, it did not help")),
            Button("talk_not_tried", not_tried),
            Button("skip_to_complaint", t._("Formal complaint now")),
        )

    def _render_admissibility(self, turn: Turn) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        t = turn.t
        if turn.data.get("admissibility", {}).get("status") == "anonymous":
            return (
                t._(
                    "You want to stay anonymous. The committee cannot handle a complaint "
                    "without a name. We can register it as a report. The organisation uses "
                    "reports to improve its work."
                ),
                _rows(Button("adm_register", t._("Yes, register it")),
                      Button("adm_give_name", t._("I will give my name"))),
            )
        months = self.procedure.limit_months
        return (
            t.ngettext(
                "This happened more than {count} month ago. The committee may not handle "
                "complaints that old. You can still send it, and the committee decides. "
                "Or we only register it as a report.",
                "This happened more than {count} months ago. The committee may not handle "
                "complaints that old. You can still send it, and the committee decides. "
                "Or we only register it as a report.",
                months,
            ).format(count=months),
            _rows(Button("adm_send", t._("Send it anyway")),
                  Button("adm_register", t._("Only register it")),
                  Button("adm_stop", t._("Stop here"))),
        )

    def _render_field(self, turn: Turn) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        t = turn.t
        form = self._current_form(turn)
        committee = form.mailbox == "committee"
        if turn.state.endswith("_contact_value"):
            if turn.answers.get("contact", {}).get("method") == "phone":
                return t._("What is your phone number?"), ()
            return t._("What is your e-mail address?"), ()
        field_id = self._field_of(turn.state)
        if field_id == "who":
            return (
                t._(
                    "Who is the complaint for? You may also complain for someone else, for "
                    "example as a parent, guardian or authorised person."
                ),
                _rows(*(Button(f"who_{k}", t._(v)) for k, v in WHO.items())),
            )
        if field_id == "name":
            if turn.answers.get("who") == "representative":
                return t._("What is the name of the person you complain for?"), ()
            return t._("What is your name?"), ()
        if field_id == "representative_name":
            return t._("What is your own name?"), ()
        if field_id == "representative_relation":
            return t._(
                "How are you related to this person? For example: parent, guardian, or "
                "authorised person."
            ), ()
        if field_id == "staff":
            return (
                t._(
                    "Who is it about? Write the name of the volunteer or staff member. "
                    "More than one person? Write all names."
                ),
                _rows(Button("staff_unknown", t._("I do not know"))),
            )
        if field_id == "description":
            return t._(
                "What happened? Write it in your own words and in your own language. "
                "You may also send photos or documents."
            ), ()
        if field_id == "description_optional":
            return (
                t._("Do you want to tell briefly what it is about? You may also skip this."),
                _rows(Button("skip", t._("Skip"))),
            )
        if field_id == "when":
            return (
                t._("When did it happen? For example: {example}, or March 2026.").format(
                    example=t.ltr("15-03-2026")
                ),
                _rows(Button("when_unknown", t._("I do not know"))),
            )
        if field_id == "tried":
            return (
                t._("What did you already do to solve it?"),
                _rows(Button("tried_nothing", t._("Nothing yet"))),
            )
        if field_id == "name_or_anonymous":
            return (
                t._("What is your name? You may also stay anonymous."),
                _rows(Button("anonymous", t._("Stay anonymous"))),
            )
        if field_id == "contact":
            question = (
                t._("How can the committee contact you?")
                if committee
                else t._("How can the confidant contact you?")
            )
            return question, _rows(*(Button(f"contact_{k}", t._(v)) for k, v in CONTACT.items()))
        # consent: 000 "only shared with others if you give consent"
        question = (
            # 001 art. 14.4 and 14.9: the person concerned hears what the complaint says.
            t._(
                "May we send this to the complaints committee? Only the committee reads it. "
                "The person it is about will hear what it says, so that they can answer. "
                "Without your consent we send nothing."
            )
            if committee
            # 001 art. 5.2: confidants keep it secret, except a possible crime (to the board).
            else t._(
                "May we send this to the confidants? Only the confidants read it. They keep it "
                "secret, with one exception: they must report a possible crime to the board of "
                "the organisation. Without your consent we send nothing."
            )
        )
        return question, _rows(Button("consent_yes", t._("Yes, send it")),
                               Button("consent_no", t._("No")), per_row=2)

    def _answer_lines(self, turn: Turn, answers: dict[str, Any]) -> list[str]:
        t = turn.t
        lines = []
        for field_id in self._current_form(turn).fields if turn.data.get("form") else answers:
            if field_id not in answers or field_id == "consent":
                continue
            value = answers[field_id]
            if field_id == "who":
                shown = t._(WHO[value])
            elif field_id == "contact":
                shown = t._(CONTACT[str(value["method"])])
                if value.get("value"):
                    shown += ": " + t.ltr(value["value"])
            elif value is None or value == "":
                shown = "—"
            else:
                shown = t.quote(str(value))
            lines.append(f"• {t._(FIELD[field_id])}: {shown}")
        return lines

    def _document_lines(self, turn: Turn, doc: dict[str, Any]) -> list[str]:
        """A sent case as the client sees it in their file: their own words, labelled."""
        t = turn.t
        lines = []
        complainant = doc.get("complainant") or {}
        if complainant.get("name"):
            lines.append(f"• {t._(FIELD['name'])}: {t.quote(complainant['name'])}")
        rep = doc.get("representative")
        if rep:
            lines.append(f"• {t._(FIELD['representative_name'])}: {t.quote(str(rep['name']))}")
        for key, label in (("staff_involved", "staff"), ("description", "description")):
            if doc.get(key):
                lines.append(f"• {t._(FIELD[label])}: {t.quote(str(doc[key]))}")
        if doc.get("incident_dates"):
            lines.append(f"• {t._(FIELD['when'])}: {t.quote(doc['incident_dates']['text'])}")
        contact = complainant.get("contact") or {}
        if contact.get("method"):
            shown = t._(CONTACT[str(contact["method"])])
            if contact.get("value"):
                shown += ": " + t.ltr(contact["value"])
            lines.append(f"• {t._(FIELD['contact'])}: {shown}")
        # Chats with a confidant that the client chose to keep (issue 3), word for word.
        for transcript in doc.get("confidant_conversations") or []:
            if not transcript:
                continue
            started = datetime.fromisoformat(str(transcript[0]["at"]))
            lines.append(t._("Your conversation with the confidant on {date}:").format(
                date=t.date(started)))
            for line in transcript:
                who = t._("You") if line.get("from") == "client" else t._("Your confidant")
                lines.append(f"– {who}: {self._transcript_text(t, line)}")
        return lines

    @staticmethod
    def _transcript_text(t: Translator, line: dict[str, Any]) -> str:
        kind = line.get("kind")
        if kind == "text" and line.get("text"):
            return t.quote(str(line["text"]))
        if kind == "shared":
            return t._("(name shared)")
        return file_marker(t, str(kind))

    def _render_summary(self, turn: Turn) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        t = turn.t
        form = self._current_form(turn)
        lines = [t._("Please check your answers:")]
        kind = self.submission(turn, form)["kind"]
        lines.append(f"• {t._(SUMMARY['kind'])}: {t._(KIND[kind])}")
        if form.id == "confidant_request" and turn.data.get("preference"):
            lines.append(
                f"• {t._(SUMMARY['confidant'])}: {t._(PREFERENCE[turn.data['preference']])}"
            )
        lines.extend(self._answer_lines(turn, turn.answers))
        files = len(turn.data.get("attachments", []))
        if files:
            lines.append(f"• {t._(SUMMARY['files'])}: {files}")
        lines.append("")
        lines.append(t._("Is everything correct?"))
        send = t._("Register it") if kind == "report" else t._("Send")
        return "\n".join(lines), _rows(
            Button("confirm", send),
            Button("change", t._("Change something")),
            Button("cancel", t._("Cancel")),
        )

    def _receipt(self, turn: Turn, kind: str, reference: str, created: datetime,
                 pending: dict[str, Any]) -> None:
        t = turn.t
        due = rules.deadlines(created, self.procedure)
        ref = t.ltr(reference)
        if kind == "complaint":
            text = t._(
                "Thank you. We sent your complaint to the complaints committee.\n"
                "Your reference number is {reference}.\n\n"
                "What happens now:\n"
                "• The committee confirms that it got your complaint. This happens within one "
                "week, before {acknowledge}.\n"
                "• The committee listens to you and to the other side.\n"
                "• You get the decision within 4 to 6 weeks, at the latest on {decision}."
            ).format(reference=ref, acknowledge=t.date(due.get("acknowledge", created.date())),
                     decision=t.date(due.get("decision_latest", created.date())))
        elif kind == "mediation_request":
            text = t._(
                "Thank you. We sent your request for mediation to the chair of the complaints "
                "committee.\nYour reference number is {reference}.\n\n"
                "What happens now:\n"
                "• The chair contacts you and the other person.\n"
                "• Mediation ends within 6 weeks, at the latest on {report}."
            ).format(reference=ref, report=t.date(due.get("mediation_report", created.date())))
        elif kind == "confidant_request":
            preference = pending.get("preference") or "none"
            text = t._(
                "Thank you. We sent your request to the confidants. You asked for: {preference}.\n"
                "Your reference number is {reference}.\n\n"
                "What happens now:\n"
                "• A confidant contacts you in the way you chose.\n"
                "• The confidant is on your side and shares nothing without your consent."
            ).format(reference=ref, preference=t._(PREFERENCE[preference]))
        else:
            text = t._(
                "Thank you. We registered your report.\n"
                "Your reference number is {reference}.\n\n"
                "A report is not handled as a complaint. The organisation uses it to improve "
                "its work."
            ).format(reference=ref)
        text += "\n\n" + t._(
            "You can always see your file (/dossier), withdraw it (/withdraw) or erase your "
            "data (/erase)."
        )
        turn.say(text)

    # --- small lookups -------------------------------------------------------------------------

    def _step_number(self, turn: Turn, step: str) -> dict[str, int]:
        """"Step 2 of 4": the schema's steps plus the committee's investigation (000 step 4)."""
        steps = self._schema(turn).steps
        return {"step": steps.index(step) + 1 if step in steps else 1, "total": len(steps) + 1}

    def _schema(self, turn: Turn) -> Schema:
        return self.procedure.schemas[turn.data["schema"]]

    def _current_form(self, turn: Turn) -> Form:
        return self.procedure.forms[turn.data.get("form", "complaint")]

    def _form_of(self, state: str) -> Form | None:
        for form in self.procedure.forms.values():
            if state.startswith(form.id + "_"):
                return form
        return None

    def _field_of(self, state: str) -> str:
        form = self._form_of(state)
        return state[len(form.id) + 1 :] if form else ""

    def _takes_text(self, turn: Turn) -> bool:
        return turn.state.endswith("_contact_value") or (
            self._form_of(turn.state) is not None and self._field_of(turn.state) in TEXT_FIELDS
        )

    def diagram(self) -> str:
        """The procedure as a Mermaid state diagram, drawn from the same graph the bot runs."""
        lines = ["stateDiagram-v2", "    [*] --> language"]
        for source, triggers in self.edges.items():
            for trigger, dests in sorted(triggers.items()):
                if trigger == "reset":
                    continue
                for dest in sorted(dests):
                    lines.append(f"    {source} --> {dest}: {trigger}")
        return "\n".join(lines) + "\n"


def _routes_to(dest: str) -> Callable[[Any], bool]:
    """Condition of an edge: the engine decided on `dest` before firing (see `Engine.fire`)."""

    def condition(event_data: Any) -> bool:
        return bool(event_data.model.dest == dest)

    return condition

