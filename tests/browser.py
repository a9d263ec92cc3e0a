"""A real headless browser for the web pages' tests: Debian's Chromium driven by Playwright,
with axe-core (bundled by axe-playwright-python) for accessibility.

Nothing is downloaded: Playwright starts `/usr/bin/chromium` (`.ci/run` installs it with apt).
Use the `browser` fixture (a Chromium per test) and its `new_page()`; `serious_violations()`
runs axe-core on a page and returns the serious and critical findings as readable lines.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

CHROMIUM = os.environ.get("KLACHTWIJZER_CHROMIUM", "/usr/bin/chromium")
# The flags the workplace's own probe uses: without the background-networking ones Chromium keeps
# trying to reach Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_missing() -> bool:
    return shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM)


needs_chromium = pytest.mark.skipif(
    chromium_missing() and not os.environ.get("CI"),
    reason="Chromium is not installed here (.ci/run installs it; CI never skips)",
)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium for one test (starting one takes about half a second)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one readable line each."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    found = results.response.get("violations", [])
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]
