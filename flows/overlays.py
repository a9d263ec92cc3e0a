"""The modal dialogs on top of the procedure: choose language, start again, erase, withdraw.

An overlay is kept in `data["overlay"]` and never changes the machine's state, so it can be opened
at any moment without losing progress. `Overlays.choice` handles a button of an open overlay; the
engine moves the machine through the `Driver` it passes in. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from flows.forms import clear_draft
from flows.i18n import Catalogs
from flows.model import EraseDossier, WithdrawCase
from flows.turn import Driver, Turn


class Overlays:
    """The overlays of every procedure; `driver` (the engine) fires the machine and asks again."""

    def __init__(self, catalogs: Catalogs, driver: Driver) -> None:
        self.catalogs = catalogs
        self.driver = driver

    def choice(self, turn: Turn, overlay: dict[str, Any], button: str) -> None:
        """A button of the open overlay; the overlay is closed, or replaced by the next one."""
        t = turn.t
        kind = overlay["kind"]
        turn.data.pop("overlay")
        if kind == "language":
            turn.conv.language = button.removeprefix("lang_")
            turn.t = self.catalogs.get(turn.conv.language)
            self.driver.prompt(turn)
        elif button == "no":
            turn.say(t._("OK, we go on."))
            self.driver.prompt(turn)
        elif kind == "restart":
            self.restart(turn)
        elif kind == "erase":
            turn.effects.append(EraseDossier())
            turn.say(
                t._(
                    "All your data is erased. If we had already sent something, we asked the "
                    "receiver to erase it too. You can start again at any time with /start."
                )
            )
            # Issue 14.9: nothing about the client is kept, not even their choice of language. Only
            # the messenger's language hint stays, so the next question is asked in it.
            hint = turn.data.get("hint")
            turn.conv.state = "language"
            turn.conv.language = None
            turn.conv.data = {"hint": hint} if hint else {}
        elif kind == "withdraw":
            reference = button.removeprefix("wd_")
            turn.data["overlay"] = {"kind": "withdraw_confirm", "reference": reference}
            self.driver.prompt(turn)
        elif kind == "withdraw_confirm":
            reference = overlay["reference"]
            for case in turn.data.get("cases", []):
                if case["reference"] == reference:
                    case["status"] = "withdrawn"
            turn.effects.append(WithdrawCase(reference))
            turn.say(
                t._("{reference} is withdrawn. We passed this on. It stays registered.")
                .format(reference=t.ltr(reference))
            )
            self.driver.prompt(turn)

    def restart(self, turn: Turn) -> None:
        """Start again at the first question: the draft and the choices so far are dropped."""
        clear_draft(turn.data)
        for key in ("schema", "triage", "category", "step", "talked", "preference",
                    "emergency_shown", "exclusion"):
            turn.data.pop(key, None)
        turn.data.pop("overlay", None)
        self.driver.fire(turn, "reset", "triage")
