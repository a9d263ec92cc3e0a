"""The model the state machine runs on: one conversation during one event, plus what the event produced.

`Engine.step` builds a `Turn` per event and fires the machine's events at it. The form handling
(`flows.forms`) and the rendering (`flows.render`) read and change the conversation through it, so
this module sits below them all and imports none of them. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flows.i18n import Translator
from flows.model import Button, Conversation, Effect, OutMessage

# 002 §4.1: a complaint can be withdrawn while it is being handled, not after the decision.
WITHDRAWABLE = frozenset({"received", "acknowledged", "in_mediation", "with_committee"})


class Prompter(Protocol):
    """What a turn needs from the engine: show the question of the current state."""

    def prompt(self, turn: Turn) -> None: ...


class Driver(Prompter, Protocol):
    """What the handlers beside the engine (`flows.steps`, `flows.overlays`) need from it."""

    def fire(self, turn: Turn, trigger: str, dest: str) -> None: ...


@dataclass
class Turn:
    """The model the machine sees during one event: the conversation plus what the event produced."""

    engine: Prompter
    conv: Conversation
    t: Translator
    now: datetime
    out: list[OutMessage] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    dest: str = ""

    @property
    def state(self) -> str:  # transitions reads and writes the model's `state`
        return self.conv.state

    @state.setter
    def state(self, value: str) -> None:
        self.conv.state = value

    @property
    def data(self) -> dict[str, Any]:
        return self.conv.data

    @property
    def hint(self) -> str | None:
        """The messenger's language (Start's hint), when it is one of ours; kept after /erase."""
        hint = self.conv.data.get("hint")
        return hint if isinstance(hint, str) and hint else None

    @property
    def answers(self) -> dict[str, Any]:
        answers: dict[str, Any] = self.conv.data.setdefault("answers", {})
        return answers

    def on_enter(self, event_data: Any) -> None:
        """Every state shows its question when it is entered (a `transitions` callback).

        `submitting` is passed through within one unit of work, so it has nothing to show.
        """
        if self.conv.state != "submitting":
            self.engine.prompt(self)

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> None:
        self.out.append(OutMessage(text=text, buttons=buttons, rtl=self.t.rtl))

    def withdrawable(self) -> list[dict[str, Any]]:
        """The client's sent cases that they may still withdraw (`WITHDRAWABLE`)."""
        return [c for c in self.data.get("cases", []) if c["status"] in WITHDRAWABLE]
