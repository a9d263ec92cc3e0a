"""What the client sees: the question of each state (or open overlay), with its buttons.

`Renderer.render` turns the current state of a conversation into one `OutMessage`; the engine sends
it whenever a state is entered and whenever a question is asked again. The help text is here too;
the receipt and the client's file are in `flows.dossier`; the steps of a schema (talk, mediation,
confidant, external, exclusions) in `flows.render_steps`. Rendering reads the turn and changes
nothing; no I/O. Message ids are the keys of the catalogs in locales/: keep them byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flows.dossier import answer_lines, confidant_exception
from flows.forms import PARTS_DONE, Forms, applies, submission
from flows.graph import END_STATES, asks_danger, triage_choices
from flows.i18n import Catalogs, Translator
from flows.model import LANGUAGES, Button, OutMessage
from flows.procedure import DEFAULT_WHO, Form, Procedure, Schema
from flows.render_steps import Rows, StepRenderer, rows
from flows.texts import (
    CATEGORY,
    CONTACT,
    FIELD,
    GLOBAL_ACTIONS,
    KIND,
    KIND_TITLE,
    LANGUAGE_NAMES,
    NOTE,
    PREFERENCE,
    READER,
    READER_LIST,
    SUMMARY,
    TRIAGE,
    TRIAGE_CATEGORY,
    TRIAGE_HINT,
    WHO,
)
from flows.turn import Turn


class Renderer:
    """The texts and buttons of one procedure, in every language of the catalogs."""

    def __init__(self, procedure: Procedure, catalogs: Catalogs, organisation: str) -> None:
        self.procedure = procedure
        self.catalogs = catalogs
        self.organisation = organisation
        self.forms = Forms(procedure)
        self.steps = StepRenderer(procedure)

    def _kind(self, turn: Turn, form: Form) -> str:
        """What the submission will be registered as (a complaint, or a report only)."""
        return str(submission(turn, form, self.procedure.admissibility_rules)["kind"])

    def render(self, turn: Turn) -> OutMessage:
        """The question of the current state (or open overlay), with its buttons."""
        overlay = turn.data.get("overlay")
        text, buttons = self._render_overlay(turn, overlay) if overlay else self._render(turn)
        return OutMessage(text=text, buttons=buttons, rtl=turn.t.rtl)

    def _language_buttons(self, turn: Turn) -> Rows:
        # Before a choice, the messenger's language is preselected (also after /erase, 14.9).
        current = turn.conv.language or turn.hint
        return rows(
            *(
                Button(f"lang_{lang}", ("✓ " if lang == current else "") + LANGUAGE_NAMES[lang])
                for lang in LANGUAGES
            ),
            per_row=2,
        )

    def _render_overlay(self, turn: Turn, overlay: dict[str, Any]) -> tuple[str, Rows]:
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
            cases = turn.withdrawable()
            return (
                t._("Which one do you want to withdraw?"),
                # "Complaint of 3 November 2026": a bare reference means nothing to a client.
                rows(*(Button(f"wd_{c['reference']}", self._case_label(t, c)) for c in cases),
                     Button("no", t._("Cancel"))),
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
        return text, rows(Button("yes", yes), Button("no", no), per_row=2)

    def privacy(self, t: Translator) -> str:
        """The welcome and privacy notice, shown with the first question (000 "Belangrijke regels").

        Who reads the answers and the rules they keep are the procedure's `[handling]`: each line
        is said only where it is true (001 art. 5.2, 14.4, 14.9; 002 §4.1, §4.2; 004 step 2).
        """
        handling = self.procedure.handling
        lines = [
            t._("Welcome. This is the complaints chat of {organisation}.\n"
                "Here you can tell us if you are not happy with the help you get, or if "
                "someone treated you badly.").format(organisation=self.organisation),
            "",
            t._("Your privacy:"),
            "• " + t._("We keep your answers in your own file. Only the people who handle "
                       "complaints can read them: {readers}.").format(readers=self.readers(t)),
        ]
        if handling.heard_by_person:
            # 001 art. 14.4 and 14.9, 002 §4.1 and §4.2: the person concerned hears it.
            lines.append("• " + t._("A formal complaint is also shown to the person it is "
                                    "about, so that they can answer."))
        if handling.records_consulted:
            # 002 §4.1: the employee or manager may look up information in their systems.
            lines.append("• " + t._("To talk about your complaint, the employee or the manager "
                                    "may look up your information in the systems of the "
                                    "organisation."))
        if handling.confidant_exception:
            # 001 art. 5.2 (a possible crime, to the board); 004 step 2 (danger, together).
            lines += ["• " + line for line in self.confidant_exception(t)]
        lines += [
            "• " + t._("We share nothing else without your consent."),
            # "What you sent": a complaint, a request or a report, whatever the procedure sends.
            "• " + t._("You can always see your file, withdraw what you sent, or erase your "
                       "data."),
            "",
            t._("Type /help at any moment for help."),
        ]
        return "\n".join(lines)

    def readers(self, t: Translator) -> str:
        """Who may read the client's answers, as a list: "the complaints committee, a confidant
        or a coordinator" (the procedure's `[handling] readers`)."""
        names = [t._(READER[r]) for r in self.procedure.handling.readers]
        if len(names) == 1:
            return names[0]
        keys = ("first", "second", "third")
        return t._(READER_LIST[len(names)]).format(**dict(zip(keys, names, strict=False)))

    @staticmethod
    def _case_label(t: Translator, case: dict[str, Any]) -> str:
        """A sent case as a button: its kind and the day it was sent."""
        return t._("{kind} of {date}").format(
            kind=t._(KIND_TITLE[case["kind"]]) if case["kind"] in KIND_TITLE else case["kind"],
            date=t.date(datetime.fromisoformat(case["created_at"])),
        )

    def _language_prompt(self, turn: Turn) -> str:
        if turn.conv.language or turn.hint in LANGUAGES:
            return turn.t._("Choose your language.")
        return "\n".join(self.catalogs.get(lang)._("Choose your language.") for lang in LANGUAGES)

    def _render(self, turn: Turn) -> tuple[str, Rows]:
        t, state = turn.t, turn.state
        if state == "language":
            return self._language_prompt(turn), self._language_buttons(turn)
        if state == "privacy":
            return self.privacy(t), rows(Button("ok", t._("Continue")))
        if state == "triage":
            lines = [t._("What is it about? Choose what fits best.")]
            if len(self.procedure.triage) > 1:
                # Several routes: say what each is for. One route shows its categories only.
                lines += ["• " + t._(TRIAGE_HINT[option.id]) for option in self.procedure.triage]
            text = "\n".join(lines)
            buttons = [
                Button(button, t._(TRIAGE[option.id]) if category in (None, option.category)
                       else t._(TRIAGE_CATEGORY.get(str(category), CATEGORY[str(category)])))
                for button, option, category in triage_choices(self.procedure)
            ]
            if asks_danger(self.procedure):
                buttons.append(Button("danger_yes", t._("I am in danger now")))
            return text, rows(*buttons, per_row=2)
        if state == "category":
            schema = self._schema(turn)
            return (
                t._("What fits best?"),
                rows(*(Button(c, t._(CATEGORY[c])) for c in schema.categories), per_row=2),
            )
        if state == "danger":
            return (
                t._("First: are you in danger right now?"),
                rows(Button("danger_yes", t._("Yes, I am in danger")), Button("danger_no",
                     t._("No")), per_row=2),
            )
        step = self.steps.render(turn)
        if step is not None:
            return step
        if state == "referral":
            return self.steps.referral(turn)
        if state == "admissibility":
            return self._render_admissibility(turn)
        if state == "summary":
            return self._render_summary(turn)
        if state == "edit":
            form = self.forms.current(turn)
            fields = [f for f in form.fields if applies(turn, f)]
            return (
                t._("What do you want to change?"),
                rows(*(Button(f"edit_{f}", t._(FIELD[f])) for f in fields), per_row=2),
            )
        if state == "no_consent":
            return (
                t._(
                    "We send nothing without your consent. Your answers stay in your file until "
                    "you erase them. You can still give consent later."
                ),
                rows(Button("consent_yes", t._("Send it after all")),
                     Button("discard", t._("Delete my answers"))),
            )
        if state == "submitting":
            return t._("One moment, please. We are sending it."), ()
        if state == "after_request":
            schema = self._schema(turn)
            index = turn.data.get("step", 0) + 1
            if index < len(schema.steps) and self.procedure.step(schema.steps[index]).kind \
                    != "complaint":
                return (
                    t._("When you are ready for the next step, press “Next step”. This question "
                        "waits here for you, also later."),
                    rows(Button("continue", t._("Next step")),
                         Button("finish", t._("No, that is all"))),
                )
            return (
                t._("Do you also want to make a formal complaint now? You can also do it later."),
                rows(Button("continue", t._("Yes, make complaint")),
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
            return text, rows(self._global(t, "new"), self._global(t, "dossier"),
                              self._global(t, "help"), per_row=2)
        return self._render_field(turn)

    def _render_admissibility(self, turn: Turn) -> tuple[str, Rows]:
        """Anonymous or possibly out of time: who decides (001 art. 13: the committee; 002 §3.1:
        the organisation) and the limits of the procedure (002 §3.1: 12, 36 or none)."""
        t = turn.t
        by_committee = self.procedure.handling.decides == "committee"
        if turn.data.get("admissibility", {}).get("status") == "anonymous":
            return (
                t._(
                    "You want to stay anonymous. The committee cannot handle a complaint "
                    "without a name. We can register it as a report. The organisation uses "
                    "reports to improve its work."
                ) if by_committee else t._(
                    # 002 §3.1: passed on, but not handled.
                    "You want to stay anonymous. The organisation does not handle a complaint "
                    "without a name. You can still pass it on: we register it as a report. Then "
                    "the organisation knows about it."
                ),
                rows(Button("adm_register", t._("Yes, register it")),
                     Button("adm_give_name", t._("I will give my name"))),
            )
        category = turn.data.get("category")
        months = self.procedure.limit_for(category) or 0
        text = t.ngettext(
            "This happened more than {count} month ago. The committee may not handle "
            "complaints that old. You can still send it, and the committee decides. "
            "Or we only register it as a report.",
            "This happened more than {count} months ago. The committee may not handle "
            "complaints that old. You can still send it, and the committee decides. "
            "Or we only register it as a report.",
            months,
        ) if by_committee else t.ngettext(
            "This happened more than {count} month ago. The organisation may not handle "
            "complaints that old. You can still send it, and the organisation decides. "
            "Or we only register it as a report.",
            "This happened more than {count} months ago. The organisation may not handle "
            "complaints that old. You can still send it, and the organisation decides. "
            "Or we only register it as a report.",
            months,
        )
        lines = [text.format(count=months), *self._other_limits(turn, category, months)]
        return (
            "\n".join(lines),
            rows(Button("adm_send", t._("Send it anyway")),
                 Button("adm_register", t._("Only register it")),
                 Button("adm_stop", t._("Stop here"))),
        )

    def _other_limits(self, turn: Turn, category: str | None, months: int) -> list[str]:
        """Longer limits of the schema's other categories (002 §3.1: 36 months for youth care,
        none for sexual harassment), so a client who chose the wrong one knows."""
        t = turn.t
        lines = []
        for other in self._schema(turn).categories:
            limit = self.procedure.limit_for(other)
            if other == category or (limit is not None and limit <= months):
                continue
            label = t.quote(t._(CATEGORY[other]))
            lines.append(t._("Is it about “{category}”? Then there is no time limit.")
                         .format(category=label) if limit is None else
                         t.ngettext("Is it about “{category}”? Then the limit is {count} month.",
                                    "Is it about “{category}”? Then the limit is {count} months.",
                                    limit).format(category=label, count=limit))
        return lines

    def _render_field(self, turn: Turn) -> tuple[str, Rows]:
        t = turn.t
        form = self.forms.current(turn)
        committee = form.receiver in ("committee", "chair")
        if turn.state.endswith("_contact_value"):
            if turn.answers.get("contact", {}).get("method") == "phone":
                return t._("What is your phone number?"), ()
            return t._("What is your e-mail address?"), ()
        field_id = self.forms.field_of(turn.state)
        if turn.data.get("parts", {}).get("field") == field_id:
            # Issue 14.10: a long text is taken in parts until the client presses "Done".
            return (
                t._("You can send more in a next message. When you have sent everything, "
                    "press “Done”."),
                rows(Button(PARTS_DONE, t._("Done"))),
            )
        if field_id == "who" and form.who != DEFAULT_WHO:
            # 002 §3.2: who may complain, as the definition lists it.
            return (
                t._("Who is the complaint for?\n"
                    "• For yourself? Then type your name.\n"
                    "• Otherwise, press a button."),
                rows(*(Button(f"who_{k}", t._(WHO[k])) for k in form.who)),
            )
        if field_id == "who":
            return (
                t._(
                    "Who is the complaint for?\n"
                    "• For yourself? Then type your name.\n"
                    "• For someone else, for example as a parent, guardian or authorised person? "
                    "Or do you want to stay anonymous? Then press a button."
                ),
                rows(*(Button(f"who_{k}", t._(WHO[k])) for k in form.who)),
            )
        if field_id == "name":
            if turn.answers.get("who") == "representative":
                return t._("What is the name of the person you complain for?"), ()
            if turn.answers.get("who") == "group":
                return t._("What is the name of the group?"), ()
            return t._("What is your name?"), ()
        if field_id == "representative_name" and turn.answers.get("who") == "group":
            # 002 §3.2: the organisation talks with the representative the group named.
            return t._("Who represents the group? Write their name. We talk with this "
                       "person."), ()
        if field_id == "representative_name":
            return t._("What is your own name?"), ()
        if field_id == "representative_relation":
            question = t._(
                "How are you related to this person? For example: parent, guardian, or "
                "authorised person."
            )
            if field_id in form.notes:
                question += "\n" + t._(NOTE[form.notes[field_id]])
            return question, ()
        if field_id == "staff":
            return (
                t._(
                    "Who is it about? Write the name of the volunteer or staff member. "
                    "More than one person? Write all names."
                ),
                rows(Button("staff_unknown", t._("I do not know"))),
            )
        if field_id == "description":
            return t._(
                "What happened? Write it in your own words and in your own language. "
                "You may also send photos or documents."
            ), ()
        if field_id == "description_optional":
            return (
                t._("Do you want to tell briefly what it is about? You may also skip this."),
                rows(Button("skip", t._("Skip"))),
            )
        if field_id == "when":
            return (
                t._("When did it happen? For example: {example}, or March 2026.").format(
                    example=t.ltr("15-03-2026")
                ),
                rows(Button("when_unknown", t._("I do not know"))),
            )
        if field_id == "tried":
            return (
                t._("What did you already do to solve it?"),
                rows(Button("tried_nothing", t._("Nothing yet"))),
            )
        if field_id == "name_or_anonymous":
            return (
                t._("What is your name? You may also stay anonymous."),
                rows(Button("anonymous", t._("Stay anonymous"))),
            )
        if field_id == "contact":
            question = (
                t._("How can the manager contact you?") if form.receiver == "manager"
                else t._("How can the committee contact you?") if committee
                else t._("How can the confidant contact you?")
            )
            return question, rows(*(Button(f"contact_{k}", t._(v)) for k, v in CONTACT.items()))
        # consent: 000 "only shared with others if you give consent". Who receives it and the
        # rules they keep, as on the summary (001 art. 5.2, 14.4, 14.9; 002 §4.2; 004 step 2).
        question = "\n".join([
            self._receivers(t, form.receiver, self._kind(turn, form)),
            t._("Do you give your consent? Without your consent we send nothing."),
        ])
        return question, rows(Button("consent_yes", t._("Yes, send it")),
                              Button("consent_no", t._("No")), per_row=2)

    def _render_summary(self, turn: Turn) -> tuple[str, Rows]:
        t = turn.t
        form = self.forms.current(turn)
        lines = [t._("Please check your answers:")]
        kind = self._kind(turn, form)
        lines.append(f"• {t._(SUMMARY['kind'])}: {t._(KIND[kind])}")
        if form.receiver == "confidants" and turn.data.get("preference"):
            lines.append(
                f"• {t._(SUMMARY['confidant'])}: {t._(PREFERENCE[turn.data['preference']])}"
            )
        lines.extend(answer_lines(turn, self.forms, turn.answers))
        files = len(turn.data.get("attachments", []))
        if files:
            lines.append(f"• {t._(SUMMARY['files'])}: {files}")
        send = t._("Register it") if kind == "report" else t._("Send")
        lines.append("")
        lines.append(t._("Is everything correct?"))
        # 000 "alleen gedeeld met toestemming": say who receives it; pressing Send is the consent.
        lines.append(self._receivers(t, form.receiver, kind))
        lines.append(
            t._("If you press “{button}”, you give your consent for this. Without your consent "
                "we send nothing.").format(button=send)
        )
        return "\n".join(lines), rows(
            Button("confirm", send),
            Button("change", t._("Change something")),
            Button("cancel", t._("Cancel")),
        )

    def _receivers(self, t: Translator, receiver: str, kind: str) -> str:
        """Who receives what the client sends, and the rule they keep, said before Send."""
        if kind == "report" and receiver == "committee":
            # 001 art. 13.3 and 17.5: registered only, not handled.
            return t._("We only register this as a report. Only the complaints committee "
                       "reads it.")
        if kind == "report":
            return t._("We only register this as a report. Only the people who handle "
                       "complaints read it.")
        if receiver in ("confidants", "confidant"):
            # What a confidant must pass on is the procedure's (001 art. 5.2; 004 step 2).
            who = (t._("We send this to the confidants. Only the confidants read it.")
                   if receiver == "confidants"
                   else t._("We send this to the confidant. Only the confidant reads it."))
            return " ".join([who, *self.confidant_exception(t)])
        if receiver == "chair":
            # 000 Schema A step 2: the chair of the committee helps to find a solution.
            return t._("We send this to the chair of the complaints committee. The chair "
                       "contacts you and the other person.")
        if receiver == "manager":
            # 002 §4.2: the manager talks with the client, preferably with the employee there.
            return t._("We send this to the organisation. The manager of the employee reads it. "
                       "The employee will hear what it says, so that they can answer.")
        # 001 art. 14.4 and 14.9: the person concerned hears what the complaint says.
        return t._("We send this to the complaints committee. Only the committee reads it. The "
                   "person it is about will hear what it says, so that they can answer.")

    def confidant_exception(self, t: Translator) -> list[str]:
        """What a confidant must pass on (the procedure's `[handling] confidant_exception`)."""
        return confidant_exception(t, self.procedure)

    def help(self, t: Translator) -> tuple[str, Rows]:
        """The help text (/help), with buttons for the commands."""
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
        return text, rows(*(self._global(t, a) for a in actions), per_row=2)

    @staticmethod
    def _global(t: Translator, action: str) -> Button:
        return Button(f"cmd:{action}", t._(GLOBAL_ACTIONS[action]))

    # --- small lookups -------------------------------------------------------------------------

    def _schema(self, turn: Turn) -> Schema:
        return self.procedure.schemas[turn.data["schema"]]
