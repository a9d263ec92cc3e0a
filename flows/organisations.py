"""Which organisation a conversation belongs to, when one deployment serves several (issue 11).

Pure: the intake service asks `choose()` before the procedure's engine runs, and only in a
deployment of several organisations. A link that names an organisation (Telegram
`/start <slug>`, a WhatsApp prefilled text, the web chat's attribute) chooses it at once;
otherwise the client picks from a short list of names. The choice is kept in the conversation
data (`ORG_KEY`); `/organisation` shows the list again. Choosing another organisation starts
the conversation again under that organisation's procedure: nothing already sent changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flows.i18n import N_, Catalogs
from flows.model import (
    LANGUAGES,
    Button,
    Choice,
    Command,
    Event,
    OutMessage,
    Start,
    Text,
    supported_language,
)

ORG_KEY = "org"  # the chosen organisation's slug, in the conversation data
CHANGING_KEY = "org_change"  # the list is open again after /organisation
BUTTON = "org:"  # button ids: org:<slug>
COMMAND = "organisation"


@dataclass(frozen=True)
class OrganisationOption:
    """One organisation on the list: its slug (in links and button ids) and its own name."""

    slug: str
    name: str


@dataclass(frozen=True)
class OrgDecision:
    """What the intake does with one event before the engine sees it.

    `reply` set: answer with these messages and stop (the list, or "you stay with ...").
    `start` set: the conversation now belongs to this organisation; begin (or begin again)
    its procedure with a Start event. Neither: pass the event to the engine as it is.
    """

    reply: tuple[OutMessage, ...] = ()
    start: str | None = None
    restart: bool = False  # another organisation than before: the draft is dropped


def named_in(event: Event, options: Sequence[OrganisationOption]) -> str | None:
    """The slug a link or a typed start text names, if it is one of ours."""
    known = {o.slug for o in options}
    if isinstance(event, Start) and event.organisation:
        slug = event.organisation.strip().lower()
        return slug if slug in known else None
    if isinstance(event, Choice) and event.button_id.startswith(BUTTON):
        slug = event.button_id.removeprefix(BUTTON)
        return slug if slug in known else None
    return None


def choose(data: dict[str, Any], language: str | None, event: Event,
           options: Sequence[OrganisationOption], catalogs: Catalogs) -> OrgDecision:
    """Decide, for a deployment of several organisations, what this event means for the choice."""
    current = data.get(ORG_KEY)
    changing = bool(data.get(CHANGING_KEY))
    picked = named_in(event, options)
    if isinstance(event, Start) and supported_language(event.language_hint):
        data.setdefault("hint", supported_language(event.language_hint))
    language = language or data.get("hint")
    t = catalogs.get(language)
    if picked is not None and (current is None or changing or isinstance(event, Start)):
        if current is not None and picked == current:
            data.pop(CHANGING_KEY, None)
            if isinstance(event, Start):
                return OrgDecision()  # the same link again: the engine says "welcome back"
            return OrgDecision(reply=(OutMessage(
                t._("You stay with {name}.").format(name=_name(options, current)),
                rtl=t.rtl),), start=None)
        if current is not None and isinstance(event, Start) and not changing:
            # A link to another organisation in the middle of a conversation: ask, never drop
            # answers on a link alone.
            data[CHANGING_KEY] = True
            return OrgDecision(reply=(picker(catalogs, options, language, changing=True),))
        data.pop(CHANGING_KEY, None)
        data[ORG_KEY] = picked
        return OrgDecision(start=picked, restart=current is not None)
    if _asks_to_change(event):
        data[CHANGING_KEY] = True
        return OrgDecision(reply=(picker(catalogs, options, language, changing=current is not None),))
    if current is None:
        unknown = isinstance(event, Start) and bool(event.organisation)
        return OrgDecision(reply=(picker(catalogs, options, language, unknown=unknown),))
    if changing and isinstance(event, Choice | Text):
        # Anything but a name while the list is open: the list stays, the conversation waits.
        return OrgDecision(reply=(picker(catalogs, options, language, changing=True),))
    return OrgDecision()


def _asks_to_change(event: Event) -> bool:
    if isinstance(event, Command):
        return event.name.lower().lstrip("/") == COMMAND
    return isinstance(event, Choice) and event.button_id == "cmd:" + COMMAND


def _name(options: Sequence[OrganisationOption], slug: str) -> str:
    return next((o.name for o in options if o.slug == slug), slug)


QUESTION = N_("Which organisation is your complaint or question about?")


def picker(catalogs: Catalogs, options: Sequence[OrganisationOption], language: str | None, *,
           changing: bool = False, unknown: bool = False) -> OutMessage:
    """The short list: one button per organisation, in its own name.

    With no language known yet (a first WhatsApp message tells none), the question is asked in
    all four languages, one short line each; the client chooses their language right after.
    """
    if language is None:
        lines = [catalogs.get(code)._(QUESTION) for code in LANGUAGES]
        t = catalogs.get("nl")
    else:
        t = catalogs.get(language)
        lines = [t._(QUESTION)]
    if unknown:
        lines.insert(0, t._("We do not know the organisation in your link."))
    if changing:
        lines.append(t._("If you choose another organisation, we start again with its steps. "
                         "Your answers that you did not send yet are removed. "
                         "What you already sent does not change."))
    buttons = tuple((Button(BUTTON + o.slug, o.name),) for o in options)
    return OutMessage("\n".join(lines), buttons, rtl=language is not None and t.rtl)
