"""The domain's vocabulary: inbound events, outbound messages, effects, and the conversation state.

Everything here is plain data. Channels translate their updates into `Event`s, the engine answers with a
`StepResult`, and the application service carries out the `Effect`s (store, forward, erase).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

LANGUAGES: tuple[str, ...] = ("nl", "uk", "ar", "en")
RTL_LANGUAGES: frozenset[str] = frozenset({"ar"})


def supported_language(code: str | None) -> str | None:
    """A messenger's or browser's language code ("uk-UA", "AR") as one of LANGUAGES, or None."""
    short = (code or "").split("-")[0].lower()
    return short if short in LANGUAGES else None

Kind = Literal["complaint", "mediation_request", "confidant_request", "report"]
KINDS: tuple[Kind, ...] = ("complaint", "mediation_request", "confidant_request", "report")


# --- inbound ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The client opened the conversation (Telegram /start, first WhatsApp message, terminal).

    `organisation` is the slug a link named (Telegram `/start <slug>`, a WhatsApp prefilled text,
    the web chat's attribute); None when the link named none.
    """

    language_hint: str | None = None
    organisation: str | None = None


@dataclass(frozen=True)
class Text:
    """Free text typed by the client."""

    text: str


@dataclass(frozen=True)
class Choice:
    """A button was pressed; `button_id` is the stable id we put on it, never its label.

    `state` is the state the button was shown in, when the channel can carry it: a button from an
    older question is then refused even if the current question has a button with the same id.
    """

    button_id: str
    state: str | None = None


@dataclass(frozen=True)
class Command:
    """A command such as help, language, restart, dossier, withdraw, erase (without the slash)."""

    name: str


@dataclass(frozen=True)
class Attachment:
    """A file the client sent. The channel stored it already; `ref` is our random storage name.

    `caption`: the text the client wrote with it. At a question that takes text it counts as the
    typed answer; the file alone never answers a question (issue 14.10).
    """

    kind: Literal["photo", "document", "voice", "video", "other"]
    ref: str
    size: int
    content_type: str = "application/octet-stream"
    caption: str | None = None


@dataclass(frozen=True)
class AttachmentRefused:
    """The channel could not accept a file (too big, unreadable); the client must be told."""

    reason: Literal["too_big", "unreadable"]
    limit_bytes: int = 0


@dataclass(frozen=True)
class CaseRegistered:
    """Follow-up event: the service registered the submission under this reference."""

    reference: str
    created_at: datetime


@dataclass(frozen=True)
class DossierLoaded:
    """Follow-up event: everything stored about the client, loaded by the service."""

    cases: tuple[dict[str, Any], ...]
    purpose: Literal["show", "withdraw"] = "show"


Event = (
    Start
    | Text
    | Choice
    | Command
    | Attachment
    | AttachmentRefused
    | CaseRegistered
    | DossierLoaded
)


# --- outbound -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    """A button: `id` is stable across languages and sessions; `label` is translated."""

    id: str
    label: str


@dataclass(frozen=True)
class OutMessage:
    """A channel-neutral message: text and rows of buttons."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    rtl: bool = False

    def button_ids(self) -> list[str]:
        return [b.id for row in self.buttons for b in row]


@dataclass(frozen=True)
class SubmitCase:
    """Register the submission as a case and forward it to its mailbox (one transaction)."""

    submission: dict[str, Any]
    mailbox: str


@dataclass(frozen=True)
class WithdrawCase:
    """Mark the case withdrawn (`002` §4.1) and tell its mailbox."""

    reference: str


@dataclass(frozen=True)
class EraseDossier:
    """Destroy everything stored about this client now (`001` art. 17.4)."""


@dataclass(frozen=True)
class LoadDossier:
    """Load everything stored about this client, then feed back a `DossierLoaded` event.

    `withdraw`: to offer the cases that can still be withdrawn, by their status in the register.
    """

    purpose: Literal["show", "withdraw"] = "show"


@dataclass(frozen=True)
class RecordFollowUp:
    """The client answered the follow-up question of a closed case (`003` §4); see flows/register.py.

    `answer` is yes, partly or no; `comment` is the optional free text that may follow.
    """

    reference: str
    answer: str
    comment: str | None = None


@dataclass(frozen=True)
class ReplyToCase:
    """The client answered a message that staff wrote about their case: record it and mail it to
    the case's mailbox (see `klachtwijzer case message`, flows/register.py)."""

    reference: str
    text: str


Effect = SubmitCase | WithdrawCase | EraseDossier | LoadDossier | RecordFollowUp | ReplyToCase


# --- state --------------------------------------------------------------------------------------


@dataclass
class Conversation:
    """What we keep between two events of one client. `data` is the draft, stored encrypted."""

    state: str = "language"
    language: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "language": self.language, "data": self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Conversation:
        return cls(
            state=str(raw.get("state", "language")),
            language=raw.get("language"),
            data=dict(raw.get("data", {})),
        )


@dataclass(frozen=True)
class StepResult:
    """What one event did: the new state, the messages to send, the effects to carry out."""

    conversation: Conversation
    messages: tuple[OutMessage, ...]
    effects: tuple[Effect, ...] = ()
