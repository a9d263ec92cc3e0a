"""Roles are checked on the server for every route: a walk over every route as every role and as
a stranger."""

from __future__ import annotations

from typing import Any

from bot.desk.web import HOME, ROLES_ATTR
from bot.root.app import App
from tests.bot.desk.conftest import Desk
from tests.bot.register_helpers import RecordingChannel, file_complaint

# Who may call what; everything else must be refused.
EXPECTED = {
    "cases": {"secretary"}, "case": {"secretary"}, "case_status": {"secretary"},
    "case_message": {"secretary"}, "case_note": {"secretary"}, "case_attachment": {"secretary"},
    "export": {"secretary"}, "report": {"secretary", "coordinator"},
    "figures": {"coordinator"}, "figures_file": {"coordinator"},
    "signal_page": {"coordinator", "secretary"}, "signal": {"coordinator", "secretary"},
    "accounts": {"administrator"}, "invite": {"administrator"},
    "account_action": {"administrator"}, "audit": {"administrator"},
    "settings": {"administrator"},
    "requests": {"confidant"}, "accept": {"confidant"}, "chat": {"confidant"},
    "chat_action": {"confidant"}, "chat_updates": {"confidant"},
    "requests_updates": {"confidant"}, "chat_file": {"confidant"}, "chat_upload": {"confidant"},
    "logout": {"secretary", "confidant", "coordinator", "administrator"},
    "logout_everywhere": {"secretary", "confidant", "coordinator", "administrator"},
}
PUBLIC = {"home", "static", "login_page", "login", "language", "enrol_page", "enrol"}
ROLES = ("secretary", "confidant", "coordinator", "administrator")


async def test_every_route_as_every_role(app: App, desk: Desk, web: Any,
                                         chat: RecordingChannel) -> None:
    """Each route declares its roles; each role gets through only where allowed (403 elsewhere,
    and a stranger is sent to the login page or refused), with a valid CSRF token throughout."""
    _client, ref = await file_complaint(app, "c-roles")
    routes = [r for r in desk.server.app.router.routes() if r.name and r.method != "HEAD"]
    assert {r.name for r in routes} == set(EXPECTED) | PUBLIC
    for route in routes:
        declared = getattr(route.handler, ROLES_ATTR)
        assert (set(declared) == EXPECTED[route.name]) if route.name in EXPECTED else (
            declared == {"public"}), route.name
    people = {role: await desk.person(f"{role}@desk.test", role) for role in ROLES}
    paths = {"case": f"/cases/{ref}", "case_status": f"/cases/{ref}/status",
             "case_message": f"/cases/{ref}/message", "case_note": f"/cases/{ref}/note",
             "case_attachment": f"/cases/{ref}/attachments/1",
             "account_action": "/accounts/2/unlock", "report": "/report?year=1999",
             "export": "/export?format=csv", "figures_file": "/figures.xlsx",
             "accept": "/requests/1/accept", "chat_action": "/chat/send",
             "chat_file": "/chat/file/1", "chat_updates": "/chat/updates?chat=0&after=0"}
    for who in (*ROLES, None):
        client = web()
        if who is None:
            await client.get("/login")
        else:
            status, where = await client.login(people[who])
            assert status == 303, (who, where)
        for route in routes:
            if route.name not in EXPECTED:
                continue
            path = paths.get(route.name) or route.resource.canonical  # type: ignore[union-attr]
            if route.method == "GET":
                status, body = await client.get(path)
            else:
                await client.get("/login" if who is None else HOME[who])
                status, body = await client.post(path, {})
            allowed = who in EXPECTED[route.name]
            if allowed:
                assert status != 403 and status < 500, (who, route.name, status)
            elif who is None and route.method == "GET":
                assert (status, body) == (303, "/login"), (route.name, status)
            else:
                assert status == 403, (who, route.name, status)
            if route.name in ("logout", "logout_everywhere") and allowed:
                await client.login(people[who])  # logged out: in again for the next routes
    async with app.db.unit_of_work() as uow:
        refused = [a for a in await uow.audit.list(500) if a.action == "desk_forbidden"]
    assert any(a.reference == ref and a.actor == f"desk#{3}" for a in refused)
