"""The register's operations for the committee secretary and the coordinator (issue 4).

This module is the register's front door: every name is importable from here. The work is done in
`register_cases` (cases, statuses, notes, messages), `register_notify` (delivering messages to
clients, the follow-up question), `register_reports` (export rows, the digest, retention) and
`register_common` (what they share).

Every operation opens its own units of work on `app.db`; messages to clients are sent between
units of work, never while a transaction is open. The rules (statuses, deadlines, texts) are in
`flows/register.py`; the tables in `storage/register.py`.

Messages to clients that are not a reply (status updates, the follow-up question) are first stored
as pending notifications, then delivered by the channel when it runs in this process. When the
channel runs in another process (`klachtwijzer run`, while the secretary uses the CLI), that
process's scheduler delivers it within a minute. When the client cannot be reached in the chat,
the register records a manual contact by the way the client chose (phone, e-mail), which the daily
digest lists until staff record `klachtwijzer case note REF --contacted`.
"""

from __future__ import annotations

from bot.services.register_cases import (
    CaseLine,
    CaseView,
    StatusChange,
    add_case,
    add_note,
    case_view,
    lapse_unreachable,
    list_cases,
    send_message,
    set_status,
)
from bot.services.register_common import (
    ANSWER_NL,
    CLIENT_KINDS,
    DUE_WITHIN_DAYS,
    FAILED_MAIL_DAYS,
    KIND_NL,
    LAST_INBOUND,
    METHOD_NL,
    ORG_TZ,
    PURPOSE_NL,
    FailedMail,
    RegisterError,
    failed_mail_line,
    failed_mails,
    local_date,
    mailbox_name,
)
from bot.services.register_notify import (
    announced_news,
    deliver_pending,
    news_shown,
    record_follow_up,
    send_follow_ups,
)
from bot.services.register_reports import (
    EXPORT_FIELDS,
    ExportFormat,
    PurgeResult,
    add_digest,
    anonymised_rows,
    app_rows,
    digest_sections,
    export,
    export_bytes,
    purge,
    queue_digest,
)

__all__ = [
    "ANSWER_NL",
    "CLIENT_KINDS",
    "DUE_WITHIN_DAYS",
    "EXPORT_FIELDS",
    "FAILED_MAIL_DAYS",
    "KIND_NL",
    "LAST_INBOUND",
    "METHOD_NL",
    "ORG_TZ",
    "PURPOSE_NL",
    "CaseLine",
    "CaseView",
    "ExportFormat",
    "FailedMail",
    "PurgeResult",
    "RegisterError",
    "StatusChange",
    "add_case",
    "add_digest",
    "add_note",
    "announced_news",
    "anonymised_rows",
    "app_rows",
    "case_view",
    "deliver_pending",
    "digest_sections",
    "export",
    "export_bytes",
    "failed_mail_line",
    "failed_mails",
    "lapse_unreachable",
    "list_cases",
    "local_date",
    "mailbox_name",
    "news_shown",
    "purge",
    "queue_digest",
    "record_follow_up",
    "send_follow_ups",
    "send_message",
    "set_status",
]
