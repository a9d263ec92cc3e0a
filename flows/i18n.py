"""Translations: gettext catalogs per language, read once at start-up, plus locale-aware formatting.

Catalogs live in `locales/<lang>/LC_MESSAGES/messages.po`. They are compiled in memory when the
composition root calls `load_catalogs`, so there is no `.mo` file to go stale. Message ids are English.
Use `t._("Hello, {name}").format(name=...)`: never an f-string inside `_()`.
"""

from __future__ import annotations

import gettext
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from flows.model import LANGUAGES, RTL_LANGUAGES

# Unicode isolates (GLOSSARY.md): wrap left-to-right tokens inside right-to-left text.
FSI = "\u2068"
PDI = "\u2069"
# Bidi embedding and override characters that a client's text could use to reorder our text.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_COMMAND = re.compile(r"(?<![\w/])/[a-z]+\b")
# Clients live in the Netherlands: English dates as in Europe ("29 November 2026").
DATE_LOCALES = {"en": "en_GB"}
# Ukrainian long dates end in "р." ("5 грудня 2026 р."), and a sentence that ends with a date then
# ends in "р..". Without the abbreviation the date reads the same and keeps one full stop.
DATE_FORMATS = {"uk": "d MMMM y"}


def N_(message: str) -> str:
    """Mark a string for extraction where it is defined; translate it later with `t._(...)`."""
    return message


@dataclass(frozen=True)
class Translator:
    """Everything language-specific for one conversation: words, dates, text direction."""

    language: str
    translations: gettext.NullTranslations

    @property
    def rtl(self) -> bool:
        return self.language in RTL_LANGUAGES

    def _(self, message: str) -> str:
        return self._direct(self.translations.gettext(message))

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._direct(self.translations.ngettext(singular, plural, n))

    def _direct(self, text: str) -> str:
        """In RTL text, keep commands such as /help reading left to right ("help/" otherwise)."""
        return _COMMAND.sub(lambda m: f"{FSI}{m.group(0)}{PDI}", text) if self.rtl else text

    def pgettext(self, context: str, message: str) -> str:
        return self.translations.pgettext(context, message)

    def date(self, value: date | datetime) -> str:
        """A date written the way the client's language writes it, e.g. `3 december 2026`."""
        locale = Locale.parse(DATE_LOCALES.get(self.language, self.language))
        pattern = DATE_FORMATS.get(self.language, "long")
        return self.ltr(format_date(value, format=pattern, locale=locale))

    def ltr(self, token: str) -> str:
        """Keep a left-to-right token (reference, e-mail, phone, date) in place in RTL text."""
        return f"{FSI}{token}{PDI}" if self.rtl else token

    def quote(self, user_text: str) -> str:
        """Show the client's own text inside ours without letting its bidi controls leak out."""
        return f"{FSI}{user_text}{PDI}"


class Catalogs:
    """The four translators, built once and shared by every conversation."""

    def __init__(self, translators: dict[str, Translator]) -> None:
        self._translators = translators

    def get(self, language: str | None) -> Translator:
        return self._translators.get(language or "en") or self._translators["en"]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._translators)


def default_locales_dir() -> Path:
    """The catalogs shipped with the package (the `locales` directory at the project root)."""
    import locales

    return Path(locales.__file__).parent


def compile_po(po_path: Path) -> gettext.GNUTranslations:
    """Read a `.po` file and compile it in memory into gettext translations."""
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def load_catalogs(locales_dir: Path | None = None) -> Catalogs:
    """Compile every language's catalog; called once by the composition root."""
    root = locales_dir or default_locales_dir()
    translators: dict[str, Translator] = {}
    for lang in LANGUAGES:
        po = root / lang / "LC_MESSAGES" / "messages.po"
        translations: gettext.NullTranslations = (
            compile_po(po) if po.exists() else gettext.NullTranslations()
        )
        translators[lang] = Translator(lang, translations)
    return Catalogs(translators)
