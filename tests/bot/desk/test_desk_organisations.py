"""The desk in a deployment of several organisations: each secretary works on their own
organisation's register, with its own procedure, and never sees the other's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.root.app import App
from flows.model import Start
from tests.bot.client import Client
from tests.bot.desk.conftest import Desk

TWO = """
[[organisations]]
slug = "noord"
name = "Steunpunt Noord"
[organisations.mailboxes]
committee = "commissie@noord.test"

[[organisations]]
slug = "zuid"
name = "Steunpunt Zuid"
[organisations.mailboxes]
committee = "commissie@zuid.test"
"""


@pytest.fixture
async def app(app_factory: Any, settings_for: Any, smtp_server: Any, tmp_path: Path) -> App:
    """The app of a deployment of two organisations (overrides the one-organisation app)."""
    config = tmp_path / "two.toml"
    config.write_text(TWO, encoding="utf-8")
    built: App = await app_factory(settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                                                smtp_tls="none", config=config))
    return built


async def mediation_request(app: App, chat_id: str, organisation: str) -> str:
    """A client reaches the organisation by its link and sends a mediation request."""
    client = Client(app.service, chat_id=chat_id)
    await client.send(Start("nl", organisation=organisation))
    await client.press("lang_nl")
    await client.press("conflict")
    await client.press("talk_not_helped")
    await client.press("request_yes")
    await client.type("Piet Jansen")
    await client.press("contact_chat")
    await client.type("Wij zijn het oneens over de afspraken.")
    await client.press("confirm")
    async with app.db.engine.connect() as conn:
        from sqlalchemy import select

        from storage.schema import cases

        row = (await conn.execute(select(cases.c.reference).where(
            cases.c.organisation == organisation))).one()
    return str(row[0])


async def test_each_secretary_works_on_their_own_organisations_register(
        app: App, desk: Desk, web: Any) -> None:
    """Zuid's secretary lists, opens, moves and exports Zuid's case; Noord's case is not there."""
    noord = await mediation_request(app, "c-noord", "noord")
    zuid = await mediation_request(app, "c-zuid", "zuid")
    secretary = await desk.person("s@zuid.test", "secretary", "zuid")
    client = web()
    await client.login(secretary)
    _status, listing = await client.get("/cases?show=all")
    assert zuid in listing and noord not in listing
    status, page = await client.get(f"/cases/{zuid}")
    assert status == 200 and "Piet Jansen" in page
    status, _ = await client.post(f"/cases/{zuid}/status", {"status": "acknowledged"})
    assert status in (200, 302, 303)
    _status, page = await client.get(f"/cases/{zuid}")
    async with app.db.unit_of_work(read_only=True) as uow:
        case = await uow.cases.get(zuid)
    assert case is not None and case.status == "acknowledged"
    _status, csv = await client.get("/export?format=csv")
    assert zuid in csv and noord not in csv
    assert (await client.get(f"/cases/{noord}"))[0] == 403
