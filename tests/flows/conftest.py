"""Fixtures shared by the tests of the domain: the catalogs and an engine for the bundled procedure."""

from __future__ import annotations

import pytest

from flows.engine import Engine
from flows.i18n import Catalogs, load_catalogs
from flows.procedure import load_procedure


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return load_catalogs()


@pytest.fixture(scope="module")
def engine(catalogs: Catalogs) -> Engine:
    return Engine(load_procedure(), catalogs, organisation="Test")
