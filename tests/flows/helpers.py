"""Helpers shared by the tests of the domain: drive an engine through a list of events."""

from __future__ import annotations

from datetime import UTC, datetime

from flows.engine import Engine
from flows.model import Conversation, Event, StepResult

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def run(
    engine: Engine, events: list[Event], conv: Conversation | None = None, now: datetime = NOW
) -> StepResult:
    """Apply the events one by one, from `conv` (or a new conversation), all at `now`."""
    result = StepResult(conv or Conversation(), ())
    for event in events:
        result = engine.step(result.conversation, event, now)
    return result
