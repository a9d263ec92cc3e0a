"""Issue 14 B: words and punctuation the client sees, in all four languages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.dossier import receipt
from flows.i18n import load_catalogs
from flows.model import LANGUAGES
from flows.procedure import load_procedure

CREATED = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", ["complaint", "mediation_request", "confidant_request", "report"])
def test_no_double_full_stop_after_a_date(lang: str, kind: str) -> None:
    """A sentence ending in a date ends in one full stop: no "р.." (uk) nor ".." in any language."""
    t = load_catalogs().get(lang)
    text = receipt(t, load_procedure(), kind, "KW-2026-000001", CREATED, {"preference": "female"})
    plain = text.replace("\u2068", "").replace("\u2069", "")
    assert "р.." not in plain and ".." not in plain
