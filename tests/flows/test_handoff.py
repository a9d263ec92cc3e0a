"""The confidant handoff's rules (flows/handoff.py): the client's waiting notice."""

from __future__ import annotations

import pytest

from flows.handoff import Handoff, Rules
from flows.i18n import load_catalogs

RULES = Rules(load_catalogs())


def waiting_notice(language: str, preference: str, minutes: int) -> str:
    h = Handoff(id=1, status="offered", preference=preference, pseudonym="53QX",
                client_language=language, offered_to=(("telegram", "501"),))
    [notice] = RULES.offer(h, minutes).to_client
    text = getattr(notice, "text", "")
    return str(text).split("\n")[0]


@pytest.mark.parametrize(("language", "preference", "minutes", "ending"), [
    ("nl", "none", 1, "Dit kan tot 1 minuut duren."),
    ("nl", "female", 30, "Dit kan tot 30 minuten duren."),
    ("en", "none", 1, "This can take up to 1 minute."),
    ("ar", "none", 5, "قد يستغرق ذلك حتى 5 دقائق."),
    ("ar", "male", 30, "قد يستغرق ذلك حتى 30 دقيقةً."),
    ("ar", "none", 100, "قد يستغرق ذلك حتى 100 دقيقة."),
    ("uk", "none", 21, "Це може тривати до 21 хв."),
])
def test_waiting_notice_counts_the_minutes_in_the_clients_language(
    language: str, preference: str, minutes: int, ending: str
) -> None:
    """The timeout is configurable, so the minutes take the plural form their number needs."""
    assert waiting_notice(language, preference, minutes).endswith(ending)
