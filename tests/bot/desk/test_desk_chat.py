"""The confidant's live chat in the desk (issue 12, step 6): a client on the Telegram stand-in (the
REAL python-telegram-bot adapter) asks for a female confidant; the desk confidants of that
organisation see the request, the first accept wins, text goes both ways, the confidant ends it;
another organisation's confidant never sees it; the chat page is axe-clean in Dutch and Arabic."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.desk import DeskConfig, build_desk
from bot.desk.security import Throttle
from bot.desk.web import DESK
from bot.services.organisation import ConfigError, load_deployment
from tests.bot.desk.conftest import Browserless, Desk
from tests.bot.test_telegram import Harness, make_harness, running, stub  # noqa: F401
from tests.browser import browser, needs_chromium, serious_violations

__all__ = ["browser"]

CONFIG = """
[[organisations]]
slug = "noord"
name = "Steunpunt Noord"
[[organisations.confidants]]
gender = "female"
desk = "anna@noord.test"

[[organisations]]
slug = "zuid"
name = "Steunpunt Zuid"
[[organisations.confidants]]
gender = "female"
desk = "Bea@Zuid.test"
[[organisations.confidants]]
gender = "female"
desk = "cora@zuid.test"
[[organisations.confidants]]
gender = "male"
desk = "dirk@zuid.test"
"""
ACCEPT = re.compile(r'action="/requests/(\d+)/accept"')


async def _ask_for_a_woman(harness: Harness) -> Any:
    client = harness.person(4101, "nl", "Layla")
    await client.say("/start zuid")
    await client.press("lang_nl")
    await client.press("sexual_harassment")
    await client.press("talk_not_tried")
    await client.press("pref_female")
    await client.press("anonymous")
    await client.press("contact_chat")
    await client.say("Een probleem met een vrijwilliger")
    await client.press("confirm")
    return client


async def _started(running: Callable[..., Any], tmp_path: Path) -> tuple[Harness, Desk, TestServer]:  # noqa: F811
    config = tmp_path / "desk-chat.toml"
    config.write_text(CONFIG, encoding="utf-8")
    harness: Harness = await running("ptb", config=config)
    server = TestServer(build_desk(harness.a, DeskConfig(), Throttle()), host="127.0.0.1")
    await server.start_server()
    desk_config = DeskConfig(listen_port=server.port or 0)
    server.app[DESK].config = desk_config
    return harness, Desk(server, desk_config, harness.a, harness.clock), server


async def test_desk_confidants_take_a_telegram_clients_chat_first_accept_wins(
        running: Callable[..., Any], tmp_path: Path) -> None:  # noqa: F811
    """Only the organisation's female desk confidants see the request (no name, category and
    preference shown); Bea accepts, Cora's accept is refused; text both ways; Bea ends."""
    harness, desk, server = await _started(running, tmp_path)
    try:
        people = {name: await desk.person(f"{name}@{org}.test", "confidant", org)
                  for name, org in (("anna", "noord"), ("bea", "zuid"), ("cora", "zuid"),
                                    ("dirk", "zuid"))}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s1, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s2, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s3, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s4:
            web = {name: Browserless(desk, s) for name, s in
                   zip(("anna", "bea", "cora", "dirk"), (s1, s2, s3, s4), strict=True)}
            for name, b in web.items():
                await b.login(people[name])
            client = await _ask_for_a_woman(harness)
            pages = {name: (await b.get("/requests"))[1] for name, b in web.items()}
            assert ACCEPT.search(pages["anna"]) is None and ACCEPT.search(pages["dirk"]) is None
            found = ACCEPT.search(pages["bea"])
            assert found and ACCEPT.search(pages["cora"])
            assert "Layla" not in pages["bea"] and "een vrouw" in pages["bea"]
            number = found.group(1)

            status, where = await web["bea"].post(f"/requests/{number}/accept")
            assert (status, where) == (303, "/chat")
            await harness.c.idle()
            assert "verbonden" in client.last_text()
            status, where = await web["cora"].post(f"/requests/{number}/accept")
            assert (status, where) == (303, "/requests")
            cora = (await web["cora"].get("/requests"))[1]
            assert ACCEPT.search(cora) is None and "/chat" not in cora.split("</nav>")[1]

            await client.say("Hallo, ik <b>wil</b> praten")
            chat = (await web["bea"].get("/chat"))[1]
            assert "Hallo, ik &lt;b&gt;wil&lt;/b&gt; praten" in chat
            await web["bea"].post("/chat/send", {"text": "Goedemiddag, ik luister."})
            await harness.c.idle()
            assert "Goedemiddag, ik luister." in client.last_text()
            chat = (await web["bea"].get("/chat"))[1]
            assert "Goedemiddag, ik luister." in chat
            status, body = await web["bea"].post("/chat/share", {"name": "\u202e" * 3})
            assert status == 400 and "Er is niets verstuurd." in body
            await web["bea"].get("/chat")
            await web["bea"].post("/chat/share", {"name": "Bea"})
            await harness.c.idle()
            assert "Bea" in client.last_text()
            status, where = await web["bea"].post("/chat/end")
            assert (status, where) == (303, "/requests")
            await harness.c.idle()
            assert "beëindigd" in client.last_text()
            assert "geen gesprek" in (await web["bea"].get("/chat"))[1].lower()
            async with desk.app.db.unit_of_work(read_only=True) as uow:
                assert await uow.owed.unsent_for_chat("desk", "bea@zuid.test") == []
    finally:
        await server.close()


def test_a_desk_key_must_be_an_email_address(tmp_path: Path) -> None:
    """`desk = "..."` that is no e-mail address is refused with a line that names the key."""
    path = tmp_path / "bad.toml"
    path.write_text('name = "X"\n[[confidants]]\ngender = "female"\ndesk = "bea"\n', "utf-8")
    try:
        load_deployment(path)
    except ConfigError as exc:
        assert "desk" in str(exc)
    else:
        raise AssertionError("accepted a desk key that is no e-mail address")


@needs_chromium
async def test_the_chat_page_is_accessible_in_dutch_and_arabic(
        running: Callable[..., Any], tmp_path: Path, browser: Any) -> None:  # noqa: F811
    """The requests page and the chat page, in a real browser: accept with a click, send a
    message, no serious axe-core finding and no CSP violation, in nl and ar."""
    harness, desk, server = await _started(running, tmp_path)
    try:
        bea = await desk.person("bea@zuid.test", "confidant", "zuid")
        client = await _ask_for_a_woman(harness)
        page = await browser.new_page()
        page.set_default_timeout(5000)
        csp: list[str] = []
        page.on("console", lambda m: csp.append(m.text) if "Content Security" in m.text else None)
        await page.goto(desk.url("/login"))
        await page.fill("#email", bea.email)
        await page.fill("#password", "correct horse battery staple")
        await page.fill("#code", bea.code(desk.clock))
        await page.click("main button[type=submit]")
        assert page.url.endswith("/requests")
        assert await serious_violations(page) == [] and csp == []
        await page.click("main table button[type=submit]")
        assert page.url.endswith("/chat")
        await client.say("Dank u")
        await page.click("form[action='/chat'] button")
        await page.fill("#chat-text", "Ik ben er.")
        await page.click("form[action='/chat/send'] button")
        assert "Dank u" in await page.inner_text("ol.thread")
        assert "Ik ben er." in await page.inner_text("ol.thread")
        assert await serious_violations(page) == [] and csp == []
        await page.select_option("#lang-choice", "ar")
        await page.click("form.lang button")
        assert await page.evaluate("document.documentElement.dir") == "rtl"
        assert await serious_violations(page) == [] and csp == []
    finally:
        await server.close()
