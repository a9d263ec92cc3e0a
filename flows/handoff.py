"""The confidant handoff (Schema B step 2, leaflet `000`): who is asked, what each side sees.

Pure: no I/O. The application (bot/handoffs.py) loads a `Handoff`, calls one function here and
stores and sends what comes back. The rules:

* the offer goes to the confidants of the chosen gender, to all of them for "no preference";
  it shows only what the client agreed to share, under a pseudonym;
* the first confidant to accept is connected (the storage claim is atomic); the others are told;
* messages are relayed both ways; the client sees "your confidant (a woman)", the confidant sees
  the pseudonym; names are shared only when that side chooses to;
* either side can end it; the client is reminded what the messengers themselves still know
  (Telegram both accounts; WhatsApp (Meta) the client's number and the organisation's) and is
  asked whether the transcript goes into their file (nothing is kept without consent);
* an offer nobody accepts in time expires: the client is told, and the mail to the confidants'
  mailbox (always sent, `000`) stands.

Channel-neutral: people are reached at an `Address` (channel, chat id). The client and the
confidant may use different messengers (a WhatsApp client, a Telegram confidant); the texts that say
what a messenger can see follow the client's and the confidant's channel.

Confidant-facing texts go through the catalogs too, in the confidant's language (Dutch by default).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from flows.i18n import Catalogs, Translator
from flows.model import Button, OutMessage
from flows.texts import CATEGORY, LANGUAGE_NAMES, PREFERENCE

Status = Literal["offered", "active", "ended", "expired"]
Side = Literal["client", "confidant"]
Address = tuple[str, str]  # (channel, chat id), e.g. ("telegram", "501"), ("whatsapp", "316...")
CONFIDANT_LANGUAGE = "nl"  # staff default (the procedures are Dutch)
PREFIX = "ho:"
ACTIONS = ("accept", "end", "share", "keep", "drop", "retry")
_PSEUDONYM_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


class ConfidantLike(Protocol):
    @property
    def addresses(self) -> tuple[Address, ...]: ...

    @property
    def gender(self) -> str: ...


@dataclass(frozen=True)
class Handoff:
    """What the rules need to know about one handoff."""

    id: int
    status: Status
    preference: str  # female, male, none
    pseudonym: str
    client_language: str
    reference: str | None = None
    category: str | None = None
    about: str | None = None  # the client's optional "what it is about" (they consented to share)
    name: str | None = None  # the client's name, if they gave one in the request
    offered_to: tuple[Address, ...] = ()
    confidant: Address | None = None  # where the confidant who accepted chats
    client_channel: str = "telegram"
    confidant_gender: str | None = None
    confidant_language: str = CONFIDANT_LANGUAGE
    transcript_pending: bool = False


@dataclass(frozen=True)
class FileOut:
    """A file to pass on (a relayed photo or voice note), by our storage reference."""

    kind: str
    ref: str
    content_type: str
    caption: str


Item = OutMessage | FileOut


@dataclass(frozen=True)
class Outcome:
    """The result of one rule: the new handoff, and what to send to whom."""

    handoff: Handoff
    to_client: tuple[Item, ...] = ()
    to_confidants: tuple[tuple[Address, tuple[Item, ...]], ...] = ()
    record: dict[str, Any] | None = None  # a transcript line to store (relay only)
    changed: bool = False  # the status changed


def new_pseudonym() -> str:
    """A random, unguessable pseudonym code, e.g. `K7QM`."""
    return "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(4))


def recipients(confidants: Sequence[ConfidantLike], preference: str | None,
               channels: Collection[str] = ("telegram",)) -> tuple[Address, ...]:
    """Where the offer goes: every address, on a channel running here, of each confidant of the
    chosen gender (of all of them for no preference)."""
    wanted = preference if preference in ("female", "male") else None
    return tuple(address for c in confidants if wanted is None or c.gender == wanted
                 for address in c.addresses if address[0] in channels)


def button(action: str, handoff_id: int) -> str:
    return f"{PREFIX}{action}:{handoff_id}"


def parse_button(button_id: str) -> tuple[str, int] | None:
    """`ho:accept:12` -> ("accept", 12); None for anything else (including forged ids)."""
    if not button_id.startswith(PREFIX):
        return None
    action, _, number = button_id[len(PREFIX):].partition(":")
    if action not in ACTIONS or not number.isdigit() or len(number) > 12:
        return None
    return action, int(number)


def file_marker(t: Translator, kind: str) -> str:
    """A relayed file named in text: "(a photo)", "(a voice message)" or "(a file)"."""
    if kind == "photo":
        return t._("(a photo)")
    if kind == "voice":
        return t._("(a voice message)")
    return t._("(a file)")


class Rules:
    """The handoff rules, with the catalogs for both sides."""

    def __init__(self, catalogs: Catalogs) -> None:
        self.catalogs = catalogs

    def client(self, h: Handoff) -> Translator:
        return self.catalogs.get(h.client_language)

    def staff(self, language: str | None) -> Translator:
        return self.catalogs.get(language or CONFIDANT_LANGUAGE)

    def _msg(self, t: Translator, text: str, *buttons: Button) -> OutMessage:
        return OutMessage(text=text, buttons=tuple((b,) for b in buttons), rtl=t.rtl)

    def client_label(self, h: Handoff, t: Translator) -> str:
        """How the client sees the confidant: never a name or account unless shared."""
        if h.confidant_gender == "female":
            return t._("Your confidant (a woman)")
        if h.confidant_gender == "male":
            return t._("Your confidant (a man)")
        return t._("Your confidant")

    def client_tag(self, h: Handoff, t: Translator) -> str:
        return t._("Client {code}").format(code=h.pseudonym)

    # --- what each messenger can see ---------------------------------------------------------

    def _connected_text(self, h: Handoff, t: Translator) -> str:
        """The client's "connected" notice, saying truly what their messenger still knows."""
        if h.client_channel == "web":  # issue 13: no account, no messenger in between
            return t._(
                "{confidant} is now connected with you. What you write here now goes to your "
                "confidant. This chat is anonymous: you have no account here, and your "
                "confidant does not know who you are, unless you tell them.\n"
                "To stop, press the button or type /end.")
        if h.client_channel == "whatsapp":
            return t._(
                "{confidant} is now connected with you. What you write here now goes to your "
                "confidant. Your confidant does not see your name or phone number, unless you "
                "share your name. Note: WhatsApp (Meta) still knows your phone number and the "
                "number of the organisation.\n"
                "To stop, press the button or type /end.")
        if h.confidant is not None and h.confidant[0] != h.client_channel:
            return t._(
                "{confidant} is now connected with you. What you write here now goes to your "
                "confidant. Your confidant does not see your name or Telegram account, unless "
                "you share it. Note: Telegram itself still knows your account and the "
                "organisation's bot.\n"
                "To stop, press the button or type /end.")
        return t._(
            "{confidant} is now connected with you. What you write here now goes to your "
            "confidant. Your confidant does not see your name or Telegram account, unless "
            "you share it. Note: Telegram itself still knows both accounts.\n"
            "To stop, press the button or type /end.")

    def _ended_note(self, h: Handoff, t: Translator) -> str:
        """The reminder at the end: what the client's messenger still knows."""
        if h.client_channel == "web":
            return t._("This chat was anonymous. Your confidant did not see who you are, and no "
                       "messenger app was involved.")
        if h.client_channel == "whatsapp":
            return t._("We did not show your phone number to the confidant. But WhatsApp (Meta) "
                       "still knows your phone number and the number of the organisation.")
        if h.confidant is not None and h.confidant[0] != h.client_channel:
            return t._("We did not show your account to the confidant. But Telegram itself "
                       "still knows your account and the organisation's bot.")
        return t._("We did not show your account to the confidant. But Telegram itself still "
                   "knows both accounts.")

    def _crossing(self, st: Translator, client_channel: str, confidant_channel: str) -> str | None:
        """For a confidant on another messenger than the client: what neither side sees."""
        if client_channel == confidant_channel:
            return None
        if client_channel == "web":
            return st._("The client uses the web chat on the website, without an account. They "
                        "are anonymous to you, and they do not see your account.")
        if client_channel == "whatsapp":
            return st._("The client uses WhatsApp. You do not see their phone number, and they "
                        "do not see your account.")
        return st._("The client uses Telegram. You do not see their account, and they do not "
                    "see your phone number.")

    # --- start --------------------------------------------------------------------------------

    def offer(self, h: Handoff, minutes: int) -> Outcome:
        """The waiting notice for the client and the offer for each confidant asked."""
        t = self.client(h)
        if not h.offered_to:
            return Outcome(h)
        if h.preference in ("female", "male"):
            wait = t.ngettext(
                "We are now looking for a confidant ({preference}) who can chat with you here. "
                "Please wait. This can take up to {minutes} minute.",
                "We are now looking for a confidant ({preference}) who can chat with you here. "
                "Please wait. This can take up to {minutes} minutes.", minutes,
            ).format(preference=t._(PREFERENCE[h.preference]), minutes=minutes)
        else:
            wait = t.ngettext(
                "We are now looking for a confidant who can chat with you here. "
                "Please wait. This can take up to {minutes} minute.",
                "We are now looking for a confidant who can chat with you here. "
                "Please wait. This can take up to {minutes} minutes.", minutes,
            ).format(minutes=minutes)
        wait += "\n" + t._("You may already write your message. The confidant reads it after "
                           "accepting. To stop waiting, type /end.")
        out = []
        for confidant in h.offered_to:
            st = self.staff(None)
            crossing = self._crossing(st, h.client_channel, confidant[0])
            lines = [
                st._("New request for a confidant chat."),
                st._("Client: {code}").format(code=h.pseudonym),
            ]
            if h.reference:
                lines.append(st._("Reference: {reference}").format(reference=h.reference))
            lines.append(st._("Language: {language}").format(
                language=LANGUAGE_NAMES.get(h.client_language, h.client_language)))
            if h.category and h.category in CATEGORY:
                lines.append(st._("About: {category}").format(category=st._(CATEGORY[h.category])))
            lines.append(st._("Preference: {preference}").format(
                preference=st._(PREFERENCE.get(h.preference, PREFERENCE["none"]))))
            if h.about:
                lines.append(st._("In their words: {text}").format(text=st.quote(h.about)))
            if crossing:
                lines.append(crossing)
            lines.append("")
            lines.append(st._("The first confidant to accept chats with this client here. The "
                              "client does not see your name or account."))
            out.append((confidant, (self._msg(st, "\n".join(lines),
                                               Button(button("accept", h.id), st._("Accept"))),)))
        return Outcome(h, to_client=(self._msg(t, wait),), to_confidants=tuple(out))

    # --- accept -------------------------------------------------------------------------------

    def accepted(self, h: Handoff, waiting: Sequence[dict[str, Any]]) -> Outcome:
        """The claim succeeded: connect both sides, tell the other confidants, pass on what waited."""
        t = self.client(h)
        label = self.client_label(h, t)
        share = (() if h.client_channel == "web" else (  # a web client has no name to share
            Button(button("share", h.id), t._("Share my WhatsApp name")
                   if h.client_channel == "whatsapp" else t._("Share my Telegram name")),))
        to_client = self._msg(
            t,
            self._connected_text(h, t).format(confidant=label),
            Button(button("end", h.id), t._("End the conversation")),
            *share,
        )
        st = self.staff(h.confidant_language)
        lines = [
            st._("You are now connected with {client}. What you write here goes to the client. "
                 "The client sees you as: {label}.").format(
                client=self.client_tag(h, st), label=self.client_label(h, st)),
        ]
        crossing = self._crossing(st, h.client_channel, _cid(h)[0])
        if crossing:
            lines.append(crossing)
        if h.name:
            lines.append(st._("Name (shared in the request): {name}").format(name=st.quote(h.name)))
        lines.append(st._("To stop, press the button or type /end."))
        to_confidant: list[Item] = [
            self._msg(st, "\n".join(lines),
                      Button(button("end", h.id), st._("End the conversation")),
                      Button(button("share", h.id), st._("Share my name")))
        ]
        for body in waiting:
            to_confidant.extend(self._relay_items(h, "client", body))
        others = tuple(
            (other, (self._msg(self.staff(None), self.staff(None)._(
                "Another confidant accepted the request of {client}.").format(
                client=self.client_tag(h, self.staff(None)))),))
            for other in h.offered_to if other != h.confidant
        )
        return Outcome(
            h, to_client=(to_client,),
            to_confidants=((_cid(h), tuple(to_confidant)), *others), changed=True,
        )

    def not_claimed(self, language: str | None, *, busy: bool) -> OutMessage:
        st = self.staff(language)
        if busy:
            return self._msg(st, st._("You are already in a conversation. End it first with /end."))
        return self._msg(st, st._("This request is no longer open. Another confidant accepted it, "
                                  "or the time ran out."))

    # --- relay --------------------------------------------------------------------------------

    def _relay_items(self, h: Handoff, sender: Side, body: dict[str, Any]) -> list[Item]:
        if sender == "client":
            st = self.staff(h.confidant_language)
            tag = self.client_tag(h, st)
            t = st
        else:
            t = self.client(h)
            tag = self.client_label(h, t)
        if body.get("kind") == "text":
            return [self._msg(t, "{tag}: {text}".format(tag=tag, text=t.quote(str(body["text"]))))]
        kind = str(body.get("kind"))
        ref = body.get("ref")
        if ref:
            return [FileOut(kind, str(ref), str(body.get("content_type") or ""), tag)]
        return [self._msg(t, tag + ": " + file_marker(t, kind))]


    def relay(self, h: Handoff, sender: Side, body: dict[str, Any]) -> Outcome:
        """One message from one side, to the other (or kept until a confidant accepts)."""
        record = {k: v for k, v in body.items() if k in ("kind", "text")}
        if h.status == "offered" and sender == "client":
            t = self.client(h)
            return Outcome(h, to_client=(self._msg(t, t._(
                "We keep your message. The confidant reads it after accepting.")),), record=record)
        items = tuple(self._relay_items(h, sender, body))
        if sender == "client":
            return Outcome(h, to_confidants=((_cid(h), items),), record=record)
        return Outcome(h, to_client=items, record=record)

    def share(self, h: Handoff, sender: Side, display_name: str) -> Outcome:
        """One side chooses to show their Telegram name to the other."""
        if sender == "client":
            st = self.staff(h.confidant_language)
            t = self.client(h)
            whatsapp = h.client_channel == "whatsapp"
            seen = (t._("Your confidant now sees your WhatsApp name.") if whatsapp
                    else t._("Your confidant now sees your Telegram name."))
            told = (st._("{client} shared their WhatsApp name with you: {name}") if whatsapp
                    else st._("{client} shared their Telegram name with you: {name}"))
            return Outcome(
                h,
                to_client=(self._msg(t, seen),),
                to_confidants=((_cid(h), (self._msg(st, told.format(
                    client=self.client_tag(h, st), name=st.quote(display_name))),)),),
                record={"kind": "shared"},
            )
        t = self.client(h)
        st = self.staff(h.confidant_language)
        return Outcome(
            h,
            to_client=(self._msg(t, t._("{confidant} shared their name with you: {name}").format(
                confidant=self.client_label(h, t), name=t.quote(display_name))),),
            to_confidants=((_cid(h), (self._msg(st, st._(
                "The client now sees your name.")),)),),
            record={"kind": "shared"},
        )

    # --- end ----------------------------------------------------------------------------------

    def ended(self, h: Handoff, by: Side, *, has_transcript: bool) -> Outcome:
        """Either side ended it: tell both; ask the client about the transcript."""
        t = self.client(h)
        label = self.client_label(h, t)
        if by == "client":
            first = t._("You ended the conversation with your confidant.")
        else:
            first = t._("{confidant} ended the conversation.").format(confidant=label)
        text = first + "\n" + self._ended_note(h, t)
        buttons: tuple[Button, ...] = ()
        if has_transcript:
            text += "\n\n" + t._(
                "Do you want to keep the text of this conversation in your file? Without your "
                "consent we delete it."
            )
            buttons = (Button(button("keep", h.id), t._("Yes, keep it")),
                       Button(button("drop", h.id), t._("No, delete it")))
        to_client = (self._msg(t, text, *buttons),)
        to_confidants: tuple[tuple[Address, tuple[Item, ...]], ...] = ()
        if h.confidant is not None:
            st = self.staff(h.confidant_language)
            text_c = (
                st._("The client ended the conversation.") if by == "client"
                else st._("You ended the conversation with {client}.").format(
                    client=self.client_tag(h, st))
            )
            to_confidants = ((_cid(h), (self._msg(st, text_c),)),)
        elif h.status == "offered":
            st = self.staff(None)
            to_confidants = tuple(
                (c, (self._msg(st, st._("The request of {client} is no longer open.").format(
                    client=self.client_tag(h, st))),))
                for c in h.offered_to
            )
        return Outcome(replace(h, status="ended", transcript_pending=has_transcript),
                       to_client=to_client, to_confidants=to_confidants, changed=True)

    def transcript(self, h: Handoff, keep: bool) -> Outcome:
        t = self.client(h)
        text = (t._("We added the text of the conversation to your file. You can see it with "
                    "/dossier and erase it with /erase.") if keep
                else t._("The text of the conversation is deleted."))
        return Outcome(replace(h, transcript_pending=False), to_client=(self._msg(t, text),))

    def expired(self, h: Handoff, unread: int = 0) -> Outcome:
        """Nobody accepted in time: the mail to the confidants' mailbox stands."""
        t = self.client(h)
        text = t._(
            # Said the same for one confidant (004 step 2) or several (000): "by e-mail".
            "No confidant was free to chat with you now. Your request was already sent by "
            "e-mail. A confidant will contact you."
        )
        if h.reference:
            text += "\n" + t._("Your reference number is {reference}.").format(
                reference=t.ltr(h.reference))
        if unread:
            text += "\n" + t.ngettext(
                "Nobody read the {count} message you wrote while waiting. It is deleted. You "
                "can write it again when a confidant is connected.",
                "Nobody read the {count} messages you wrote while waiting. They are deleted. You "
                "can write them again when a confidant is connected.",
                unread,
            ).format(count=unread)
        st = self.staff(None)
        return Outcome(
            replace(h, status="expired"),
            to_client=(self._msg(t, text, Button(button("retry", h.id), t._("Try again"))),),
            to_confidants=tuple(
                (c, (self._msg(st, st._("The request of {client} is no longer open.").format(
                    client=self.client_tag(h, st))),))
                for c in h.offered_to
            ),
            changed=True,
        )

    def invalid(self, language: str | None, *, staff: bool = False) -> OutMessage:
        t = self.staff(language) if staff else self.catalogs.get(language)
        return self._msg(t, t._("This button is no longer valid. Please use the buttons below."))

    def idle_confidant(self, language: str | None) -> OutMessage:
        st = self.staff(language)
        return self._msg(st, st._(
            "You have no open conversation with a client. When a client asks for a confidant, "
            "you get a message here."))

    def not_relayed(self, language: str | None) -> OutMessage:
        st = self.staff(language)
        return self._msg(st, st._(
            "This message was not passed on: it is empty or longer than {limit} characters."
        ).format(limit=3500))

    def connected_help(self, h: Handoff) -> OutMessage:
        st = self.staff(h.confidant_language)
        return self._msg(st, st._(
            "You are in a conversation with {client}. What you write here goes to the client. "
            "To stop, type /end.").format(client=self.client_tag(h, st)))

    def nobody_free(self, h: Handoff) -> OutMessage:
        t = self.client(h)
        return self._msg(t, t._("No confidant can chat here at the moment. Your request was sent "
                                "by e-mail. A confidant will contact you."))


def _cid(h: Handoff) -> Address:
    """Where the confidant of a handoff that has one (active or ended after acceptance) chats."""
    if h.confidant is None:
        raise ValueError("this handoff has no confidant yet")
    return h.confidant


def transcript_lines(messages: Sequence[tuple[datetime, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The transcript as stored in the dossier: time, side, and text or a marker."""
    return [
        {"at": at.isoformat(), "from": sender, "kind": body.get("kind"), "text": body.get("text")}
        for at, sender, body in messages
    ]
