"""How many actions each main path takes, counted from /start (issue 14).

Run `python -m tests.flows.step_counts` for the line to copy into the README. /start counts as 0;
the language choice, each button and each typed answer count as one action.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flows.engine import Engine
from flows.i18n import load_catalogs
from flows.model import Choice, Conversation, Event, Start, StepResult, SubmitCase, Text
from flows.procedure import load_procedure

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)

# name -> (the actions, the most the path may take)
PATHS: dict[str, tuple[list[Event], int]] = {
    # 000 Schema B step 2, a woman as confidant (001 art. 5).
    "confidant request": ([
        Choice("lang_en"), Choice("aggression"), Choice("talk_not_tried"), Choice("pref_female"),
        Text("Olena"), Choice("contact_chat"), Choice("skip"), Choice("confirm"),
    ], 8),
    # 000 Schema A step 3 with every field of 001 art. 12.
    "formal complaint": ([
        Choice("lang_en"), Choice("help"), Choice("skip_to_complaint"), Text("Sara Haddad"),
        Text("Jan de Vries"), Text("My volunteer did not help me."), Text("10-11-2026"),
        Choice("tried_nothing"), Choice("contact_chat"), Choice("confirm"),
    ], 11),
    # 000 Schema A step 2: the chair of the committee.
    "mediation request": ([
        Choice("lang_en"), Choice("conflict"), Choice("talk_not_helped"), Choice("request_yes"),
        Text("Piet Jansen"), Choice("contact_chat"), Text("We disagree."), Choice("confirm"),
    ], 8),
}


def walk(actions: list[Event]) -> StepResult:
    """Drive a fresh engine from /start through the actions; the last must submit."""
    engine = Engine(load_procedure(), load_catalogs(), organisation="Test")
    result = engine.step(Conversation(), Start(), NOW)
    for action in actions:
        result = engine.step(result.conversation, action, NOW)
    return result


def readme_line() -> str:
    return "; ".join(f"{name}: {len(actions)} actions" for name, (actions, _) in PATHS.items())


def submits(result: StepResult) -> bool:
    return any(isinstance(effect, SubmitCase) for effect in result.effects)


if __name__ == "__main__":
    print(readme_line())
