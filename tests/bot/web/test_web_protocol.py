"""The web chat's protocol without a browser (issue 13): forged frames, huge and binary frames,
control and bidi characters, the Origin check, exactly once both ways, return codes and their
throttling, forgetting a device, the headers of the pages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.channels.web import codes, protocol
from bot.channels.web.chat import WebChat
from bot.channels.web.texts import CODE_THROTTLED, CODE_WRONG, FILE_TYPE, TOO_FAST, TOO_LONG
from bot.root.app import App
from tests.bot.web.helpers import Client, button_ids, client, serving, texts
from tests.bot.whatsapp_helpers import free_port


@pytest.fixture
async def web(settings_for: Callable[..., Any], app_factory: Callable[..., Any],
              ) -> AsyncIterator[tuple[App, str]]:
    app = await app_factory(settings_for(web_listen_port=free_port(), max_attachment_bytes=1000,
                                         web_allowed_origins="https://www.example.nl"))
    async with serving(app) as base:
        yield app, base


async def started(c: Client) -> list[dict[str, Any]]:
    await c.hello()
    return await c.message(t="start")


def test_clean_text_drops_controls_and_bidi_overrides() -> None:
    """Control characters and bidi embeddings/overrides/isolates go; newlines, tabs, Arabic stay."""
    assert protocol.clean_text("a\x00b\x1bc\u202eمرحبا\u2066x\u2069\r\nd\te\x7f") == "abcمرحباx\nd\te"


@pytest.mark.parametrize("raw", [
    "not json", "[1, 2]", '{"t": "admin"}', '{"t": "command", "id": "abcdefgh", "name": "signals"}',
    '{"t": "text", "id": "short", "text": "x"}', '{"t": "text", "id": "abcdefgh", "text": 5}',
    '{"t": "choice", "id": "abcdefgh", "button": "<script>"}', '{"t": "ack", "seq": true}',
    '{"t": "ack", "seq": -1}', '{"t": "hello", "token": "../../etc"}',
    '{"t": "file", "id": "abcdefgh", "type": "image/png", "data": "***"}',
])
def test_forged_frames_are_refused(raw: str) -> None:
    """Unknown types, staff commands, malformed ids, buttons, seqs, tokens and data: `BadFrame`."""
    with pytest.raises(protocol.BadFrame):
        protocol.parse(raw, 1000)


def test_huge_frames_are_refused_and_files_over_the_limit_are_marked() -> None:
    """A non-file frame over the frame limit is refused; a file over the limit is `too_big`."""
    with pytest.raises(protocol.BadFrame):
        protocol.parse(json.dumps({"t": "text", "id": "abcdefgh", "text": "x" * 40_000}), 1000)
    big = protocol.parse(json.dumps({"t": "file", "id": "abcdefgh", "type": "image/png",
                                     "data": "QUFB" * 400}), 1000)
    assert isinstance(big, protocol.ClientMessage) and big.too_big


async def test_origin_is_checked(web: tuple[App, str]) -> None:
    """The socket opens for the same host and an allowed site; another site and no Origin get 403."""
    _app, base = web
    async with client(base) as c:
        assert (await c.hello())["t"] == "ready"
    async with client(base, origin="https://www.example.nl") as c:
        assert (await c.hello())["t"] == "ready"
    async with aiohttp.ClientSession() as session:
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(base.replace("http", "ws") + "/ws", headers=headers,
                                         autoclose=True)
            assert refused.value.status == 403


async def test_bad_input_gets_one_translated_line_and_then_the_socket_closes(
        web: tuple[App, str]) -> None:
    """A forged button, a too long text and a wrong file type each get a translated answer; binary
    and broken frames are refused, and after five the socket is closed; nothing crashes."""
    app, base = web
    t = app.catalogs.get("en")
    async with client(base) as c:
        first = await started(c)
        assert "lang_en" in button_ids(first)
        forged = await c.message(t="choice", button="confirm", state="language")
        assert texts(forged) and "Traceback" not in json.dumps(forged)
        long = await c.message(t="text", text="ب" * 4001)
        assert t._(TOO_LONG).format(length=4001, limit=4000) in texts(long)
        exe = await c.message(t="file", type="application/x-msdownload", data="TVqQAA==")
        assert t._(FILE_TYPE) in texts(exe)
        big = await c.message(t="file", type="image/png", data="QUFB" * 400)
        assert any("too big" in text for text in texts(big))
        for _ in range(4):
            await c.ws.send_bytes(b"\x00\x01binary")
        await c.ws.send_str("{broken")
        closed = await c.ws.receive(timeout=10)
        while closed.type == aiohttp.WSMsgType.TEXT:
            closed = await c.ws.receive(timeout=10)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert list((app.settings.data_dir / "files").glob("*")) == []  # refused files not kept


async def test_too_many_messages_are_refused_with_a_retry(web: tuple[App, str]) -> None:
    """Over the rate a message gets the translated "too fast" line naming it for a retry (the
    browser sends it again later), and is not handled; the next window takes it."""
    app, base = web
    chat = app.channels.get("web")
    assert isinstance(chat, WebChat)
    chat.rate = (3, 0.5)
    async with client(base) as c:
        await started(c)
        await c.message(t="command", name="help")
        await c.message(t="command", name="help")
        mid = uuid.uuid4().hex
        refused = await c.message(t="command", name="help", id=mid)
        assert refused == [{"t": "notice", "text": app.catalogs.get("en")._(TOO_FAST),
                            "retry": mid}]
        await asyncio.sleep(0.6)
        again = await c.message(t="command", name="help", id=mid)
        assert again[-1] == {"t": "ack", "id": mid} and texts(again)


async def test_a_repeated_message_is_handled_once_and_unacknowledged_replies_come_again(
        web: tuple[App, str]) -> None:
    """The same client message id twice is one event (acknowledged again, no second reply); a
    reply not acknowledged comes again with the same seq after a reconnect, an acknowledged one
    never."""
    _app, base = web
    async with client(base) as c:
        await started(c)
        token = c.token
        mid = uuid.uuid4().hex
        first = await c.message(t="choice", button="lang_en", state="language", id=mid)
        seqs = [f["seq"] for f in first if f["t"] == "msg"]
        assert seqs
        again = await c.message(t="choice", button="lang_en", state="language", id=mid)
        assert [f["t"] for f in again] == ["ack"]
        # A reply that is never acknowledged:
        await c.send(t="command", id=uuid.uuid4().hex, name="help")
        unacked = [f for f in [await c.frame() for _ in range(3)] if f["t"] == "msg"]
        assert unacked
    async with client(base) as c:
        await c.hello(token=token)
        resent = [await c.frame() for _ in unacked]
        assert [(f["seq"], f["text"]) for f in resent] == [(f["seq"], f["text"]) for f in unacked]
        assert not set(seqs) & {f["seq"] for f in resent}


async def test_return_code_continues_elsewhere_and_guessing_is_throttled(
        web: tuple[App, str]) -> None:
    """After a submission the chat gets a code (stored only as an Argon2id hash); typed with other
    case and spaces it opens the chat on another device; wrong codes are throttled per address,
    even the right code is then refused; forgetting a device ends its token."""
    app, base = web
    t = app.catalogs.get("en")
    async with client(base) as c:
        await started(c)
        await c.message(t="choice", button="lang_en", state="language")
        frames = await _confidant_request(c)
        [given] = [f for f in frames if f["t"] == "code"]
        code = given["code"]
        token = c.token
    async with app.db.unit_of_work(read_only=True) as uow:
        stored = await uow.web.code_at(code[:4])
    assert stored is not None and stored.code_hash.startswith("$argon2id$")
    assert code.replace("-", "") not in stored.code_hash
    async with client(base) as other:
        await other.hello()
        await other.send(t="code", code=code.lower().replace("-", " "))
        ready = await other.frame()
        assert ready["t"] == "ready" and ready["restored"] and ready["token"] != token
        dossier = await other.message(t="command", name="dossier")
        assert any("Trouble at the meeting." in text for text in texts(dossier))
        await other.send(t="forget")
        assert (await other.frame())["t"] == "forgotten"
        forgotten_token = ready["token"]
    async with client(base) as again:
        assert (await again.hello(token=forgotten_token))["fresh"] is True
        for _ in range(5):
            await again.send(t="code", code="AAAA-AAAA-AAAA-AAAA")
            assert await again.frame() == {"t": "refused", "text": t._(CODE_WRONG)}
        await again.send(t="code", code=code)
        assert await again.frame() == {"t": "refused", "text": t._(CODE_THROTTLED)}


async def _confidant_request(c: Client) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    for button in ("bullying", "talk_not_tried", "pref_none", "anonymous", "contact_chat"):
        state = next(f["state"] for f in reversed(frames) if f["t"] == "msg" and f["buttons"]
                     ) if frames else None
        frames += await c.message(t="choice", button=button, state=state)
    frames += await c.message(t="text", text="Trouble at the meeting.")
    state = next(f["state"] for f in reversed(frames) if f["t"] == "msg" and f["buttons"])
    frames += await c.message(t="choice", button="confirm", state=state)
    return frames


def test_throttle_counts_per_address_and_overall_and_forgets_after_the_window() -> None:
    """Five wrong codes block an address, a hundred block everyone, and the window passes."""
    now = [0.0]
    throttle = codes.Throttle(per_address=5, overall=8, window=900, clock=lambda: now[0])
    for _ in range(5):
        assert throttle.allowed("a")
        throttle.failed("a")
    assert not throttle.allowed("a") and throttle.allowed("b")
    for address in "bcd":
        throttle.failed(address)
    assert not throttle.allowed("e")  # eight wrong codes overall
    now[0] = 901.0
    assert throttle.allowed("a") and throttle.allowed("e")


def test_codes_are_easy_to_read_and_normalised() -> None:
    """Four groups of four from an alphabet without look-alikes; case, spaces, dashes do not matter."""
    code = codes.new_code()
    shown = codes.shown(code)
    assert len(shown) == 19 and shown.count("-") == 3
    assert not set(code) & set("0O1IL2Z5S8BUV")
    assert codes.normalised(shown.lower().replace("-", " ")) == code
    assert codes.normalised("0000-0000-0000-0000") is None and codes.normalised("x" * 100) is None


async def test_pages_have_strict_headers_and_the_widget_is_small(web: tuple[App, str]) -> None:
    """/chat: a strict CSP without inline script or style, lang and dir; widget.js and chat.css
    together well under 100 KB; an unknown static file or language is 404; no personal data."""
    _app, base = web
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/chat/de-bilt", headers={"Accept-Language": "ar"}) as r:
            page = await r.text()
            csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["X-Content-Type-Options"] == "nosniff"
        assert '<html lang="ar" dir="rtl">' in page and 'data-organisation="de-bilt"' in page
        assert "<style" not in page and " style=" not in page and "<script>" not in page
        size = 0
        for path in ("/widget.js", "/static/chat.css"):
            async with session.get(base + path) as r:
                size += len(await r.read())
                assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert size < 50_000
        async with session.get(base + "/chat", headers={"Host": "x; script-src *"}) as r:
            assert "script-src *" not in r.headers["Content-Security-Policy"]
        for path in ("/static/../chat.py", "/static/x.js", "/ui/de.json", "/chat/../x"):
            async with session.get(base + path) as r:
                assert r.status == 404, path


async def test_a_message_for_a_chat_with_no_open_browser_waits_for_it(
        web: tuple[App, str]) -> None:
    """A status message (`Channels.send`) for a web client who is away is kept and shown, once,
    when they come back."""
    app, base = web
    async with client(base) as c:
        await started(c)
        token = c.token
    chat = app.channels.get("web")
    assert isinstance(chat, WebChat)
    async with app.db.unit_of_work(read_only=True) as uow:
        chat_id = await uow.web.chat_of(codes_hash(token))
    assert chat_id is not None
    from flows.model import OutMessage

    assert await app.channels.send("web", chat_id, [OutMessage("Status: received")]) == "sent"
    async with client(base) as c:
        await c.hello(token=token)
        shown = await c.frame()
        assert (shown["t"], shown["text"]) == ("msg", "Status: received")
        await c.send(t="ack", seq=shown["seq"])
        await asyncio.sleep(0.1)
    async with client(base) as c:
        await c.hello(token=token)
        with pytest.raises(TimeoutError):
            await c.ws.receive(timeout=0.5)  # acknowledged: never sent again


def codes_hash(token: str | None) -> str:
    from bot.channels.web.chat import token_hash

    assert token is not None
    return token_hash(token)
