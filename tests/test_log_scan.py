"""The end-of-run log scan recognises personal data in a log line."""

from __future__ import annotations

from tests.conftest import scan_log


def test_scan_finds_personal_data() -> None:
    """Client words, phone numbers, tokens and names are flagged; plain operational lines are not."""
    text = "\n".join([
        "INFO bot.services.intake: registered KW-2026-000001 (complaint)",
        "INFO x: name فاطمة",
        "INFO x: phone +31 6 12345678",
        "INFO httpx: GET https://api.telegram.org/bot123456789:AAFakeTokenForTests1234567890/getMe",
        "WARNING x: Sara Haddad wrote",
    ])
    assert [line.split(":")[0] for line in scan_log(text)] == [
        "Arabic text", "phone number", "bot token", "client name"]
