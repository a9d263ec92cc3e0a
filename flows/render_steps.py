"""What the client sees at a step of a schema: talk, mediation, confidant, external, exclusions.

`StepRenderer.render` gives the question and buttons of a step's own state (`<schema>_<step>`);
`StepRenderer.referral` says where to go after an exclusion (002 §3.1). `flows.render` asks it
before the other states. The button rows (`Rows`, `rows`) live here and are shared with it.
Rendering reads the turn and changes nothing; no I/O. Message ids are the keys of the catalogs in
locales/: keep them byte for byte.
"""

from __future__ import annotations

from flows.dossier import confidant_exception
from flows.graph import next_kind, step_at, step_number
from flows.i18n import Translator
from flows.model import Button
from flows.procedure import Procedure, Schema, Step
from flows.texts import EXCLUSION_LABEL, EXCLUSION_REFERRAL, NEXT_TEXT, ROLE, WAY
from flows.turn import Turn

Rows = tuple[tuple[Button, ...], ...]


def rows(*buttons: Button, per_row: int = 1) -> Rows:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


class StepRenderer:
    """The texts and buttons of a procedure's steps, in every language of the catalogs."""

    def __init__(self, procedure: Procedure) -> None:
        self.procedure = procedure

    def render(self, turn: Turn) -> tuple[str, Rows] | None:
        """The question of a step's own state, or None when the current state is not one."""
        t = turn.t
        at = step_at(self.procedure, turn.state)
        if at is None:
            return None
        schema, index, step = at
        if step.kind == "talk":
            return self._render_talk(turn, step)
        if step.kind == "mediation":
            return (
                t._(
                    "Step {step} of {total}: help to find a solution.\n"
                    "The chair of the complaints committee can help you and the other person "
                    "to find a solution together. This is called mediation. It is free.\n"
                    "Do you want to ask for mediation?"
                ).format(**self._step_number(turn, "mediation")),
                rows(Button("request_yes", t._("Yes, ask for it")),
                     Button("request_no", t._("No, formal complaint"))),
            )
        if step.kind == "confidant" and step.name:
            return self._render_named_confidant(turn, step)
        if step.kind == "confidant":
            # 001 art. 5.2: what the confidant must pass on is the procedure's, said before
            # the client chooses.
            return (
                "\n".join([
                    t._(
                        "Step {step} of {total}: a confidant.\n"
                        "A confidant listens to you and helps you to find a solution. The "
                        "confidant is on your side. You do not have to give your name."
                    ).format(**self._step_number(turn, "confidant")),
                    *confidant_exception(t, self.procedure),
                    t._("Do you want a confidant? You may choose a woman or a man."),
                ]),
                rows(
                    Button("pref_female", t._("A woman")),
                    Button("pref_male", t._("A man")),
                    Button("pref_none", t._("No preference")),
                    Button("pref_no_thanks", t._("No, thank you")),
                    per_row=2,
                ),
            )
        if step.kind == "external":
            return self._render_external(turn, schema, index, step)
        if step.kind == "exclusions":
            # 002 §3.1: what this procedure does not handle; each has its own place.
            return (
                t._("Can we handle your complaint here? Some things have their own place. "
                    "Is it about one of these?"),
                rows(*(Button(f"excl_{e.id}", t._(EXCLUSION_LABEL[e.referral]))
                       for e in self.procedure.exclusions),
                     Button("excl_none", t._("No, none of these"))),
            )
        return None

    def _render_talk(self, turn: Turn, step: Step) -> tuple[str, Rows]:
        t = turn.t
        schema = self._schema(turn)
        number = self._step_number(turn, step.id)
        later = next_kind(self.procedure, schema, schema.steps.index(step.id), "complaint")
        if step.role is not None:
            # A talk with the roles the definition names (002 §2, 004 step 1 and 3).
            lines = [t._("Step {step} of {total}: talk about it.\nFirst talk with {person}.")
                     .format(person=t._(ROLE[step.role]), **number)]
            if step.then:
                lines.append(t._("Does that not help? Then talk with {person}.")
                             .format(person=t._(ROLE[step.then])))
            if step.ways:
                lines.append(t._("You can do this: {ways}.")
                             .format(ways=", ".join(t._(WAY[w]) for w in step.ways)))
            lines.append(t._("Did you try this?"))
            text = "\n".join(lines)
            not_tried = t._("No, I prefer not to")
        elif not schema.face_person:
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
        buttons = [
            Button("talk_helped", t._("Yes, it helped")),
            Button("talk_not_helped", t._("Yes, it did not help")),
            # 004: the steps are taken one by one; "not yet" keeps the client at this step.
            Button("talk_later", t._("Not yet")) if step.required
            else Button("talk_not_tried", not_tried),
        ]
        if later is not None:
            buttons.append(Button("skip_to_complaint", t._("Formal complaint now")))
        return text, rows(*buttons)

    @staticmethod
    def _contact_lines(t: Translator, step: Step) -> list[str]:
        """Where to go, as the definition gives it: names and addresses are shown as they are."""
        lines = []
        if step.name:
            lines.append(step.name)
        if step.link:
            lines.append(t.ltr(step.link))
        if step.email:
            lines.append(t._("E-mail: {address}").format(address=t.ltr(step.email)))
        if step.phone:
            lines.append(t._("Phone: {number}").format(number=t.ltr(step.phone)))
        return lines

    def _render_named_confidant(self, turn: Turn, step: Step) -> tuple[str, Rows]:
        """004 step 2: one confidant, named in the definition, who may be contacted anonymously."""
        t = turn.t
        text = "\n".join([
            t._(
                "Step {step} of {total}: the confidant.\n"
                "You can tell the confidant about your complaint, also without your name. The "
                "confidant listens and looks with you for a solution, and only acts together "
                "with you."
            ).format(**self._step_number(turn, step.id)),
            # 004 step 2: what the confidant must pass on is the procedure's.
            *confidant_exception(t, self.procedure),
            t._("The confidant:"),
            *self._contact_lines(t, step),
            t._("You can contact the confidant yourself. Or we send your request now. You do "
                "not have to give your name."),
        ])
        buttons = []
        if step.preference:
            buttons += [Button("pref_female", t._("A woman")), Button("pref_male", t._("A man"))]
        buttons += [Button("pref_none", t._("Send a request")),
                    Button("pref_no_thanks", t._("No, thank you"))]
        return text, rows(*buttons)

    def _render_external(self, turn: Turn, schema: Schema, index: int,
                         step: Step) -> tuple[str, Rows]:
        """002 §4.3, 004 step 4: where to take the complaint further, outside this chat."""
        t = turn.t
        lines = [t._("Step {step} of {total}: take your complaint further.\n"
                     "Is your complaint not solved yet? Then you can go to:")
                 .format(**step_number(self.procedure, schema, index)),
                 *self._contact_lines(t, step)]
        if step.choose:
            lines.append(t._("On the website, scroll down and click: {words}")
                         .format(words=t.quote(step.choose)))
        if step.next:
            lines.append(t._(NEXT_TEXT[step.next]))
        lines.append(t._("This chat does not send anything there. You contact them yourself."))
        buttons = [Button("external_done", t._("OK"))]
        if index + 1 < len(schema.steps):
            buttons.append(Button("external_next", t._("Next step")))
        return "\n".join(lines), rows(*buttons)

    def referral(self, turn: Turn) -> tuple[str, Rows]:
        """002 §3.1: not for this procedure; where to go instead, and a report is still possible."""
        t = turn.t
        exclusion = next(e for e in self.procedure.exclusions
                         if e.id == turn.data.get("exclusion"))
        lines = [t._(EXCLUSION_REFERRAL[exclusion.referral])]
        if exclusion.link:
            lines.append(t.ltr(exclusion.link))
        lines.append(t._("You can still register a report here. A report is not handled as a "
                         "complaint. The organisation uses it to improve its work."))
        return "\n".join(lines), rows(Button("report", t._("Register a report")),
                                      Button("finish", t._("No, that is all")))

    # --- small lookups -------------------------------------------------------------------------

    def _step_number(self, turn: Turn, step: str) -> dict[str, int]:
        return step_number(self.procedure, self._schema(turn), step)

    def _schema(self, turn: Turn) -> Schema:
        return self.procedure.schemas[turn.data["schema"]]
