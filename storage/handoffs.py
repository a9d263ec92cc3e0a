"""Handoffs of issue 3: confidant offers, who accepted, relay sessions."""

from __future__ import annotations

from storage.repositories import _Repository

__all__ = ["HandoffRepository"]


class HandoffRepository(_Repository):
    __slots__ = ()
