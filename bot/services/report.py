"""The anonymised yearly report of `001` art. 18, as HTML and PDF, in Dutch, with charts.

It is built from the register's anonymised rows only (`bot.services.register.anonymised_rows`), and every
count below 5 is published as "<5" (`flows.register.suppress_breakdown`), so nobody can be singled
out in a small organisation. A year without cases says so in words (`001` art. 18.1: "Als bij een
van hen geen klachten kenbaar zijn gemaakt, doen zij ook hiervan mededeling").
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from flows import register as rules

KIND_LABELS = {
    "complaint": "Klachten",
    "mediation_request": "Verzoeken om bemiddeling",
    "confidant_request": "Verzoeken om een vertrouwenspersoon",
    "report": "Meldingen (alleen registratie, ook anoniem)",
    "signal": "Signalen (o.a. ter plekke opgelost)",
}
SCHEMA_LABELS = {"A": "Schema A: ontevredenheid of conflict", "B": "Schema B: ongewenst gedrag",
                 None: "Geen schema"}
LANGUAGE_LABELS = {"nl": "Nederlands", "uk": "Oekraïens", "ar": "Arabisch", "en": "Engels"}
CHANNEL_LABELS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "terminal": "Terminal",
                  "in_person": "Persoonlijk", "phone": "Telefoon", "mail": "E-mail"}
CATEGORY_LABELS = {
    "help": "Niet goed geholpen", "conflict": "Conflict met begeleider",
    "discrimination": "Discriminatie", "bullying": "Pesten", "aggression": "Agressie",
    "sexual_harassment": "Seksuele intimidatie", "other": "Anders", "unsure": "Weet niet",
    None: "Geen categorie",
}
OUTCOME_LABELS = {"founded": "Gegrond", "partly_founded": "Gedeeltelijk gegrond",
                  "unfounded": "Ongegrond"}
FOLLOW_UP_LABELS = {"yes": "Ja, opgelost", "partly": "Gedeeltelijk", "no": "Nee, niet opgelost",
                    None: "Nog geen antwoord"}
STATUS_LABELS = {k: v[0].upper() + v[1:] for k, v in rules.STATUS_NL.items()}

EXPLAIN_SUPPRESSION = (
    "Aantallen van 1 tot en met 4 staan er als '<5', zodat niemand herkenbaar is. "
    "'≥5' is een aantal van 5 of meer dat ook verborgen is, zodat een '<5' niet uit het totaal "
    "is af te leiden."
)


@dataclass(frozen=True)
class Breakdown:
    title: str
    counts: dict[str, int]  # exact, never published as such
    shown: dict[str, str]  # what is published


@dataclass(frozen=True)
class DeadlineFigure:
    title: str
    cases: int
    share_met: str  # e.g. "83%" or "<5 zaken"
    median: str  # e.g. "5 dagen" or "-"


@dataclass(frozen=True)
class YearReport:
    year: int
    organisation: str
    generated: date
    total: int
    breakdowns: tuple[Breakdown, ...]
    deadlines: tuple[DeadlineFigure, ...]

    @property
    def total_shown(self) -> str:
        return rules.suppress(self.total)

    @property
    def empty(self) -> bool:
        return self.total == 0


def _breakdown(title: str, rows: Sequence[Mapping[str, object]], key: str,
               labels: Mapping[Any, str]) -> Breakdown:
    counts = Counter(labels.get(row[key], str(row[key])) for row in rows)
    ordered = {label: counts[label] for label in dict.fromkeys(labels.values()) if counts[label]}
    for label, count in counts.items():
        ordered.setdefault(label, count)
    return Breakdown(title, ordered, rules.suppress_breakdown(ordered))


def _deadline(title: str, rows: Sequence[Mapping[str, object]], flag: str, days: str) -> DeadlineFigure:
    judged = [row[flag] for row in rows if row[flag] is not None]
    values = [int(v) for row in rows if isinstance(v := row[days], int)]
    if len(judged) < rules.SUPPRESS_BELOW:
        share = f"{rules.suppress(len(judged))} zaken" if judged else "geen zaken"
    else:
        share = f"{round(100 * sum(1 for j in judged if j) / len(judged))}%"
    median = rules.median_days(values)
    shown_median = "-" if median is None else f"{median:g} dagen"
    return DeadlineFigure(title, len(judged), share, shown_median)


def build_report(rows: Sequence[Mapping[str, object]], year: int, organisation: str,
                 deadline_days: Mapping[str, int], generated: date) -> YearReport:
    """The report's figures from the anonymised rows of cases registered in `year`."""
    breakdowns = [
        _breakdown("Soort", rows, "kind", KIND_LABELS),
        _breakdown("Schema", rows, "schema", SCHEMA_LABELS),
        _breakdown("Onderwerp", rows, "category", CATEGORY_LABELS),
        _breakdown("Taal van de cliënt", rows, "language", LANGUAGE_LABELS),
        _breakdown("Kanaal", rows, "channel", CHANNEL_LABELS),
        _breakdown("Stand aan het eind van de periode", rows, "status", STATUS_LABELS),
    ]
    decided = [r for r in rows if r["outcome"]]
    breakdowns.append(_breakdown("Uitspraak van de klachtencommissie", decided, "outcome",
                                 OUTCOME_LABELS))
    asked = [r for r in rows if r["kind"] in ("complaint", "mediation_request", "confidant_request")
             and r["status"] == "closed"]
    breakdowns.append(_breakdown("Nazorg: is het probleem echt opgelost? (003 §4)", asked,
                                 "follow_up", FOLLOW_UP_LABELS))
    ack_days = deadline_days.get("acknowledge", 7)
    decision_days = deadline_days.get("decision_latest", 42)
    deadlines = (
        _deadline(f"Ontvangst bevestigd binnen {ack_days} dagen (001 art. 14.1)", rows,
                  "acknowledged_on_time", "days_to_acknowledgement"),
        _deadline(f"Uitspraak binnen {decision_days} dagen (001 art. 15.1)", rows,
                  "decided_on_time", "days_to_decision"),
    )
    return YearReport(year, organisation, generated, len(rows),
                      tuple(b for b in breakdowns if b.counts), deadlines)


def intro_lines(report: YearReport) -> list[str]:
    if report.empty:
        return [
            f"In {report.year} zijn er geen klachten, verzoeken om bemiddeling, verzoeken om een "
            "vertrouwenspersoon, meldingen of signalen geregistreerd.",
            "Dit verslag vermeldt dat uitdrukkelijk, zoals artikel 18.1 van de klachtenregeling "
            "vraagt.",
        ]
    total = (f"{report.total} zaken" if report.total >= rules.SUPPRESS_BELOW
             else "minder dan 5 zaken")
    return [
        f"In {report.year} zijn {total} geregistreerd: klachten, verzoeken om bemiddeling of om "
        "een vertrouwenspersoon, meldingen en signalen (001 art. 17).",
        "Het verslag is geanonimiseerd: er staan geen namen, contactgegevens of teksten van "
        "cliënten in. " + EXPLAIN_SUPPRESSION,
    ]


# --- charts ----------------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42  # TrueType: the PDF's text can be searched and read
    matplotlib.rcParams["font.family"] = "DejaVu Sans"
    import matplotlib.pyplot as plt

    return plt


def _draw_breakdown(ax: Any, breakdown: Breakdown) -> None:
    labels = list(breakdown.counts)[::-1]
    exact = [breakdown.counts[k] if breakdown.shown[k] not in (rules.SMALL, rules.HIDDEN) else 0
             for k in labels]
    top = max([*exact, rules.SUPPRESS_BELOW])
    for y, label in enumerate(labels):
        shown = breakdown.shown[label]
        if shown in (rules.SMALL, rules.HIDDEN):
            # A hidden count has no true length: a hatched stub with its label, never a measure.
            ax.barh(y, top * 0.08, color="white", edgecolor="#7a8793", hatch="///")
            ax.text(top * 0.1, y, shown, va="center", fontsize=9, color="#333333")
        else:
            ax.barh(y, breakdown.counts[label], color="#2f6f9f")
            ax.text(breakdown.counts[label] + top * 0.02, y, shown, va="center", fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=8.5)
    ax.set_xlim(0, top * 1.25)
    ax.set_xticks([])
    ax.set_title(breakdown.title, fontsize=10.5, loc="left")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def chart_png(breakdown: Breakdown) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 0.45 * len(breakdown.counts) + 0.9), dpi=110)
    _draw_breakdown(ax, breakdown)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


# --- HTML ------------------------------------------------------------------------------------------

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 52rem; margin: 2rem auto;
       color: #1d2329; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.sub { color: #55606b; margin-top: 0; } table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { padding: .25rem .8rem .25rem 0; text-align: left; border-bottom: 1px solid #dde3e8; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } .note { color: #55606b; }
.empty { font-size: 1.15rem; background: #eef4f8; padding: 1rem; border-radius: .4rem; }
img { max-width: 100%; }
"""


def render_html(report: YearReport, *, charts: bool = True) -> str:
    e = html.escape
    parts = [
        "<!doctype html>", '<html lang="nl"><head><meta charset="utf-8">',
        f"<title>Jaarverslag klachten {report.year} - {e(report.organisation)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Jaarverslag klachten {report.year}</h1>",
        f'<p class="sub">{e(report.organisation)} · geanonimiseerd verslag volgens artikel 18 '
        f"van de klachtenregeling · gemaakt op {report.generated.strftime('%d-%m-%Y')}</p>",
    ]
    intro = intro_lines(report)
    if report.empty:
        parts.append(f'<p class="empty"><strong>{e(intro[0])}</strong></p><p>{e(intro[1])}</p>')
        parts.append("</body></html>")
        return "\n".join(parts)
    parts += [f"<p>{e(line)}</p>" for line in intro]
    parts.append(f'<p><strong>Totaal: {e(report.total_shown)}</strong></p>')
    parts.append("<h2>Termijnen</h2><table><tr><th>Termijn</th><th>Op tijd</th>"
                 "<th>Mediaan</th></tr>")
    for d in report.deadlines:
        parts.append(f'<tr><td>{e(d.title)}</td><td class="n">{e(d.share_met)}</td>'
                     f'<td class="n">{e(d.median)}</td></tr>')
    parts.append('</table><p class="note">Op tijd: het deel van de zaken waarvoor de termijn '
                 "gold en dat binnen de termijn werd afgehandeld. De mediaan wordt alleen "
                 "vermeld bij 5 of meer zaken.</p>")
    for b in report.breakdowns:
        parts.append(f"<h2>{e(b.title)}</h2><table>")
        for label, shown in b.shown.items():
            parts.append(f'<tr><td>{e(label)}</td><td class="n">{e(shown)}</td></tr>')
        parts.append("</table>")
        if charts:
            data = base64.b64encode(chart_png(b)).decode()
            parts.append(f'<img alt="Grafiek: {e(b.title)}" src="data:image/png;base64,{data}">')
    parts.append(f'<p class="note">{e(EXPLAIN_SUPPRESSION)}</p></body></html>')
    return "\n".join(parts)


# --- PDF (A4, matplotlib) ------------------------------------------------------------------------

A4 = (8.27, 11.69)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _header(fig: Any, report: YearReport, page: int) -> None:
    fig.text(0.08, 0.955, f"Jaarverslag klachten {report.year}", fontsize=20, weight="bold")
    fig.text(0.08, 0.933, f"{report.organisation} · artikel 18 klachtenregeling", fontsize=10,
             color="#55606b")
    fig.text(0.92, 0.03, f"pagina {page}", fontsize=8, ha="right", color="#55606b")
    fig.text(0.08, 0.03, f"Gemaakt op {report.generated.strftime('%d-%m-%Y')} door Klachtwijzer",
             fontsize=8, color="#55606b")


def render_pdf(report: YearReport, path: Path) -> int:
    """Write the PDF; returns its number of pages."""
    plt = _plt()
    from matplotlib.backends.backend_pdf import PdfPages

    pages = 0
    with PdfPages(path, metadata={"Title": f"Jaarverslag klachten {report.year}",
                                  "Author": report.organisation}) as pdf:
        fig = plt.figure(figsize=A4)
        pages += 1
        _header(fig, report, pages)
        y = 0.88
        intro = intro_lines(report)
        if report.empty:
            fig.text(0.08, y - 0.05, _wrap(intro[0], 62), fontsize=14, weight="bold", va="top")
            fig.text(0.08, y - 0.16, _wrap(intro[1], 80), fontsize=11, va="top")
            pdf.savefig(fig)
            plt.close(fig)
            return pages
        for line in intro:
            wrapped = _wrap(line, 88)
            fig.text(0.08, y, wrapped, fontsize=10.5, va="top")
            y -= 0.019 * (wrapped.count("\n") + 1) + 0.012
        fig.text(0.08, y, f"Totaal: {report.total_shown}", fontsize=13, weight="bold", va="top")
        y -= 0.045
        fig.text(0.08, y, "Termijnen", fontsize=13, weight="bold", va="top")
        y -= 0.032
        fig.text(0.60, y, "Op tijd", fontsize=9.5, color="#55606b", va="top")
        fig.text(0.76, y, "Mediaan", fontsize=9.5, color="#55606b", va="top")
        y -= 0.024
        for d in report.deadlines:
            fig.text(0.08, y, _wrap(d.title, 58), fontsize=10, va="top")
            fig.text(0.60, y, d.share_met, fontsize=10, va="top", weight="bold")
            fig.text(0.76, y, d.median, fontsize=10, va="top")
            y -= 0.03
        y -= 0.015
        # The tables: two columns of breakdowns with their published counts.
        columns = [0.08, 0.52]
        col_y = [y, y]
        for index, b in enumerate(report.breakdowns):
            col = 0 if col_y[0] >= col_y[1] else 1
            x, yy = columns[col], col_y[col]
            title = _wrap(b.title, 38)
            needed = 0.026 + 0.016 * (title.count("\n") + len(b.shown)) + 0.016
            if yy - needed < 0.06:
                continue  # the charts pages show every breakdown anyway
            fig.text(x, yy, title, fontsize=10.5, weight="bold", va="top")
            yy -= 0.026 + 0.016 * title.count("\n")
            for label, shown in b.shown.items():
                fig.text(x, yy, _wrap(label, 40), fontsize=9, va="top")
                fig.text(x + 0.38, yy, shown, fontsize=9, va="top", ha="right")
                yy -= 0.016 * (_wrap(label, 40).count("\n") + 1)
            col_y[col] = yy - 0.016
            del index
        pdf.savefig(fig)
        plt.close(fig)

        per_page = 4
        charts = list(report.breakdowns)
        for start in range(0, len(charts), per_page):
            fig = plt.figure(figsize=A4)
            pages += 1
            _header(fig, report, pages)
            chunk = charts[start : start + per_page]
            for i, b in enumerate(chunk):
                ax = fig.add_axes((0.36, 0.72 - i * 0.205, 0.56, 0.15))
                _draw_breakdown(ax, b)
            fig.text(0.08, 0.095, _wrap(EXPLAIN_SUPPRESSION + " Gearceerde staven: verborgen "
                                        "aantal, zonder lengte.", 105), fontsize=8,
                     color="#55606b", va="top")
            pdf.savefig(fig)
            plt.close(fig)
    return pages


def write_report(report: YearReport, directory: Path) -> tuple[Path, Path, int]:
    """Write `jaarverslag-<year>.html` and `.pdf` into `directory`; returns both paths and pages."""
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / f"jaarverslag-{report.year}.html"
    pdf_path = directory / f"jaarverslag-{report.year}.pdf"
    html_path.write_text(render_html(report), encoding="utf-8")
    pages = render_pdf(report, pdf_path)
    return html_path, pdf_path, pages
