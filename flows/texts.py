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
    "youth_care": N_("Youth care"),
    "nuisance": N_("Trouble from their work"),
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
    # 002 §3.2: someone who is directly troubled by the organisation's work, e.g. a neighbour.
    "affected": N_("I am troubled by their work"),
    # 002 §3.2: a group, with a representative named by the group.
    "group": N_("For a group"),
    "anonymous": N_("I stay anonymous"),
}

# The roles a talk step names, always after "talk with" (in Ukrainian: the instrumental case).
ROLE = {
    "volunteer": N_("the person it is about"),
    "coordinator": N_("their manager, the coordinator"),
    "employee": N_("the employee it is about"),
    "manager": N_("the manager of this employee"),
    "coach": N_("your coach"),
    "generalist": N_("your generalist at the municipality"),
}

# How a client may raise it at a talk step (004 step 1: a talk, WhatsApp or mail).
WAY = {
    "talk": N_("in a talk"),
    "whatsapp": N_("by WhatsApp"),
    "email": N_("by e-mail"),
    "phone": N_("by phone"),
}

# 002 §3.1: what the procedure does not handle (button), and where to go instead (referral).
EXCLUSION_LABEL = {
    "municipal_decision": N_("A decision of the municipality (Wmo or youth care)"),
    "own_procedure": N_("A service with its own complaint procedure"),
    "handled_before": N_("The same complaint was handled before"),
    "court": N_("The same complaint went to a court"),
    "damages": N_("I want money or a criminal case"),
}
EXCLUSION_REFERRAL = {
    "municipal_decision": N_(
        "The municipality decides about Wmo support and youth care, not the organisation. "
        "Do you disagree with the decision? Then you can object at the municipality. The "
        "letter with the decision says how."
    ),
    "own_procedure": N_(
        "This service has its own complaint procedure. Please make your complaint there. Ask "
        "the service how."
    ),
    "handled_before": N_(
        "A complaint that was already handled is not handled again here. Do you have a new "
        "problem? Then start again with a new complaint."
    ),
    "court": N_(
        "A complaint that went to a court is not handled here. The court decides about it."
    ),
    "damages": N_(
        "This procedure cannot give you money, and it cannot start a criminal case. For a "
        "crime, you can go to the police."
    ),
}

# What happens after an external step (002 §4.3, 004 step 4).
NEXT_TEXT = {
    "committee_own_rules": N_(
        "The committee has its own rules. You find them on the same website."
    ),
    "form_contact_two_working_days": N_(
        "There you fill in a form about yourself and your care provider, and you describe "
        "your complaint. They contact you within two working days. Together you look at how "
        "to handle your complaint."
    ),
}

# A note shown with a question (002 footnote 2).
NOTE = {
    "representative_limits": N_(
        "A mentor, administrator (bewindvoerder) or curator may only complain about their own "
        "task. For example: an administrator only about money matters."
    ),
}

# Who may read the client's answers, in a list after a colon ("... can read them: {readers}").
READER = {
    "committee": N_("the complaints committee"),
    "confidants": N_("a confidant"),
    "confidant": N_("the confidant"),
    "coordinator": N_("a coordinator"),
    "manager": N_("the manager of the employee"),
}
# The readers joined, by how many there are (a procedure names 1 to 3).
READER_LIST = {
    2: N_("{first} or {second}"),
    3: N_("{first}, {second} or {third}"),
}

# What a confidant must pass on, said wherever a confidant is promised (001 art. 5.2, 004 step 2).
CONFIDANT_EXCEPTION = {
    "crime_to_board": N_(
        "A confidant keeps what you say secret. There is one exception: a possible crime. The "
        "confidant must report that to the board of the organisation."
    ),
    "danger_together": N_(
        "The confidant keeps what you tell between the two of you. If you or someone else is in "
        "danger, the confidant talks with you about what to do."
    ),
}

# On the first question, what each route is for; shown when there is more than one route.
TRIAGE_HINT = {
    "dissatisfied": N_("The help was not good, or you disagree with your volunteer."),
    "behaviour": N_(
        "Unwanted behaviour: discrimination, bullying, aggression, sexual harassment or "
        "something else."
    ),
    "unsure": N_("Not sure? Then we take you to a confidant. A confidant is on your side."),
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
