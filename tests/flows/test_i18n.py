"""The catalogs: complete in four languages, placeholders intact, plural rules right, .pot fresh."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from flows.i18n import FSI, PDI, default_locales_dir, load_catalogs
from flows.model import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
LOCALES = default_locales_dir()
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
COUNTS = {"{count}", "{minutes}"}
# CLDR plural rules as gettext expressions (Babel's own Arabic header swaps two forms: python-babel#816).
PLURAL_FORMS = {
    "nl": "nplurals=2; plural=(n != 1);",
    "en": "nplurals=2; plural=(n != 1);",
    "uk": "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);",
    "ar": "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
    "n%100>=11 ? 4 : 5);",
}


def catalog(lang: str) -> Catalog:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh)


def template() -> Catalog:
    with (LOCALES / "messages.pot").open("rb") as fh:
        return read_po(fh)


def keys(cat: Catalog) -> set[tuple[object, str | None]]:
    return {(m.id, m.context) for m in cat if m.id}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_translated(lang: str) -> None:
    """Every message of the template has a non-empty, non-fuzzy translation in this language."""
    cat = catalog(lang)
    assert keys(cat) == keys(template())
    missing = [m.id for m in cat if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple)
                                                                    else (m.string,)))]
    assert missing == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_match(lang: str) -> None:
    """Each translation uses exactly the placeholders of its message id (no missing, no extra)."""
    wrong = []
    for m in catalog(lang):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for form, s in enumerate(strings):
            found = set(PLACEHOLDER.findall(s))
            # Arabic says "one day" and "two days" (the dual) without a numeral (issue 14.7):
            # its forms for 1 and 2 may leave out the count, and nothing else.
            if lang == "ar" and len(strings) > 1 and form in (1, 2):
                found |= expected & COUNTS
            if found != expected:
                wrong.append((ids[0][:40], s[:40]))
    assert wrong == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_forms_follow_cldr(lang: str) -> None:
    """The Plural-Forms header is CLDR's, and every plural message has that many forms."""
    cat = catalog(lang)
    assert cat.plural_forms == PLURAL_FORMS[lang]
    for m in cat:
        if m.pluralizable:
            assert len(m.string) == cat.num_plurals


def test_arabic_and_ukrainian_plurals_pick_the_right_form() -> None:
    """Arabic has six plural forms and Ukrainian three, chosen by CLDR's rules."""
    translations = load_catalogs()
    ar, uk = catalog("ar"), catalog("uk")
    chosen = "This happened more than {count} month ago. The committee"
    [ar_msg] = [m for m in ar if m.pluralizable and m.id[0].startswith(chosen)]
    [uk_msg] = [m for m in uk if m.pluralizable and m.id[0].startswith(chosen)]
    singular, plural = ar_msg.id
    pick = translations.get("ar").ngettext
    expected_ar = {0: 0, 1: 1, 2: 2, 3: 3, 10: 3, 11: 4, 99: 4, 100: 5, 102: 5, 103: 3, 111: 4}
    for n, form in expected_ar.items():
        assert pick(singular, plural, n) == ar_msg.string[form], n
    expected_uk = {1: 0, 21: 0, 2: 1, 4: 1, 22: 1, 5: 2, 11: 2, 12: 2, 14: 2, 25: 2, 0: 2}
    for n, form in expected_uk.items():
        assert translations.get("uk").ngettext(singular, plural, n) == uk_msg.string[form], n


def test_pot_is_not_stale(tmp_path: Path) -> None:
    """The .pot holds exactly the messages the code has (run `pybabel extract` after changing texts)."""
    out = tmp_path / "fresh.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "N_",
         "--no-location", "--sort-output", "-o", str(out), "."],
        cwd=ROOT, check=True, capture_output=True,
    )
    with out.open("rb") as fh:
        fresh = read_po(fh)
    assert keys(fresh) == keys(template())


def test_arabic_ltr_tokens_are_isolated() -> None:
    """In Arabic, references, dates and numbers are wrapped in isolates; in other languages they are not."""
    catalogs = load_catalogs()
    ar, en = catalogs.get("ar"), catalogs.get("en")
    assert ar.ltr("KW-2026-000123") == f"{FSI}KW-2026-000123{PDI}"
    assert en.ltr("KW-2026-000123") == "KW-2026-000123"
    assert ar.date(date(2026, 11, 29)).startswith(FSI) and ar.rtl and not en.rtl


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("nl", "29 november 2026"), ("en", "29 November 2026"), ("uk", "29 листопада 2026")],
)
def test_dates_per_locale(lang: str, expected: str) -> None:
    """Dates are written the way each language writes them (Babel, CLDR)."""
    assert load_catalogs().get(lang).date(date(2026, 11, 29)) == expected


def test_no_fstrings_inside_gettext() -> None:
    """Messages are formatted after translation: `_("... {x}").format(x=...)`, never `_(f"...")`."""
    offenders = []
    for path in [*ROOT.glob("flows/*.py"), *ROOT.glob("bot/*.py")]:
        text = path.read_text(encoding="utf-8")
        if re.search(r"(?:\b_|gettext|pgettext)\(\s*f[\"']", text):
            offenders.append(path.name)
    assert offenders == []
