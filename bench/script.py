"""The conversation every simulated client walks, and how many messages the bot answers per step.

A client opens the chat and picks a language (which shows the welcome and the first question at
once), then files a Schema A complaint: the first question (route and category in one press),
straight to the formal complaint, their name (which answers "who is it for"), who it is about,
what happened (a few sentences in their own language), when, what they tried, contact by chat,
Send on the summary (the consent; a case is registered and an outbox row is written: the step that
forwards something), and `/restart` for a new complaint, which leads back to the first question.
So of the 10 steps of the repeating part, one forwards a complaint by mail.

How many Telegram messages the bot sends for each step is learnt by running the same events
through the real service once (`calibrate`): a client in the bench waits for that many replies
before it answers, like a person who reads before pressing the next button.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from flows.model import Choice, Command, Event, OutMessage, Start, Text

if TYPE_CHECKING:
    from bot.root.app import App

StepKind = Literal["command", "press", "say"]
LANGUAGES = ("nl", "uk", "ar", "en")
TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "name": "Fatima El Amrani",
        "about": "Jeroen, vrijwilliger",
        "what": ("Mijn vrijwilliger is drie keer niet gekomen op onze afspraak. Ik heb hem gebeld "
                 "en een bericht gestuurd, maar hij antwoordt niet. Ik moest alleen naar de "
                 "gemeente en ik begreep de brief niet. Daardoor heb ik een termijn gemist."),
        "when": "10-11-2026",
        "tried": "Ik heb de coördinator een mail gestuurd.",
    },
    "uk": {
        "name": "Оксана Коваль",
        "about": "Марк, волонтер",
        "what": ("Мій волонтер тричі не прийшов на зустріч. Я дзвонила і писала йому, але він не "
                 "відповідає. Мені довелося самій іти до муніципалітету, і я не зрозуміла листа. "
                 "Через це я пропустила строк."),
        "when": "березень 2026",
        "tried": "Я написала координатору.",
    },
    "ar": {
        "name": "سمير حداد",
        "about": "يوست، متطوع",
        "what": ("لم يأت المتطوع إلى موعدنا ثلاث مرات. اتصلت به وأرسلت له رسالة، لكنه لا يرد. "
                 "اضطررت للذهاب وحدي إلى البلدية ولم أفهم الرسالة. لذلك فاتني موعد نهائي."),
        "when": "15-03-2026",
        "tried": "أرسلت رسالة إلى المنسق.",
    },
    "en": {
        "name": "Daniel Mensah",
        "about": "Kees, volunteer",
        "what": ("My volunteer did not come to our appointment three times. I called him and sent "
                 "a message, but he does not answer. I had to go to the municipality alone and "
                 "did not understand the letter. Because of that I missed a deadline."),
        "when": "March 2026",
        "tried": "I wrote to the coordinator.",
    },
}


@dataclass(frozen=True)
class Step:
    """One thing a client does: a command, a button press or typed text."""

    kind: StepKind
    value: str  # "/start", a button id, or the text
    replies: int = 1  # Telegram messages the bot sends back (learnt by `calibrate`)
    forwards: bool = False  # this step registers a case and writes an outbox row
    # For a press: the message that carried the button (text, rows of (label, button id)), so the
    # echo bot gets a callback update of the same shape and size as the bot's.
    shown_text: str = ""
    shown_buttons: tuple[tuple[tuple[str, str], ...], ...] = ()


@dataclass(frozen=True)
class Script:
    """What a client in one language does: `opening` once, then `cycle` over and over."""

    language: str
    opening: tuple[Step, ...]
    cycle: tuple[Step, ...]
    outbox_every: int = field(default=10)

    def steps(self) -> itertools.chain[Step]:
        return itertools.chain(self.opening, itertools.cycle(self.cycle))


def _plan(language: str) -> tuple[list[tuple[StepKind, str]], list[tuple[StepKind, str]]]:
    words = TEXTS[language]
    opening: list[tuple[StepKind, str]] = [
        ("command", "/start"), ("press", f"lang_{language}"),
    ]
    cycle: list[tuple[StepKind, str]] = [
        ("press", "help"), ("press", "skip_to_complaint"),
        ("say", words["name"]), ("say", words["about"]),
        ("say", words["what"]), ("say", words["when"]), ("say", words["tried"]),
        ("press", "contact_chat"), ("press", "confirm"),
        ("command", "/restart"),
    ]
    return opening, cycle


def event_of(kind: str, value: str, language_code: str | None) -> Event:
    """The domain event the Telegram adapter makes of this update."""
    if kind == "press":
        return Choice(value)
    if kind == "command":
        name = value[1:].split()[0]
        return Start(language_code) if name == "start" else Command(name)
    return Text(value)


def telegram_messages(messages: tuple[OutMessage, ...] | list[OutMessage]) -> int:
    """How many sendMessage calls these messages become (long ones are split)."""
    try:
        from bot.channels.telegram.core import split_text
    except ImportError:  # pragma: no cover - the adapter moved; one call per message then
        return len(messages)
    return sum(len(split_text(m.text)) for m in messages)


class ScriptError(RuntimeError):
    """The procedure no longer offers the buttons this script presses."""


async def calibrate(language: str) -> Script:
    """Walk the plan once through the real service (a throw-away data dir) and learn the replies."""
    from bot.root.app import build_app
    from bot.root.settings import Settings

    opening_plan, cycle_plan = _plan(language)
    with tempfile.TemporaryDirectory(prefix="kw-bench-calibrate-") as tmp:
        settings = Settings(data_dir=Path(tmp), mail_from="bench@klachtwijzer.test",
                            database_url=None, secret_key=_key())
        app = await build_app(settings)
        try:
            shown: OutMessage | None = None
            learnt: list[Step] = []
            # The cycle twice: the second time round must answer exactly as the first.
            for kind, value in [*opening_plan, *cycle_plan, *cycle_plan]:
                if kind == "press" and (shown is None or value not in shown.button_ids()):
                    raise ScriptError(f"the procedure shows no button {value!r} at this point")
                before = await _case_count(app)
                reply = await app.service.handle("telegram", "1", event_of(kind, value, language))
                after = await _case_count(app)
                forwards = after > before if after >= 0 else value == "confirm"
                text = ""
                rows: tuple[tuple[tuple[str, str], ...], ...] = ()
                if kind == "press" and shown is not None:
                    text = shown.text
                    rows = tuple(tuple((b.label, b.id) for b in row) for row in shown.buttons)
                learnt.append(Step(kind, value, telegram_messages(reply.messages), forwards,
                                   text, rows))
                with_buttons = [m for m in reply.messages if m.buttons]
                if with_buttons:
                    shown = with_buttons[-1]
        finally:
            await app.close()
    n_open, n_cycle = len(opening_plan), len(cycle_plan)
    first, second = learnt[n_open:n_open + n_cycle], learnt[n_open + n_cycle:]
    if [s.replies for s in first] != [s.replies for s in second]:
        raise ScriptError("the second complaint was answered differently from the first")
    forwarding = sum(1 for s in second if s.forwards)
    if forwarding == 0:
        raise ScriptError("no step of the conversation registered a case")
    return Script(language, tuple(learnt[:n_open]), tuple(second),
                  outbox_every=max(1, round(n_cycle / forwarding)))


async def _case_count(app: App) -> int:
    """Cases registered so far for the calibration chat; -1 when the repositories moved."""
    try:
        async with app.db.unit_of_work(read_only=True) as uow:
            conversation = await uow.conversations.get("telegram", "1")
            if conversation is None or conversation.id is None:
                return 0
            return len(await uow.cases.for_conversation(conversation.id))
    except (AttributeError, TypeError):  # pragma: no cover - storage reworked: trust the plan
        return -1


def _key() -> SecretStr:
    """A fresh encryption key, so no development key is generated (and warned about)."""
    from storage import generate_key

    return SecretStr(generate_key())


def fake_callback_data(button_id: str) -> str:
    """Callback data of the same shape and length the bot uses (`id|state|MAC`), for the echo."""
    return f"{button_id}|abcde|AAAAAAAAAAA"
