"""What the client is told about their own data: the receipt when a case is registered, and their file.

`receipt` is the answer to a registered case (reference number, what happens next and by when);
`file_text` shows everything stored about the client (/dossier): answers not sent yet, and each sent
case in their own words, with the messages about it and kept chats with a confidant. The client's
answers are listed by `answer_lines`, which the summary (`flows.render`) uses too. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flows import rules
from flows.forms import Forms
from flows.handoff import file_marker
from flows.i18n import Translator
from flows.procedure import Procedure
from flows.texts import (
    CONFIDANT_EXCEPTION,
    CONTACT,
    FIELD,
    KIND,
    LANGUAGE_NAMES,
    PREFERENCE,
    STATUS,
    WHO,
)
from flows.turn import Turn


def answer_lines(turn: Turn, forms: Forms, answers: dict[str, Any]) -> list[str]:
    """The client's answers, labelled: in the summary, and in their file while not yet sent."""
    t = turn.t
    lines = []
    for field_id in forms.current(turn).fields if turn.data.get("form") else answers:
        if field_id not in answers or field_id == "consent":
            continue
        value = answers[field_id]
        if field_id == "who":
            shown = t._(WHO[value])
        elif field_id == "contact":
            shown = t._(CONTACT[str(value["method"])])
            if value.get("value"):
                shown += ": " + t.ltr(value["value"])
        elif value is None or value == "":
            shown = "—"
        else:
            shown = t.quote(str(value))
        lines.append(f"• {t._(FIELD[field_id])}: {shown}")
    return lines


def document_lines(t: Translator, doc: dict[str, Any]) -> list[str]:
    """A sent case as the client sees it in their file: their own words, labelled."""
    lines = []
    complainant = doc.get("complainant") or {}
    if complainant.get("name"):
        lines.append(f"• {t._(FIELD['name'])}: {t.quote(complainant['name'])}")
    rep = doc.get("representative")
    if rep:
        lines.append(f"• {t._(FIELD['representative_name'])}: {t.quote(str(rep['name']))}")
    for key, label in (("staff_involved", "staff"), ("description", "description")):
        if doc.get(key):
            lines.append(f"• {t._(FIELD[label])}: {t.quote(str(doc[key]))}")
    if doc.get("incident_dates"):
        lines.append(f"• {t._(FIELD['when'])}: {t.quote(doc['incident_dates']['text'])}")
    contact = complainant.get("contact") or {}
    if contact.get("method"):
        shown = t._(CONTACT[str(contact["method"])])
        if contact.get("value"):
            shown += ": " + t.ltr(contact["value"])
        lines.append(f"• {t._(FIELD['contact'])}: {shown}")
    # Chats with a confidant that the client chose to keep (issue 3), word for word.
    for transcript in doc.get("confidant_conversations") or []:
        if not transcript:
            continue
        started = datetime.fromisoformat(str(transcript[0]["at"]))
        lines.append(t._("Your conversation with the confidant on {date}:").format(
            date=t.date(started)))
        for line in transcript:
            who = t._("You") if line.get("from") == "client" else t._("Your confidant")
            lines.append(f"– {who}: {transcript_text(t, line)}")
    return lines


def transcript_text(t: Translator, line: dict[str, Any]) -> str:
    kind = line.get("kind")
    if kind == "text" and line.get("text"):
        return t.quote(str(line["text"]))
    if kind == "shared":
        return t._("(name shared)")
    return file_marker(t, str(kind))


def file_text(turn: Turn, forms: Forms, cases: Sequence[dict[str, Any]],
              organisation: str | None = None) -> str:
    """Everything stored about the client (/dossier): draft answers, and each case with its messages.

    `organisation`: the name of the organisation chosen, where the deployment serves several.
    """
    t = turn.t
    lines = [t._("Everything we stored about you:")]
    if organisation:
        lines.append(t._("Organisation: {name}").format(name=organisation))
        lines.append(t._("To choose another organisation, send /organisation."))
    if turn.conv.language in LANGUAGE_NAMES:
        # Issue 14.9: only a language the client chose is stored; after /erase there is none.
        lines.append(
            t._("Language: {language}").format(language=LANGUAGE_NAMES[turn.conv.language])
        )
    answers = turn.data.get("answers", {})
    if answers:
        lines.append("")
        lines.append(t._("Answers you did not send yet:"))
        lines.extend(answer_lines(turn, forms, answers))
    if not cases:
        lines.append("")
        lines.append(t._("You have not sent any complaint or request."))
    for case in cases:
        lines.append("")
        lines.append(
            t._("{reference}: {kind}, {status}, sent on {date}").format(
                reference=t.ltr(case["reference"]),
                kind=t._(KIND.get(case["kind"], case["kind"])),
                status=t._(STATUS.get(case["status"], case["status"])),
                date=t.date(datetime.fromisoformat(case["created_at"])),
            )
        )
        payload = case.get("payload")
        if payload:
            lines.extend(document_lines(t, payload))
        else:
            lines.append(t._("(The content of this case was erased.)"))
        if case.get("messages"):
            lines.append(t._("Messages about this case:"))
        for message in case.get("messages") or []:
            who = t._("You") if message["from"] == "client" else t._("The organisation")
            lines.append("– " + t._("{date}, {who}: {text}").format(
                date=t.date(datetime.fromisoformat(message["at"])), who=who,
                text=t.quote(message["text"])))
    return "\n".join(lines)


def receipt(t: Translator, procedure: Procedure, kind: str, reference: str, created: datetime,
            pending: dict[str, Any]) -> str:
    """What the client is told once their case is registered: reference, what happens next."""
    due = rules.deadlines(created, procedure)
    ref = t.ltr(reference)
    form = procedure.forms.get(str(pending.get("form") or ""))
    receiver = form.receiver if form else ""
    if kind == "signal":
        # 002 §2.3: solved in the talk, so not a complaint; 003 §5: registered all the same.
        text = t._(
            "We noted that talking helped, without your name. It is not registered as a "
            "complaint. The organisation learns from it.\n"
            "Your reference number is {reference}."
        ).format(reference=ref)
    elif kind == "complaint" and receiver == "manager":
        # 002 §4.2: the manager talks with the client, then mails the main points and agreements.
        text = t._(
            "Thank you. We sent your complaint to the organisation.\n"
            "Your reference number is {reference}.\n\n"
            "What happens now:\n"
            "• The manager of the employee contacts you to talk about your complaint. The "
            "employee is there too, unless you or the employee do not want that.\n"
            "• After the talk, the manager sends you the main points and agreements by e-mail.\n"
            "• Not solved? Then you can take your complaint further."
        ).format(reference=ref)
    elif kind == "confidant_request" and receiver == "confidant":
        # 004 step 2: one confidant; what they must pass on is the procedure's.
        text = t._(
            "Thank you. We sent your request to the confidant.\n"
            "Your reference number is {reference}.\n\n"
            "What happens now:\n"
            "• The confidant contacts you in the way you chose."
        ).format(reference=ref)
        text += "".join("\n• " + line for line in confidant_exception(t, procedure))
    elif kind == "complaint":
        text = t._(
            "Thank you. We sent your complaint to the complaints committee.\n"
            "Your reference number is {reference}.\n\n"
            "What happens now:\n"
            "• The committee confirms that it got your complaint. This happens within one "
            "week, before {acknowledge}.\n"
            "• The committee listens to you and to the other side.\n"
            "• You get the decision within 4 to 6 weeks, at the latest on {decision}."
        ).format(reference=ref, acknowledge=t.date(due.get("acknowledge", created.date())),
                 decision=t.date(due.get("decision_latest", created.date())))
    elif kind == "mediation_request":
        text = t._(
            "Thank you. We sent your request for mediation to the chair of the complaints "
            "committee.\nYour reference number is {reference}.\n\n"
            "What happens now:\n"
            "• The chair contacts you and the other person.\n"
            "• Mediation ends within 6 weeks, at the latest on {report}."
        ).format(reference=ref, report=t.date(due.get("mediation_report", created.date())))
    elif kind == "confidant_request":
        preference = pending.get("preference") or "none"
        text = t._(
            "Thank you. We sent your request to the confidants. You asked for: {preference}.\n"
            "Your reference number is {reference}.\n\n"
            "What happens now:\n"
            "• A confidant contacts you in the way you chose.\n"
            "• The confidant is on your side."
        ).format(reference=ref, preference=t._(PREFERENCE[preference]))
        # 001 art. 5.2: never "shares nothing" without the one exception the rules make.
        text += "".join("\n• " + line for line in confidant_exception(t, procedure))
    else:
        text = t._(
            "Thank you. We registered your report.\n"
            "Your reference number is {reference}.\n\n"
            "A report is not handled as a complaint. The organisation uses it to improve "
            "its work."
        ).format(reference=ref)
    if kind == "complaint" and procedure.lapse_days:
        text += "\n" + lapse_line(t, procedure.lapse_days)
    text += "\n\n" + t._(
        # Issue 14.3: "withdraw it" after "your file" read as withdrawing the file.
        "You can always see your file (/dossier), withdraw your complaint or request "
        "(/withdraw) or erase your data (/erase)."
    )
    return text


def lapse_line(t: Translator, days: int) -> str:
    """002 §4.1: a complaint is not handled further when the client cannot be reached for this
    long. Said in months when the days are whole months (61: two), else in days."""
    months = round(days / 30.5)
    if months and abs(days - months * 30.5) <= 1:
        return "• " + t.ngettext(
            "Can we not reach you for {count} month or longer? Then your complaint is not "
            "handled further.",
            "Can we not reach you for {count} months or longer? Then your complaint is not "
            "handled further.", months).format(count=months)
    return "• " + t.ngettext(
        "Can we not reach you for {count} day or longer? Then your complaint is not handled "
        "further.",
        "Can we not reach you for {count} days or longer? Then your complaint is not handled "
        "further.", days).format(count=days)


def confidant_exception(t: Translator, procedure: Procedure) -> list[str]:
    """What a confidant must pass on, from the procedure (001 art. 5.2: a possible crime, to the
    board; 004 step 2: danger, talked about together); empty when it has no confidant."""
    exception = procedure.handling.confidant_exception
    return [t._(CONFIDANT_EXCEPTION[exception])] if exception else []
