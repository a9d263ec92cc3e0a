"""The register's rules, pure: the life of a case, its deadlines, what the client is told.

* The status lifecycle (`001` art. 14-17, `002` §4.1) and which changes are allowed, per kind.
* Due dates per case, from the procedure's deadlines (`Procedure.deadlines`, in days) and the
  case's history: acknowledgement (art. 14.1), missing information (14.3), staff informed (14.4),
  mediation report (4.4), decision (15.1), board response (16.1).
* The plain-language message the client gets on a status change, in their language.
* The follow-up question (`003` §4) and messages from staff (001 art. 14.3) are in
  `flows.follow_up`, and importable from here.
* Small-number suppression for everything published (`suppress`, `suppress_breakdown`).

Nothing here does I/O; `bot/register.py` stores and sends.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from flows.follow_up import (
    FOLLOW_UP_ANSWERS,
    FOLLOW_UP_KEY,
    FOLLOW_UP_PREFIX,
    MAX_COMMENT,
    MAX_MESSAGE,
    REPLY_KEY,
    REPLY_PREFIX,
    FollowUpStep,
    awaits_typed_answer,
    dossier_button,
    follow_up_button,
    follow_up_choice,
    follow_up_message,
    follow_up_text,
    parse_follow_up_button,
    parse_reply_button,
    reply_button,
    reply_choice,
    reply_text,
    staff_message,
)
from flows.i18n import Translator
from flows.model import OutMessage

# The follow-up and the messages from staff live in flows/follow_up.py; users keep importing
# them from here (this module's own names are public as always).
__all__ = [
    "FOLLOW_UP_ANSWERS",
    "FOLLOW_UP_KEY",
    "FOLLOW_UP_PREFIX",
    "MAX_COMMENT",
    "MAX_MESSAGE",
    "REPLY_KEY",
    "REPLY_PREFIX",
    "FollowUpStep",
    "awaits_typed_answer",
    "follow_up_button",
    "follow_up_choice",
    "follow_up_message",
    "follow_up_text",
    "parse_follow_up_button",
    "parse_reply_button",
    "reply_button",
    "reply_choice",
    "reply_text",
    "staff_message",
]

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


def status_text(
    t: Translator,
    *,
    kind: str,
    status: str,
    reference: str,
    outcome: str | None = None,
    due: Mapping[str, date] | None = None,
    follow_up_days: int = 0,
    receiver: str = "committee",
) -> str:
    """What happened and what comes next, in plain words (B1), for one status change.

    `receiver`: who received the case, as its form says (`Form.receiver`): a complaint to the
    manager (002 §4.2) or a request to the one confidant (004 step 2) is acknowledged as such.
    """
    due = due or {}
    ref = t.ltr(reference)
    head = t._("News about {reference}:").format(reference=ref)
    if status == "acknowledged" and kind == "complaint" and receiver == "manager":
        # 002 §4.2: the manager of the employee contacts the client to talk about it.
        body = t._("The organisation confirms that it got your complaint. The manager of the "
                   "employee will contact you to talk about it.")
    elif status == "acknowledged" and kind == "confidant_request" and receiver == "confidant":
        # 004 step 2: one confidant.
        body = t._("The confidant got your request. The confidant will contact you soon, in the "
                   "way you chose.")
    elif status == "acknowledged":
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
    return OutMessage(text=status_text(t, **kwargs), buttons=dossier_button(t), rtl=t.rtl)


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
