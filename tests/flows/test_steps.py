"""Issue 14: the main paths take few actions, and consent is still given explicitly before sending."""

from __future__ import annotations

import pytest

from flows.model import Event, SubmitCase
from tests.flows.step_counts import PATHS, readme_line, submits, walk


@pytest.mark.parametrize(
    ("actions", "limit"),
    [pytest.param(actions, limit, id=f"{name}: {len(actions)} actions (at most {limit})")
     for name, (actions, limit) in PATHS.items()],
)
def test_path_is_short_and_ends_in_a_consented_submission(actions: list[Event], limit: int) -> None:
    """Each main path submits within its limit, and only on Send, which records the consent."""
    assert len(actions) <= limit
    before = walk(actions[:-1])
    assert before.conversation.state == "summary" and not submits(before)
    result = walk(actions)
    assert submits(result)
    [submit] = [e for e in result.effects if isinstance(e, SubmitCase)]
    assert submit.submission["consent"]["given"] is True


def test_readme_line_counts_every_path() -> None:
    """The README line names each path with its count (python -m tests.flows.step_counts)."""
    line = readme_line()
    print(line)
    for name, (actions, _) in PATHS.items():
        assert f"{name}: {len(actions)} actions" in line
