"""`complaint.json`: the structured complaint forwarded to the organisation (documented in README).

The engine builds a *submission* (a plain dict) from the client's answers; the service adds what only
it knows (reference, channel, time) with `complaint_document`. Bump `SCHEMA_VERSION` on any change
that a reader of the file would notice, and describe it in README.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1

# The keys of a submission, in the order they appear in `complaint.json`.
SUBMISSION_KEYS: tuple[str, ...] = (
    "kind",
    "schema",
    "category",
    "language",
    "confidant_preference",
    "complainant",
    "representative",
    "complainant_type",
    "staff_involved",
    "description",
    "incident_dates",
    "steps_taken",
    "admissibility",
    "consent",
    "attachments",
    "emergency_shown",
)


def complaint_document(
    submission: dict[str, Any], *, reference: str, channel: str, created_at: datetime
) -> dict[str, Any]:
    """The versioned `complaint.json` document for one registered submission."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "reference": reference}
    for key in SUBMISSION_KEYS:
        doc[key] = submission.get(key)
    doc["channel"] = channel
    doc["created_at"] = created_at.isoformat()
    return doc
