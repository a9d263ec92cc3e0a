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


def _catalog(lang: str) -> list[str]:
    """Every translation of a catalog, plural forms included."""
    from babel.messages.pofile import read_po

    from flows.i18n import default_locales_dir

    with (default_locales_dir() / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        cat = read_po(fh)
    return [s for m in cat if m.id for s in (m.string if isinstance(m.string, tuple) else (m.string,))]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_receipt_withdraws_the_complaint_not_the_file(lang: str) -> None:
    """Issue 14.3: after "see your file" the receipt says withdraw your complaint or request."""
    t = load_catalogs().get(lang)
    text = receipt(t, load_procedure(), "complaint", "KW-2026-000001", CREATED, {})
    words = {"en": "withdraw your complaint or request", "nl": "uw klacht of verzoek intrekken",
             "uk": "відкликати свою скаргу чи запит", "ar": "سحب شكواك أو طلبك"}
    assert words[lang] in text and "withdraw it" not in text


def test_english_file_is_the_dossier_only() -> None:
    """Issue 14.3: in English, "file" is only the client's dossier; what they send is a photo or document."""
    for text in _catalog("en"):
        for sentence in text.replace("\n", " ").split(". "):
            lower = sentence.casefold()
            if "file" in lower:
                # "This file is too big ... a smaller file" is the channel's refusal (bot/services).
                assert any(ok in lower for ok in ("your file", "your own file", "my file", "this file",
                                                  "smaller file", "(a file)")), sentence


def test_registration_only_report_has_a_clear_word() -> None:
    """Issue 14.6: uk says "запис" (not "повідомлення") and ar "ملاحظة" (not the police word "بلاغ")."""
    assert not any("بلاغ" in s.replace("إبلاغ", "").replace("يبلّغ", "") for s in _catalog("ar"))
    t = load_catalogs()
    for lang, word in (("uk", "запис"), ("ar", "ملاحظة")):
        text = receipt(t.get(lang), load_procedure(), "report", "KW-2026-000001", CREATED, {})
        assert word in text
    assert not any("повідомлення (лише" in s or "як повідомлення" in s for s in _catalog("uk"))


def test_arabic_addresses_nobody_as_a_man() -> None:
    """Issue 14.7: no masculine-only address in Arabic (تريد، اكتب، اضغط، ستحصل، متصل، اسمه، أنهيتَ)."""
    masculine = ("تريد", "اكتب ", "اضغط ", "ستحصل", "تحصل على", "متصل", "اسمه", "أنهيتَ", "اختر ")
    offenders = [s for s in _catalog("ar") if any(word in s for word in masculine)]
    assert offenders == []


def test_arabic_dual_of_minutes() -> None:
    """Issue 14.7: two minutes is the dual "دقيقتين", not "2 دقيقة"."""
    ar = load_catalogs().get("ar")
    text = ar.ngettext("We are now looking for a confidant who can chat with you here. Please wait. "
                       "This can take up to {minutes} minute.",
                       "We are now looking for a confidant who can chat with you here. Please wait. "
                       "This can take up to {minutes} minutes.", 2).format(minutes=2)
    assert "دقيقتين" in text and "2" not in text and "(مستشار سرّي)" in text


def test_the_chair_is_named_the_same_everywhere() -> None:
    """Issue 14.8: the mediation is done by the chair of the complaints committee (000), no "mediator"."""
    assert not any("mediator" in s for s in _catalog("en"))
    assert not any("bemiddelaar" in s for s in _catalog("nl"))
    assert not any("посередник" in s for s in _catalog("uk"))
    assert not any("وسيط" in s for s in _catalog("ar"))
