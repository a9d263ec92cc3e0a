"""The ports of the service layer: what services need of the running application.

The composition root's `App` satisfies `ServiceHost` structurally; services type their argument
with it and so never import the root. Channels use the wider `bot.channels.ports.ChannelHost`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from bot.services.delivery import Channels
from bot.services.organisation import Deployment, Organisation
from flows.i18n import Catalogs
from storage import Database
from storage.files import EncryptedFileStore


class ServiceHost(Protocol):
    """The parts of the running application that the register, reports and daily jobs use."""

    @property
    def db(self) -> Database:
        """The database, opened by the composition root."""

    @property
    def organisation(self) -> Organisation:
        """The default organisation (the only one, in a deployment of one)."""

    @property
    def deployment(self) -> Deployment:
        """Every organisation served, each with its procedure, mailboxes, staff and periods."""

    @property
    def catalogs(self) -> Catalogs:
        """The translations, for messages to clients."""

    @property
    def channels(self) -> Channels:
        """The channels running in this process, to reach people."""

    @property
    def files(self) -> EncryptedFileStore:
        """Where files that clients sent are kept, encrypted."""

    @property
    def clock(self) -> Callable[[], datetime]:
        """The time now (tests move it by hand)."""

    @property
    def mail_from(self) -> str:
        """The sender address of mails to the organisation."""

    @property
    def fallback_mail(self) -> str | None:
        """KLACHTWIJZER_FALLBACK_MAIL: where the digest also goes when the committee's mailbox refuses."""

    @property
    def configured_channels(self) -> frozenset[str]:
        """The client channels this deployment is configured for, running here or not."""
