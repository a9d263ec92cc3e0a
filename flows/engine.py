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

The engine runs the machine and decides where each event leads. Beside it: the model the machine
runs on (`flows.turn`), its graph (`flows.graph`), filling in a form (`flows.forms`), the steps of
a schema (`flows.steps`), the overlays (`flows.overlays`), what the client sees (`flows.render`)
and what they are told about their own data (`flows.dossier`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from transitions import Machine, MachineError, State

from flows import rules
from flows.dossier import file_text, receipt
from flows.follow_up import (
    FollowUpStep,
    follow_up_choice,
    follow_up_text,
    reply_choice,
    reply_text,
)
from flows.forms import (
    FIELD_BUTTONS,
    LONG_FIELDS,
    PARTS_DONE,
    TEXT_FIELDS,
    Forms,
    clear_draft,
    field_state,
    submission,
)
from flows.graph import (
    END_STATES,
    after_category,
    build_edges,
    diagram,
    step_diagram,
    step_state,
    triage_choices,
)
from flows.i18n import Catalogs
from flows.model import (
    Attachment,
    AttachmentRefused,
    CaseRegistered,
    Choice,
    Command,
    Conversation,
    DossierLoaded,
    Event,
    LoadDossier,
    OutMessage,
    Start,
    StepResult,
    Text,
    supported_language,
)
from flows.organisations import ORG_KEY
from flows.overlays import Overlays
from flows.procedure import Form, Procedure, Schema
from flows.render import Renderer
from flows.steps import Steps
from flows.texts import ADDED
from flows.turn import WITHDRAWABLE, Turn

# Some of these now live in the modules above; users keep importing them from `flows.engine`.
__all__ = [
    "COMMANDS",
    "END_STATES",
    "FIELD_BUTTONS",
    "LONG_FIELDS",
    "MAX_ATTACHMENTS",
    "TEXT_FIELDS",
    "WITHDRAWABLE",
    "Engine",
    "Turn",
]

MAX_ATTACHMENTS = 10
# Text questions with buttons where a typed button label (or its number) still means the button.
LABEL_FIELDS = frozenset({"who"})
COMMANDS = ("start", "help", "language", "dossier", "withdraw", "erase", "restart", "new")


class Engine:
    """The conversation for one procedure, in every language of the catalogs."""

    def __init__(self, procedure: Procedure, catalogs: Catalogs, organisation: str = "") -> None:
        self.procedure = procedure
        self.catalogs = catalogs
        self.organisation = organisation or procedure.name
        self.forms = Forms(procedure)
        self.renderer = Renderer(procedure, catalogs, self.organisation)
        self.steps = Steps(procedure, self)
        self.overlays = Overlays(catalogs, self)
        self.edges = build_edges(procedure)
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

    # --- the graph (flows/graph.py) ----------------------------------------------------------

    def step_state(self, schema: Schema, index: int) -> str:
        return step_state(self.procedure, schema, index)

    @staticmethod
    def field_state(form: Form, field_id: str) -> str:
        return field_state(form, field_id)

    def diagram(self) -> str:
        """The procedure as a Mermaid state diagram, drawn from the same graph the bot runs."""
        return diagram(self.edges)

    def step_diagram(self, fmt: str = "mermaid") -> str:
        """A readable diagram: one node per step or form, with the routing between them.

        `fmt` is "mermaid" (a flowchart) or "dot" (Graphviz). Drawn from the same graph the bot
        runs, with each form's questions (and the summary, edit and consent states) folded in.
        """
        return step_diagram(self.procedure, self.edges, fmt)

    # --- one event ----------------------------------------------------------------------------

    def step(self, conversation: Conversation, event: Event, now: datetime) -> StepResult:
        """Apply one event to a copy of the conversation; the caller's object is left untouched."""
        conv = Conversation(conversation.state, conversation.language,
                            _copied(conversation.data))
        turn = Turn(engine=self, conv=conv, t=self.catalogs.get(conv.language), now=now)
        if conv.language is None:
            # After /erase only the messenger's language hint is left (issue 14.9).
            turn.t = self.catalogs.get(turn.hint)
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
            hint = supported_language(event.language_hint)
            if hint:
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
                self.overlays.restart(turn)
            else:
                turn.data["overlay"] = {"kind": "restart"}
                self.prompt(turn)
        else:
            turn.say(t._("I do not know this command."))
            self._help(turn)
            self.prompt(turn)

    def _help(self, turn: Turn) -> None:
        turn.say(*self.renderer.help(turn.t))

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
            self.overlays.choice(turn, overlay, button)
        else:
            self._procedure_choice(turn, button)

    def _follow_up(self, turn: Turn, step: FollowUpStep | None) -> bool:
        """Follow-up answers (003 §4) work at any moment; flows/follow_up.py handles them."""
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
        labels_first = self.forms.field_of(turn.state) in LABEL_FIELDS
        if turn.data.get("overlay") or not self._takes_text(turn) or labels_first:
            # A typed button label (or its number) counts as pressing it.
            message = self.render(turn)
            labels = [b for row in message.buttons for b in row]
            typed = text.strip().casefold()
            for number, b in enumerate(labels, start=1):
                if typed in (b.label.casefold(), str(number)):
                    self._on_choice(turn, Choice(b.id))
                    return
            if labels_first and not turn.data.get("overlay"):
                self._on_field_text(turn, text)
                return
            turn.say(t._("Please choose one of the options below."))
            self.prompt(turn)
            return
        self._on_field_text(turn, text)

    def _on_field_text(self, turn: Turn, text: str) -> None:
        t = turn.t
        if rules.is_blank(text):
            turn.say(t._("I did not receive any text. Please type your answer."))
            self.prompt(turn)
            return
        field_id = self.forms.field_of(turn.state)
        limit = rules.MAX_LONG_TEXT if field_id in LONG_FIELDS else rules.MAX_SHORT_TEXT
        in_parts = turn.data.get("parts", {}).get("field") == field_id
        if field_id in LONG_FIELDS and (in_parts or len(text) > limit):
            self._keep_in_parts(turn, field_id, text, in_parts)
            return
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
            dest = self.forms.contact_value(turn, text)
            if dest is None:
                self.prompt(turn)
            else:
                self.fire(turn, "answer", dest)
            return
        self.fire(turn, "answer", self.forms.answer(turn, field_id, text))

    def _keep_in_parts(self, turn: Turn, field_id: str, text: str, in_parts: bool) -> None:
        """A long story is never thrown away (issue 14.10): keep it, and take more until "Done".

        Each message is one part; the answer holds the parts joined by an empty line. Only what
        goes beyond `rules.MAX_PARTS_TEXT` in all is not kept, and the client is told where it ends.
        """
        t = turn.t
        before = str(turn.answers.get(field_id) or "") if in_parts else ""
        joined, complete = rules.join_part(before, text)
        turn.answers[field_id] = joined
        turn.data["parts"] = {"field": field_id}
        if not complete:
            turn.say(
                t._("Your text is very long. We could not keep all of it. "
                    "The last words we kept are: {end}")
                .format(end=t.quote(rules.last_words(joined)))
            )
        elif in_parts:
            turn.say(t._("We added this to your text."))
        else:
            turn.say(t._("Your text is long. We kept all of it."))
        self.prompt(turn)

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
        if self.forms.form_of(turn.state) is None and turn.state != "summary":
            turn.say(t._("You can only add photos or documents while you write your complaint "
                         "or request."))
            self.prompt(turn)
            return
        files: list[dict[str, Any]] = turn.data.setdefault("attachments", [])
        if len(files) >= MAX_ATTACHMENTS:
            lines = [
                t.ngettext("You can add at most {count} photo or document.",
                           "You can add at most {count} photos or documents.",
                           MAX_ATTACHMENTS).format(count=MAX_ATTACHMENTS)
            ]
        else:
            files.append(
                {"ref": event.ref, "kind": event.kind, "size": event.size,
                 "content_type": event.content_type}
            )
            lines = [
                t._(ADDED.get(event.kind, ADDED["document"])),
                t.ngettext("You have added {count} photo or document now.",
                           "You have added {count} photos or documents now.",
                           len(files)).format(count=len(files)),
            ]
        # Issue 14.10: a file never answers a question. The text sent with it (its caption) counts
        # as typed, but only where the question takes text; then the bot says what comes next.
        caption = rules.clean_inbound(event.caption or "")
        takes_text = not turn.data.get("overlay") and self._takes_text(turn)
        if not rules.is_blank(caption) and takes_text:
            lines.append(t._("We read the text you sent with it as your answer."))
            turn.say("\n".join(lines))
            self._on_text(turn, caption)
            return
        if not rules.is_blank(caption):
            lines.append(t._("The text you sent with it is not saved here. Please use the "
                             "buttons of the question above."))
        elif takes_text and self.forms.field_of(turn.state) == "description":
            lines.append(t._("Please also type in words what happened."))
        elif takes_text:
            lines.append(t._("Please also type your answer to the question above."))
        else:
            lines.append(t._("Please go on with the question above."))
        turn.say("\n".join(lines))

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
        turn.say(receipt(turn.t, self.procedure, kind, event.reference, event.created_at, pending))
        form_id = pending.get("form")
        schema = self.procedure.schemas.get(turn.data.get("schema", ""))
        has_next = (
            form_id != "report"
            and kind not in ("report", "signal")
            and schema is not None
            and turn.data.get("step", 0) + 1 < len(schema.steps)
        )
        for key in ("answers", "attachments", "admissibility", "editing", "form", "parts"):
            turn.data.pop(key, None)
        if kind == "signal":
            # 002 §2.3, 003 §5: a talk that solved it is registered as a signal, not a complaint.
            self.fire(turn, "registered", "resolved")
            return
        self.fire(turn, "registered", "after_request" if has_next else "done")

    def _on_dossier(self, turn: Turn, event: DossierLoaded) -> None:
        t = turn.t
        # The register may have moved a case on since the client last wrote: take its status.
        current = {c["reference"]: c["status"] for c in event.cases}
        for summary in turn.data.get("cases", []):
            summary["status"] = current.get(summary["reference"], summary["status"])
        if event.purpose == "withdraw":
            if not turn.withdrawable():
                turn.say(t._("You have no sent complaint that you can withdraw."))
            else:
                turn.data["overlay"] = {"kind": "withdraw"}
            self.prompt(turn)
            return
        # Issue 11: with several organisations, the dossier says which one this conversation is with.
        chosen = self.organisation if turn.data.get(ORG_KEY) else None
        turn.say(file_text(turn, self.forms, event.cases, organisation=chosen))
        self.prompt(turn)

    # --- the procedure -------------------------------------------------------------------------

    def _procedure_choice(self, turn: Turn, button: str) -> None:
        p, data, state = self.procedure, turn.data, turn.state
        if state == "language":
            turn.conv.language = button.removeprefix("lang_")
            turn.t = self.catalogs.get(turn.conv.language)
            # Issue 14: the welcome and privacy notice, then the first question; no extra press.
            turn.say(self.renderer.privacy(turn.t))
            self.fire(turn, button, "triage")
        elif state == "privacy":
            self.fire(turn, "ok", "triage")
        elif state == "triage" and button == "danger_yes":
            data["emergency_shown"] = True
            turn.say(self._emergency(turn))
            self.prompt(turn)
        elif state == "triage":
            _, option, category = next(c for c in triage_choices(p) if c[0] == button)
            data.update(schema=option.schema, triage=option.id, step=0, category=category)
            self.fire(turn, button, self.step_state(p.schemas[option.schema], 0))
        elif state == "category":
            data["category"] = button
            self.fire(turn, button, after_category(self.procedure, self._schema(turn)))
        elif state == "danger":
            data["emergency_shown"] = button == "danger_yes"
            if button == "danger_yes":
                turn.say(self._emergency(turn))
            self.fire(turn, button, self.step_state(self._schema(turn), 0))
        elif state == "summary":
            self.fire(turn, button, self.forms.summary_choice(turn, button))
        elif state == "edit":
            field_id = button.removeprefix("edit_")
            data["editing"] = True
            self.fire(turn, "edit", self.field_state(self.forms.current(turn), field_id))
        elif state == "admissibility":
            self.fire(turn, button, self.forms.admissibility_choice(turn, button))
        elif state == "no_consent":
            if button == "consent_yes":
                turn.answers["consent"] = True
                self.fire(turn, button, "summary")
            else:
                clear_draft(turn.data)
                self.fire(turn, button, "stopped")
        elif state == "referral":
            # 002 §3.1: referred elsewhere, the client may still register a report here.
            if button == "report":
                self.steps.start_form(turn, self.procedure.forms["report"], button)
            else:
                self.fire(turn, button, "done")
        elif state == "after_request":
            if button == "continue":
                self.steps.go_to_step(turn, data.get("step", 0) + 1, button)
            else:
                self.fire(turn, button, "done")
        elif button == PARTS_DONE:
            # The end of a long text sent in parts (issue 14.10): go on as after any answer.
            field_id = self.forms.field_of(state)
            data.pop("parts", None)
            self.fire(turn, button, self.forms.next_field(turn, field_id))
        elif self.forms.form_of(state) is not None:
            self.fire(turn, button, self.forms.field_choice(turn, button))
        else:
            self.steps.choice(turn, button)

    def submission(self, turn: Turn, form: Form) -> dict[str, Any]:
        """The structured request, in the shape of `complaint.json` (see flows/complaint.py)."""
        return submission(turn, form, self.procedure.admissibility_rules)

    @staticmethod
    def _emergency(turn: Turn) -> str:
        return turn.t._(
            "Call {phone} now. This is the emergency number for police, ambulance "
            "and fire brigade. The call is free.\n"
            "When you are safe, you can continue here."
        ).format(phone=turn.t.ltr("112"))

    # --- what the client sees (flows/render.py) ----------------------------------------------

    def prompt(self, turn: Turn) -> None:
        turn.out.append(self.render(turn))

    def current_buttons(self, turn: Turn) -> list[str]:
        return self.render(turn).button_ids()

    def render(self, turn: Turn) -> OutMessage:
        """The question of the current state (or open overlay), with its buttons."""
        return self.renderer.render(turn)

    def _takes_text(self, turn: Turn) -> bool:
        return self.forms.takes_text(turn)

    def _schema(self, turn: Turn) -> Schema:
        return self.procedure.schemas[turn.data["schema"]]


def _routes_to(dest: str) -> Callable[[Any], bool]:
    """Condition of an edge: the engine decided on `dest` before firing (see `Engine.fire`)."""

    def condition(event_data: Any) -> bool:
        return bool(event_data.model.dest == dest)

    return condition


def _copied(value: Any) -> Any:
    """A deep copy of the conversation's JSON data: dicts and lists copied, strings, numbers,
    booleans and None shared (immutable), anything else through `copy.deepcopy`. The same result
    as deepcopy for the data a conversation holds, at a fraction of its cost (it ran for every
    event on the whole draft)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return copy.deepcopy(value)

