"""Client-facing words that are shared by several prompts: labels of buttons, kinds, fields, statuses.

Each is marked with `N_` so `pybabel extract` finds it; translate with `t._(LABELS[...])` at use.
"""

from __future__ import annotations

from flows.i18n import N_

LANGUAGE_NAMES: dict[str, str] = {
    # Shown as they are, never translated (GLOSSARY.md: the picker).
    "nl": "Nederlands",
    "uk": "Українська",
    "ar": "العربية",
    "en": "English",
}

TRIAGE = {
    "dissatisfied": N_("Not happy with help"),
    "behaviour": N_("Unwanted behaviour"),
    "unsure": N_("I am not sure"),
}

# On the first question a category stands beside the other routes: say what it is part of.
TRIAGE_CATEGORY = {
    "other": N_("Other unwanted behaviour"),
}

CATEGORY = {
    "help": N_("Help was not good"),
    "conflict": N_("A disagreement"),
    "discrimination": N_("Discrimination"),
    "bullying": N_("Bullying"),
    "aggression": N_("Aggression"),
    "sexual_harassment": N_("Sexual harassment"),
    "other": N_("Something else"),
    "unsure": N_("Not sure yet"),
}

KIND = {
    "complaint": N_("complaint"),
    "mediation_request": N_("request for mediation"),
    "confidant_request": N_("request for a confidant"),
    "report": N_("report (registration only)"),
    "signal": N_("signal"),
}

# A kind at the start of a button label ("Complaint of 3 November 2026").
KIND_TITLE = {
    "complaint": N_("Complaint"),
    "mediation_request": N_("Request for mediation"),
    "confidant_request": N_("Request for a confidant"),
    "report": N_("Report (registration only)"),
}

STATUS = {
    "received": N_("received"),
    "acknowledged": N_("confirmed by the committee"),
    "in_mediation": N_("in mediation"),
    "with_committee": N_("with the committee"),
    "decided": N_("decided"),
    "board_responded": N_("board responded"),
    "closed": N_("closed"),
    "withdrawn": N_("withdrawn"),
    "lapsed": N_("lapsed"),
}

PREFERENCE = {
    "female": N_("a woman"),
    "male": N_("a man"),
    "none": N_("no preference"),
}

CONTACT = {
    "chat": N_("Here in this chat"),
    "phone": N_("By phone"),
    "email": N_("By e-mail"),
}

FIELD = {
    "who": N_("Complaint for"),
    "name": N_("Name"),
    "name_or_anonymous": N_("Name"),
    "representative_name": N_("Your name"),
    "representative_relation": N_("Your relation"),
    "staff": N_("Who it is about"),
    "description": N_("What happened"),
    "description_optional": N_("What it is about"),
    "when": N_("When"),
    "tried": N_("What you tried"),
    "contact": N_("Contact"),
    "consent": N_("Consent"),
}

SUMMARY = {
    "kind": N_("Kind"),
    "confidant": N_("Confidant"),
    # Issue 14.3: "file" is the client's dossier ("your file"); what they send is an attachment.
    "files": N_("Photos or documents"),
}

# What the client is told after sending a file, by its kind (issue 14.3: never "your file").
ADDED = {
    "photo": N_("We added your photo."),
    "document": N_("We added your document."),
    "voice": N_("We added your voice message."),
    "video": N_("We added your video."),
}

WHO = {
    "self": N_("For myself"),
    "representative": N_("For someone else"),
    "anonymous": N_("I stay anonymous"),
}

# Buttons that work at every moment, on top of the procedure.
GLOBAL_ACTIONS = {
    "help": N_("Help"),
    "language": N_("Language"),
    "dossier": N_("My file"),
    "withdraw": N_("Withdraw"),
    "erase": N_("Erase my data"),
    "restart": N_("Start again"),
    "new": N_("New complaint"),
}
