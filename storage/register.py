"""The register of issue 4: case history, deadlines, follow-up, signals."""

from __future__ import annotations

from storage.repositories import _Repository

__all__ = ["RegisterRepository"]


class RegisterRepository(_Repository):
    __slots__ = ()
