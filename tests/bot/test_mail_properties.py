"""Property-based tests of the forwarded mail: no header injection, no bidi controls in headers, the
client's text carried unchanged in `complaint.json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.mail.compose import compose_case_mail
from flows.complaint import complaint_document

pytestmark = pytest.mark.property

BIDI_AND_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\r\n\x00")
HOSTILE = st.sampled_from(
    ["\u202e", "\u2066", "\u200d", "\u200c", "\u200f", "\x00", "\r\n", "\n", "\r", "Bcc: evil@x.nl",
     "<b>&amp;</b>", "=?utf-8?q?x?=", "ی", "\ud800"]
)
TEXT = st.lists(st.one_of(st.text(max_size=30), HOSTILE), max_size=8).map("".join)


def submission(name: str, description: str, staff: str, email: str) -> dict[str, Any]:
    return {
        "kind": "complaint", "schema": "B", "category": "aggression", "language": "ar",
        "confidant_preference": None,
        "complainant": {"name": name, "anonymous": False, "contact": {"method": "email", "value": email}},
        "representative": None, "staff_involved": staff, "description": description,
        "incident_dates": {"text": description[:20], "parsed": None},
        "steps_taken": {"talked": None, "text": None},
        "admissibility": {"status": "admissible", "rule": "001 art. 13"},
        "consent": {"given": True, "share_with": "committee"}, "attachments": [], "emergency_shown": False,
    }


def fixed(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


@given(name=TEXT, description=TEXT, staff=TEXT, email=TEXT)
def test_mail_headers_are_safe_and_json_is_verbatim(name: str, description: str, staff: str,
                                                    email: str) -> None:
    """Whatever the client typed: one From/To/Subject, no bidi or CR/LF in headers, text kept in JSON."""
    doc = complaint_document(submission(name, description, staff, email), reference="KW-2026-000001",
                             channel="telegram", created_at=datetime(2026, 11, 22, tzinfo=UTC))
    raw = bytes(compose_case_mail(doc, sender="bot@klachtwijzer.test", recipient="c@example.nl",
                                  message_id="<fixed@klachtwijzer.test>"))
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail.get_all("To") == ["c@example.nl"]
    assert mail.get_all("Bcc") is None and mail.get_all("Cc") is None
    assert mail["Message-ID"] == "<fixed@klachtwijzer.test>"
    for header, value in mail.items():
        assert not (set(str(value)) & BIDI_AND_CONTROLS), header
    [attached] = [p for p in mail.iter_attachments() if p.get_filename() == "complaint.json"]
    carried = json.loads(attached.get_content())
    assert carried["description"] == fixed(description)
    assert carried["complainant"]["name"] == fixed(name)
    assert carried["staff_involved"] == fixed(staff)
