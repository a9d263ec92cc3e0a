"""Reading what the test SMTP server received: the mails, and the complaint.json of one."""

from __future__ import annotations

import json
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


def mails(smtp_server: Any) -> list[EmailMessage]:
    """Every mail the aiosmtpd fixture accepted, parsed, oldest first."""
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(r.content) for r in smtp_server.handler.received]  # type: ignore[misc]


def complaint_json(mail: EmailMessage) -> dict[str, Any]:
    """The one complaint.json attached to a mail (fails the test if there is none or several)."""
    parts = [p for p in mail.iter_attachments() if p.get_filename() == "complaint.json"]
    assert len(parts) == 1, f"{len(parts)} complaint.json attachments"
    data: dict[str, Any] = json.loads(parts[0].get_content())
    return data
