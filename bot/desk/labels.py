"""Words for the register's machine values in the staff member's language (through the catalogs)."""

from __future__ import annotations

from flows.i18n import N_

ROLES = {
    "secretary": N_("Secretary of the committee"),
    "confidant": N_("Confidant"),
    "coordinator": N_("Coordinator"),
    "administrator": N_("Administrator"),
}
STATUSES = {
    "received": N_("received"),
    "acknowledged": N_("receipt confirmed"),
    "in_mediation": N_("in mediation"),
    "with_committee": N_("with the complaints committee"),
    "decided": N_("decided"),
    "board_responded": N_("board has responded"),
    "closed": N_("closed"),
    "withdrawn": N_("withdrawn"),
    "lapsed": N_("lapsed (unreachable)"),
}
OUTCOMES = {
    "founded": N_("founded"),
    "partly_founded": N_("partly founded"),
    "unfounded": N_("unfounded"),
}
KINDS = {
    "complaint": N_("complaint"),
    "mediation_request": N_("request for mediation"),
    "confidant_request": N_("request for a confidant"),
    "report": N_("report"),
    "signal": N_("signal"),
}
DEADLINES = {
    "acknowledge": N_("confirm receipt (001 art. 14.1)"),
    "missing_information": N_("missing information from the client (001 art. 14.3)"),
    "inform_staff": N_("staff member informed (001 art. 14.4)"),
    "mediation_report": N_("mediation report (001 art. 4.4)"),
    "decision_preferred": N_("decision, preferably (001 art. 15.1)"),
    "decision_latest": N_("decision, at the latest (001 art. 15.1)"),
    "board_response": N_("board response (001 art. 16.1)"),
}
DEADLINE_STATES = {
    "met": N_("met"),
    "late": N_("late"),
    "overdue": N_("overdue"),
    "open": N_("open"),
    "cancelled": N_("cancelled"),
}
LANGUAGES = {"nl": "Nederlands", "en": "English", "uk": "Українська", "ar": "العربية"}

ALL = {"role": ROLES, "status": STATUSES, "outcome": OUTCOMES, "kind": KINDS,
       "deadline": DEADLINES, "state": DEADLINE_STATES}

EVENTS = {
    "status": N_("status"),
    "note": N_("note"),
    "deadline_met": N_("deadline met"),
    "info_requested": N_("information asked (2 weeks, 001 art. 14.3)"),
    "contacted": N_("contacted by phone or e-mail"),
    "attention_done": N_("follow-up dealt with"),
    "follow_up": N_("answer to the follow-up question"),
    "message": N_("message to the client"),
    "client_reply": N_("answer of the client"),
}
METHODS = {"phone": N_("by phone"), "email": N_("by e-mail"), "chat": N_("in the chat"),
           "none": N_("no phone or e-mail known")}
ANSWERS = {"yes": N_("yes, solved"), "partly": N_("partly"), "no": N_("no, not solved")}

# What a complaint or signal is about (flows/procedure.py CATEGORIES), as staff read it.
CATEGORIES = {
    "help": N_("not helped well"),
    "conflict": N_("conflict with a volunteer or staff member"),
    "discrimination": N_("discrimination"),
    "bullying": N_("bullying"),
    "aggression": N_("aggression"),
    "sexual_harassment": N_("sexual harassment"),
    "youth_care": N_("youth care"),
    "nuisance": N_("nuisance"),
    "other": N_("something else"),
    "unsure": N_("not sure"),
}
# How a case came in: the chat channels, and what staff enter by hand (`case add`, the signal form).
CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": N_("web chat"),
            "terminal": N_("terminal"), "in_person": N_("in person"), "phone": N_("by phone"),
            "mail": N_("by e-mail")}
ENTERED_CHANNELS = ("in_person", "phone", "mail")

ALL.update({"event": EVENTS, "method": METHODS, "answer": ANSWERS, "category": CATEGORIES,
            "channel": CHANNELS, "language": LANGUAGES})

# The audit log's actions as the desk shows them; others show as their code.
AUDIT = {
    "case_registered": N_("case received"),
    "case_added": N_("signal registered"),
    "case_noted": N_("note or fact recorded"),
    "case_withdrawn": N_("withdrawn by the client"),
    "client_replied": N_("the client answered"),
    "message_to_client": N_("message to the client"),
    "status_changed": N_("status changed"),
    "status_notified": N_("client told about the status"),
    "mail_sent": N_("mail sent"),
    "mail_failed": N_("mail refused"),
    "desk_case_opened": N_("case opened in the desk"),
    "desk_download": N_("downloaded"),
    "desk_forbidden": N_("refused: not allowed"),
    "desk_csrf_refused": N_("refused: expired form"),
    "desk_login": N_("logged in"),
    "desk_login_failed": N_("login failed"),
    "desk_login_throttled": N_("login refused: too many attempts"),
    "desk_locked": N_("account locked"),
    "desk_invited": N_("invited"),
    "desk_invitation_mailed": N_("invitation put in the outbox"),
    "desk_enrolled": N_("account set up"),
    "desk_second_factor_reset": N_("second factor reset"),
    "desk_sessions_ended": N_("logged out on every device"),
}
ALL["audit"] = AUDIT
