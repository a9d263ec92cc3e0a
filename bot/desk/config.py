"""The desk's settings, filled in by the composition root from the process settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class DeskConfig:
    """Where the desk listens and how long its links and sessions live."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8446
    public_url: str | None = None  # the address staff open (behind a TLS proxy: https://...)
    mail: bool = False  # outgoing mail is set up (SMTP_HOST): invitations are also mailed
    invite_valid: timedelta = timedelta(hours=72)
    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_timeout: timedelta = timedelta(hours=12)

    @property
    def base_url(self) -> str:
        """The address in links the desk prints (invitations), without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{self.listen_port}"

    @property
    def secure_cookies(self) -> bool:
        """Cookies are marked Secure when staff reach the desk over HTTPS."""
        return self.base_url.startswith("https://")
