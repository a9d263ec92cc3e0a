"""The browser harness itself: Chromium really renders, and axe-core really finds faults."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.browser import browser, needs_chromium, serious_violations

__all__ = ["browser"]

GOOD = """<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>اختبار</title></head>
<body><main><h1>مرحبا</h1><button type="button">نعم</button></main></body></html>"""
BAD = """<!doctype html><html><head><meta charset="utf-8"><title>x</title></head>
<body><main><img src="/x.png"><button type="button"></button></main></body></html>"""


@needs_chromium
async def test_axe_tells_a_faulty_page_from_a_clean_one(browser: object) -> None:
    """axe-core finds the missing alt text and the empty button, and nothing on the clean page."""
    async def page_of(request: web.Request) -> web.Response:
        return web.Response(text=GOOD if request.path == "/good" else BAD, content_type="text/html")

    app = web.Application()
    app.router.add_get("/good", page_of)
    app.router.add_get("/bad", page_of)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        page = await browser.new_page()  # type: ignore[attr-defined]
        await page.goto(str(server.make_url("/good")))
        assert await page.evaluate("document.dir") == "rtl"
        assert await serious_violations(page) == []
        await page.goto(str(server.make_url("/bad")))
        found = "\n".join(await serious_violations(page))
        assert "image-alt" in found and "button-name" in found
    finally:
        await server.close()
