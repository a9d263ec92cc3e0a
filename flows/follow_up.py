"""What the client answers after a case: the follow-up question, and messages from staff.

* The follow-up question (`003` §4): yes / partly / no, then an optional comment. Its buttons carry
  the case reference (`fu_yes:KW-2026-000001`), so they work whenever the client presses them.
* A message from staff (001 art. 14.3), with buttons to answer it or to see the file.

`Engine._on_choice` and `Engine._on_text` hand buttons and typed text to `follow_up_choice` /
`follow_up_text` and `reply_choice` / `reply_text` first. Everything here is also importable from
`flows.register`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows import rules
from flows.i18n import Translator
from flows.model import Button, Effect, OutMessage, RecordFollowUp, ReplyToCase
from flows.texts import GLOBAL_ACTIONS


def dossier_button(t: Translator) -> tuple[tuple[Button, ...], ...]:
    """A button to see the file (/dossier), under a message about a case."""
    label = GLOBAL_ACTIONS["dossier"]
    return ((Button("cmd:dossier", t._(label)),),)


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
    buttons = ((Button(reply_button("answer", reference), t._("Answer")),), *dossier_button(t))
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
