"""The register's rules, pure: the life of a case, its deadlines, what the client is told, follow-up.

* The status lifecycle (`001` art. 14-17, `002` §4.1) and which changes are allowed, per kind.
* Due dates per case, from the procedure's deadlines (`Procedure.deadlines`, in days) and the
  case's history: acknowledgement (art. 14.1), missing information (14.3), staff informed (14.4),
  mediation report (4.4), decision (15.1), board response (16.1).
* The plain-language message the client gets on a status change, in their language.
* The follow-up question (`003` §4): yes / partly / no, then an optional comment. Its buttons carry
  the case reference (`fu_yes:KW-2026-000001`), so they work whenever the client presses them;
  `Engine._on_choice` and `Engine._on_text` hand them to `follow_up_choice` / `follow_up_text`.
* Small-number suppression for everything published (`suppress`, `suppress_breakdown`).

Nothing here does I/O; `bot/register.py` stores and sends.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from flows import rules
from flows.i18n import Translator
from flows.model import Button, Effect, OutMessage, RecordFollowUp, ReplyToCase
from flows.texts import GLOBAL_ACTIONS

# --- the status lifecycle ------------------------------------------------------------------------

STATUSES: tuple[str, ...] = (
    "received",
    "acknowledged",
    "in_mediation",
    "with_committee",
    "decided",
    "board_responded",
    "closed",
    "withdrawn",
    "lapsed",
)
TERMINAL: frozenset[str] = frozenset({"closed", "withdrawn", "lapsed"})
OUTCOMES: tuple[str, ...] = ("founded", "partly_founded", "unfounded")
# Statuses in which the case is still being handled (deadlines run, lapse may apply).
OPEN: frozenset[str] = frozenset(STATUSES) - TERMINAL

# Which status may follow which. Withdrawing (002 §4.1, 001 art. 17.5) and lapsing (002 §4.1) are
# possible from every open status; closed, withdrawn and lapsed are final.
_NEXT: dict[str, frozenset[str]] = {
    "received": frozenset({"acknowledged", "in_mediation", "with_committee", "closed"}),
    "acknowledged": frozenset({"in_mediation", "with_committee", "closed"}),
    # 001 art. 4: mediation ends in agreement (closed) or the complaint goes to the committee.
    "in_mediation": frozenset({"with_committee", "closed"}),
    # 001 art. 14.2: the committee may still propose mediation, which suspends its handling.
    "with_committee": frozenset({"in_mediation", "decided", "closed"}),
    "decided": frozenset({"board_responded", "closed"}),
    "board_responded": frozenset({"closed"}),
}
# Kinds without a committee procedure: reports (001 art. 17.5, registration only) and signals.
_REGISTRATION_ONLY = frozenset({"report", "signal"})
_COMMITTEE_STATUSES = frozenset({"with_committee", "decided", "board_responded"})

# Dutch words for staff (CLI, digest, report). Client-facing words are in the catalogs below.
STATUS_NL: dict[str, str] = {
    "received": "ontvangen",
    "acknowledged": "ontvangst bevestigd",
    "in_mediation": "in bemiddeling",
    "with_committee": "bij de klachtencommissie",
    "decided": "uitspraak gedaan",
    "board_responded": "bestuur heeft gereageerd",
    "closed": "afgesloten",
    "withdrawn": "ingetrokken",
    "lapsed": "vervallen (onbereikbaar)",
}
OUTCOME_NL: dict[str, str] = {
    "founded": "gegrond",
    "partly_founded": "gedeeltelijk gegrond",
    "unfounded": "ongegrond",
}
DEADLINE_NL: dict[str, str] = {
    "acknowledge": "ontvangstbevestiging (001 art. 14.1)",
    "missing_information": "aanvullende informatie van klager (001 art. 14.3)",
    "inform_staff": "betrokken medewerker geïnformeerd (001 art. 14.4)",
    "mediation_report": "verslag bemiddeling (001 art. 4.4)",
    "decision_preferred": "uitspraak, bij voorkeur (001 art. 15.1)",
    "decision_latest": "uitspraak, uiterlijk (001 art. 15.1)",
    "board_response": "reactie bestuur (001 art. 16.1)",
}


class StatusChangeError(ValueError):
    """A status change the lifecycle does not allow; the message says why (in Dutch, for staff)."""


def allowed_next(kind: str, status: str) -> tuple[str, ...]:
    """The statuses a case of `kind` may move to from `status`, in lifecycle order."""
    if status in TERMINAL:
        return ()
    nxt = set(_NEXT.get(status, ())) | {"withdrawn", "lapsed"}
    if kind in _REGISTRATION_ONLY:
        nxt &= {"acknowledged", "closed", "withdrawn"}
    elif kind in ("confidant_request",):
        nxt &= {"acknowledged", "closed", "withdrawn", "lapsed"}
    return tuple(s for s in STATUSES if s in nxt)


def check_change(kind: str, current: str, new: str, outcome: str | None = None) -> None:
    """Raise `StatusChangeError` unless `current` -> `new` is allowed; 'decided' needs an outcome."""
    if new not in STATUSES:
        raise StatusChangeError(
            f"onbekende status '{new}'; kies uit: {', '.join(STATUSES)}"
        )
    if new == current:
        raise StatusChangeError(f"de zaak heeft al status '{new}'")
    allowed = allowed_next(kind, current)
    if new not in allowed:
        hint = f"toegestaan: {', '.join(allowed)}" if allowed else "dit is een eindstatus"
        raise StatusChangeError(f"van '{current}' naar '{new}' kan niet ({hint})")
    if new == "decided" and outcome not in OUTCOMES:
        raise StatusChangeError(f"bij 'decided' hoort een uitkomst: {', '.join(OUTCOMES)}")
    if new != "decided" and outcome is not None:
        raise StatusChangeError("een uitkomst hoort alleen bij status 'decided'")


# --- deadlines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseEvent:
    """One line of a case's history as the rules need it: what happened, to what, when."""

    action: str  # status, deadline_met, info_requested, ... (storage.schema.CASE_EVENT_ACTIONS)
    value: str | None
    at: datetime


DeadlineState = Literal["open", "overdue", "met", "late", "cancelled"]


@dataclass(frozen=True)
class Deadline:
    name: str
    due: date
    met_at: datetime | None = None
    cancelled: bool = False

    def state(self, today: date) -> DeadlineState:
        if self.cancelled:
            return "cancelled"
        if self.met_at is not None:
            return "met" if self.met_at.date() <= self.due else "late"
        return "overdue" if today > self.due else "open"

    @property
    def label_nl(self) -> str:
        return DEADLINE_NL.get(self.name, self.name)


_INITIAL: dict[str, tuple[str, ...]] = {
    "complaint": ("acknowledge", "inform_staff", "decision_preferred", "decision_latest"),
    "mediation_request": ("acknowledge", "mediation_report"),
    "confidant_request": ("acknowledge",),
}
_DECISION = ("decision_preferred", "decision_latest")


def due_dates(
    kind: str,
    created_at: datetime,
    events: Iterable[CaseEvent],
    days: Mapping[str, int],
) -> list[Deadline]:
    """Every deadline of the case, met, open or cancelled, from its history (oldest event first).

    A deadline the procedure does not define (no entry in `days`) is not tracked.
    """
    found: list[Deadline] = []
    open_: dict[str, int] = {}  # name -> index in found of the open one

    def cancel(name: str) -> None:
        index = open_.pop(name, None)
        if index is not None:
            found[index] = replace(found[index], cancelled=True)

    def start(name: str, at: datetime) -> None:
        if name not in days:
            return
        cancel(name)  # a restarted deadline replaces the open one
        found.append(Deadline(name, (at + timedelta(days=days[name])).date()))
        open_[name] = len(found) - 1

    def finish(name: str, at: datetime) -> None:
        index = open_.pop(name, None)
        if index is not None:
            found[index] = replace(found[index], met_at=at)

    for name in _INITIAL.get(kind, ()):
        start(name, created_at)
    status = "received"
    for event in sorted(events, key=lambda e: e.at):
        if event.action == "info_requested":
            start("missing_information", event.at)
        elif event.action == "deadline_met" and event.value:
            finish(event.value, event.at)
            if event.value == "missing_information" and kind == "complaint":
                # 001 art. 15.1: the decision is due counted from the supplemented complaint.
                for name in _DECISION:
                    if name in open_:
                        start(name, event.at)
        elif event.action == "status" and event.value:
            new = event.value
            if status == "received" and new not in ("withdrawn", "lapsed"):
                finish("acknowledge", event.at)
            if status == "in_mediation" or (kind == "mediation_request" and new in TERMINAL):
                finish("mediation_report", event.at)
            if new == "in_mediation":
                start("mediation_report", event.at)
                for name in _DECISION:  # 001 art. 14.2: the committee's handling is suspended
                    cancel(name)
            elif new == "with_committee" and status == "in_mediation":
                for name in _DECISION:
                    start(name, event.at)
            elif new == "decided":
                for name in _DECISION:
                    finish(name, event.at)
                start("board_response", event.at)
            elif new == "board_responded":
                finish("board_response", event.at)
            if new in TERMINAL:
                for name in list(open_):
                    cancel(name)
            status = new
    return found


def current_status(events: Iterable[CaseEvent], initial: str = "received") -> str:
    status = initial
    for event in sorted(events, key=lambda e: e.at):
        if event.action == "status" and event.value:
            status = event.value
    return status


def due_soon(deadlines: Iterable[Deadline], today: date, within_days: int = 3) -> list[Deadline]:
    """Open deadlines due within `within_days` days or overdue, earliest first (the digest's list)."""
    limit = today + timedelta(days=within_days)
    return sorted(
        (d for d in deadlines if d.state(today) in ("open", "overdue") and d.due <= limit),
        key=lambda d: (d.due, d.name),
    )


# --- what the client is told -----------------------------------------------------------------------


def _dossier_button(t: Translator) -> tuple[tuple[Button, ...], ...]:
    label = GLOBAL_ACTIONS["dossier"]
    return ((Button("cmd:dossier", t._(label)),),)


def status_text(
    t: Translator,
    *,
    kind: str,
    status: str,
    reference: str,
    outcome: str | None = None,
    due: Mapping[str, date] | None = None,
    follow_up_days: int = 0,
) -> str:
    """What happened and what comes next, in plain words (B1), for one status change."""
    due = due or {}
    ref = t.ltr(reference)
    head = t._("News about {reference}:").format(reference=ref)
    if status == "acknowledged":
        if kind == "complaint":
            body = t._(
                "The complaints committee confirms that it got your complaint. The committee "
                "will now look into it. You get the decision at the latest on {date}."
            ).format(date=t.date(due["decision_latest"])) if "decision_latest" in due else t._(
                "The complaints committee confirms that it got your complaint. The committee "
                "will now look into it."
            )
        elif kind == "mediation_request":
            body = t._(
                "The chair of the complaints committee got your request for mediation. "
                "The chair will contact you soon."
            )
        elif kind == "confidant_request":
            body = t._(
                "The confidants got your request. A confidant will contact you soon, in the way "
                "you chose."
            )
        else:
            body = t._(
                "Your report is registered. Thank you. The organisation uses it to improve its work."
            )
    elif status == "in_mediation":
        # 000 Schema A step 2: the chair of the committee is the mediator (issue 14.8: one name).
        body = t._(
            "Mediation has started. The chair of the complaints committee helps you and the "
            "other person to find a solution together. The chair will contact you."
        )
        if "mediation_report" in due:
            body += " " + t._("Mediation ends at the latest on {date}.").format(
                date=t.date(due["mediation_report"])
            )
    elif status == "with_committee":
        body = t._(
            "The complaints committee now handles your complaint. The committee listens to you "
            "and to the other side."
        )
        if "decision_latest" in due:
            body += " " + t._("You get the decision at the latest on {date}.").format(
                date=t.date(due["decision_latest"])
            )
    elif status == "decided":
        body = {
            "founded": t._(
                "The complaints committee has decided: your complaint is founded. This means "
                "that the committee agrees with you."
            ),
            "partly_founded": t._(
                "The complaints committee has decided: your complaint is partly founded. This "
                "means that the committee agrees with you on some points."
            ),
            "unfounded": t._(
                "The complaints committee has decided: your complaint is unfounded. This means "
                "that the committee does not agree with you."
            ),
        }.get(outcome or "", t._("The complaints committee has decided on your complaint."))
        body += " " + t._("You also get the decision in writing.")
        if "board_response" in due:
            body += " " + t._(
                "The board tells you what it will do about it, at the latest on {date}."
            ).format(date=t.date(due["board_response"]))
    elif status == "board_responded":
        body = t._(
            "The board has answered the decision of the committee. You get the answer in writing."
        )
    elif status == "closed":
        body = t._("Your case is now closed. Thank you for telling us.")
        if follow_up_days > 0 and kind not in _REGISTRATION_ONLY:
            body += " " + t.ngettext(
                "In {count} day we will ask you if the problem is really solved.",
                "In {count} days we will ask you if the problem is really solved.",
                follow_up_days,
            ).format(count=follow_up_days)
    elif status == "withdrawn":
        body = t._(
            "Your case is withdrawn, as you asked. Nobody works on it any more. It stays "
            "registered."
        )
    elif status == "lapsed":
        body = t._(
            "We could not reach you for two months. So we stopped working on your case. You can "
            "always start again here with /start."
        )
    else:
        body = t._("Your case was received.")
    return f"{head}\n{body}"


def status_message(t: Translator, **kwargs: Any) -> OutMessage:
    """`status_text` as a message, with a button to see the file."""
    return OutMessage(text=status_text(t, **kwargs), buttons=_dossier_button(t), rtl=t.rtl)


# --- follow-up (003 §4) ---------------------------------------------------------------------------

FOLLOW_UP_PREFIX = "fu_"
FOLLOW_UP_ANSWERS: tuple[str, ...] = ("yes", "partly", "no")
FOLLOW_UP_KEY = "follow_up"  # in the conversation data while we wait for the optional comment
MAX_COMMENT = 2000


def follow_up_button(action: str, reference: str) -> str:
    return f"{FOLLOW_UP_PREFIX}{action}:{reference}"


def parse_follow_up_button(button_id: str) -> tuple[str, str] | None:
    """`fu_no:KW-2026-000001` -> ("no", "KW-2026-000001"); None for any other button."""
    if not button_id.startswith(FOLLOW_UP_PREFIX) or ":" not in button_id:
        return None
    action, reference = button_id[len(FOLLOW_UP_PREFIX) :].split(":", 1)
    if action not in (*FOLLOW_UP_ANSWERS, "skip") or not reference or len(reference) > 32:
        return None
    return action, reference


def follow_up_message(t: Translator, reference: str) -> OutMessage:
    """The question, sent `follow_up_days` after the case was closed."""
    text = t._(
        "Some time ago we closed your case {reference}. We want to know: is your problem "
        "really solved now?"
    ).format(reference=t.ltr(reference))
    buttons = (
        (
            Button(follow_up_button("yes", reference), t._("Yes")),
            Button(follow_up_button("partly", reference), t._("Partly")),
            Button(follow_up_button("no", reference), t._("No")),
        ),
    )
    return OutMessage(text=text, buttons=buttons, rtl=t.rtl)


def _comment_prompt(t: Translator, reference: str) -> OutMessage:
    return OutMessage(
        text=t._("Do you want to tell us more? Type it here. Or press the button."),
        buttons=((Button(follow_up_button("skip", reference), t._("No, that is all")),),),
        rtl=t.rtl,
    )


@dataclass(frozen=True)
class FollowUpStep:
    """What the engine adds for a follow-up event: messages, effects, and whether to re-ask."""

    messages: tuple[OutMessage, ...] = ()
    effects: tuple[Effect, ...] = ()
    reprompt: bool = True


def _owns(data: Mapping[str, Any], reference: str) -> bool:
    return any(c.get("reference") == reference for c in data.get("cases", []))


def follow_up_choice(data: dict[str, Any], t: Translator, button_id: str) -> FollowUpStep | None:
    """A follow-up button: record the answer and ask for an optional comment.

    Any other button ends the wait for a comment and returns None (the engine goes on as usual).
    Only the client's own cases can be answered; a forged reference gets the stale-button notice.
    """
    parsed = parse_follow_up_button(button_id)
    if parsed is None:
        data.pop(FOLLOW_UP_KEY, None)
        return None
    action, reference = parsed
    if not _owns(data, reference):
        notice = t._("This button is no longer valid. Please use the buttons below.")
        return FollowUpStep(messages=(OutMessage(notice, rtl=t.rtl),))
    if action == "skip":
        data.pop(FOLLOW_UP_KEY, None)
        return FollowUpStep(messages=(OutMessage(t._("Thank you. We passed it on."), rtl=t.rtl),))
    data[FOLLOW_UP_KEY] = {"reference": reference, "answer": action}
    thanks = {
        "yes": t._("Thank you. Good to hear that the problem is solved."),
        "partly": t._("Thank you for telling us. A coordinator will look at it."),
        "no": t._("Thank you for telling us. A coordinator will look at it and contact you."),
    }[action]
    return FollowUpStep(
        messages=(OutMessage(thanks, rtl=t.rtl), _comment_prompt(t, reference)),
        effects=(RecordFollowUp(reference, action),),
        reprompt=False,
    )


def _refuse_typed(t: Translator, text: str, limit: int, prompt: OutMessage) -> FollowUpStep | None:
    """An empty or too long typed answer: say why and ask again (nothing is saved); else None."""
    if rules.is_blank(text):
        notice = t._("I did not receive any text. Please type your answer.")
    elif len(text) > limit:
        notice = t._(
            "Your text is too long: {length} characters. The limit is {limit}. "
            "Please make it shorter. Nothing was saved."
        ).format(length=len(text), limit=limit)
    else:
        return None
    return FollowUpStep(messages=(OutMessage(notice, rtl=t.rtl), prompt), reprompt=False)


def follow_up_text(data: dict[str, Any], t: Translator, text: str) -> FollowUpStep | None:
    """Text while we wait for a follow-up comment: that is the comment. Otherwise None."""
    pending = data.get(FOLLOW_UP_KEY)
    if not pending:
        return None
    reference, answer = str(pending["reference"]), str(pending["answer"])
    refused = _refuse_typed(t, text, MAX_COMMENT, _comment_prompt(t, reference))
    if refused is not None:
        return refused
    data.pop(FOLLOW_UP_KEY, None)
    return FollowUpStep(
        messages=(OutMessage(t._("Thank you. We passed it on."), rtl=t.rtl),),
        effects=(RecordFollowUp(reference, answer, comment=text),),
    )


# --- anonymised figures ---------------------------------------------------------------------------

SUPPRESS_BELOW = 5
SMALL = "<5"
HIDDEN = "≥5"  # a count of 5 or more hidden so that a suppressed neighbour cannot be worked out


def suppress(count: int) -> str:
    """A count for publication: 1 to 4 become "<5" so that nobody can be singled out; 0 stays 0."""
    return SMALL if 0 < count < SUPPRESS_BELOW else str(count)


def suppress_breakdown(counts: Mapping[str, int]) -> dict[str, str]:
    """Suppress small cells; if exactly one cell is hidden, hide the next smallest one as "≥5" too.

    Without that second step the hidden cell would follow from the published total.
    """
    shown = {key: suppress(value) for key, value in counts.items()}
    hidden = [k for k, v in shown.items() if v == SMALL]
    if len(hidden) == 1:
        candidates = sorted((v, k) for k, v in counts.items() if shown[k] != SMALL and v > 0)
        if candidates:
            shown[candidates[0][1]] = HIDDEN
    return shown


def median_days(values: Sequence[int | None]) -> float | None:
    """The median of the known values, or None when fewer than 5 cases (too few to publish)."""
    known = [v for v in values if v is not None]
    if len(known) < SUPPRESS_BELOW:
        return None
    return float(statistics.median(known))


# --- messages from staff, and the client's answer (001 art. 14.3) ---------------------------------

REPLY_PREFIX = "rp_"
REPLY_KEY = "reply_to"  # in the conversation data while we wait for the client's answer
MAX_MESSAGE = 2000  # a staff message, or the client's answer to it


def awaits_typed_answer(data: Mapping[str, Any]) -> bool:
    """The client was asked to type an answer (a follow-up comment, or an answer to staff): their
    next text is that answer, even while a confidant chat is open."""
    return bool(data.get(FOLLOW_UP_KEY) or data.get(REPLY_KEY))


def reply_button(action: str, reference: str) -> str:
    return f"{REPLY_PREFIX}{action}:{reference}"


def parse_reply_button(button_id: str) -> tuple[str, str] | None:
    """`rp_answer:KW-2026-000001` -> ("answer", "KW-2026-000001"); None for any other button."""
    if not button_id.startswith(REPLY_PREFIX) or ":" not in button_id:
        return None
    action, reference = button_id[len(REPLY_PREFIX) :].split(":", 1)
    if action not in ("answer", "cancel") or not reference or len(reference) > 32:
        return None
    return action, reference


def staff_message(t: Translator, reference: str, text: str | None) -> OutMessage:
    """What staff wrote about a case, word for word, with a button to answer it."""
    head = t._("A message about {reference}:").format(reference=t.ltr(reference))
    body = t.quote(text) if text else t._("(This message was erased.)")
    if t.rtl:  # the text has a line of its own: make that line right-to-left as well
        body = "\u200f" + body
    buttons = ((Button(reply_button("answer", reference), t._("Answer")),), *_dossier_button(t))
    return OutMessage(text=f"{head}\n{body}", buttons=buttons, rtl=t.rtl)


def _answer_prompt(t: Translator, reference: str) -> OutMessage:
    return OutMessage(
        text=t._("Type your answer in one message. We send it to the people who handle "
                 "{reference}.").format(reference=t.ltr(reference)),
        buttons=((Button(reply_button("cancel", reference), t._("Cancel")),),),
        rtl=t.rtl,
    )


def reply_choice(data: dict[str, Any], t: Translator, button_id: str) -> FollowUpStep | None:
    """"Answer" under a staff message: wait for the client's text. Any other button ends the wait
    and returns None. Only the client's own cases can be answered."""
    parsed = parse_reply_button(button_id)
    if parsed is None:
        data.pop(REPLY_KEY, None)
        return None
    action, reference = parsed
    if not _owns(data, reference):
        notice = t._("This button is no longer valid. Please use the buttons below.")
        return FollowUpStep(messages=(OutMessage(notice, rtl=t.rtl),))
    if action == "cancel":
        data.pop(REPLY_KEY, None)
        return FollowUpStep(messages=(OutMessage(t._("OK. We did not send anything."),
                                                 rtl=t.rtl),))
    data[REPLY_KEY] = reference
    return FollowUpStep(messages=(_answer_prompt(t, reference),), reprompt=False)


def reply_text(data: dict[str, Any], t: Translator, text: str) -> FollowUpStep | None:
    """Text while we wait for an answer to a staff message: that is the answer. Otherwise None."""
    reference = data.get(REPLY_KEY)
    if not isinstance(reference, str):
        return None
    refused = _refuse_typed(t, text, MAX_MESSAGE, _answer_prompt(t, reference))
    if refused is not None:
        return refused
    data.pop(REPLY_KEY, None)
    return FollowUpStep(
        messages=(OutMessage(t._("Thank you. We sent your answer about {reference}.").format(
            reference=t.ltr(reference)), rtl=t.rtl),),
        effects=(ReplyToCase(reference, text),),
    )
