"""The Temporal web UI at the URL ``lanes dev`` prints shows a job's input decoded, under both loopback names.

History holds only ciphertext (``binary/encrypted``), so the UI can show a job's input only through the
codec server, and it calls the codec server from the browser: a cross-origin call that succeeds only if
the codec server's CORS answers the origin typed in the address bar, ``127.0.0.1`` or ``localhost``. Only
a real browser makes that call as a user's would, so this test runs a real ``lanes dev``, a real job and a
real headless Chromium: Debian's ``chromium`` driven by Playwright's driver (from its wheel; Playwright
downloads no browser here). The wait is on what the page shows: the job's input, or the UI's banner for an
unreachable codec server, whichever comes first; the deadline only bounds a hang.

Run by hand, the test leaves a screenshot of each page (``ui-127.0.0.1.png``, ``ui-localhost.png``) in its
``tmp_path`` (pytest keeps the last three runs' under its base temporary directory).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from lanes.dev.stack import free_port
from tests.dev_session import LANES, lanes_dev, run

DEADLINE_MS = 90_000
"""How long a page may take to show the job's input on a loaded machine: a bound on a hang, not a wait."""

CODEC_ERROR = "Codec Server could not connect"
"""The Temporal UI's banner when its calls to the codec server fail (CORS refused, server down)."""

LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
"""Chromium reaches these two names and nothing else: the UI also fetches a news feed from the internet,
and a test sends nothing beyond loopback (the rule covers IP literals too)."""

SHOWN = """([marker, banner]) => {
    const text = document.body ? document.body.innerText : "";
    return text.includes(marker) || text.includes(banner);
}"""
"""True once the page shows the decoded input or the codec error banner (rendered text: ``innerText``)."""


def _chromium() -> str:
    """Debian's ``chromium``; its absence fails the test in one line (CI must run it, never skip it)."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("headless Chromium is missing: apt-get install chromium", pytrace=False)
    return found


async def _page_text(browser: Browser, url: str, marker: str, screenshot: Path) -> tuple[str, list[int]]:
    """Open ``url``; once it shows ``marker`` or the codec error, its text and the codec's HTTP statuses.

    A screenshot of the page is saved either way, so a failure can be looked at.
    """
    page = await browser.new_page(viewport={"width": 1400, "height": 1600})
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if urlsplit(r.url).path == "/decode" else None)
    try:
        await page.goto(url, timeout=DEADLINE_MS)
        try:
            await page.wait_for_function(SHOWN, arg=[marker, CODEC_ERROR], polling=250, timeout=DEADLINE_MS)
        except PlaywrightTimeout:
            await page.screenshot(path=screenshot, full_page=True)
            text = await page.inner_text("body")
            pytest.fail(f"{url} showed neither the input nor {CODEC_ERROR!r} ({screenshot}):\n{text[:2000]}")
        text = await page.inner_text("body")
        await page.screenshot(path=screenshot, full_page=True)
        return text, statuses
    finally:
        await page.close()


@pytest.mark.long(20)
async def test_the_ui_lanes_dev_prints_shows_the_decoded_input_under_both_loopback_names(
    tmp_path: Path,
) -> None:
    chromium = _chromium()  # before anything starts: a missing browser is the one line to read
    marker = f"ui-marker-{uuid.uuid4().hex}"
    async with lanes_dev(tmp_path, "--ui-port", str(free_port()), "--duration", "1") as session:
        printed = re.search(r"^Temporal UI\s+http://127\.0\.0\.1:(\d+)\s", session.banner, re.M)
        assert printed is not None, session.banner
        submit = ["submit", "--job-type", "public_research", "--input", marker, "--wait", "--json"]
        code, out, err = await run([*LANES, *submit], session.directory)
        assert code == 0, err
        workflow_id = json.loads(out)["workflow_id"]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=[LOOPBACK_ONLY])
            try:
                for host in ("127.0.0.1", "localhost"):
                    url = f"http://{host}:{printed.group(1)}/namespaces/default/workflows/{workflow_id}"
                    shot = tmp_path / f"ui-{host}.png"
                    text, statuses = await _page_text(browser, url, marker, shot)
                    assert CODEC_ERROR not in text, f"{url}: the UI could not reach the codec server ({shot})"
                    assert marker in text, f"{url}: the input is not shown decoded ({shot})"
                    assert statuses, f"{url}: shown without a call to the codec server?"
                    assert set(statuses) == {200}, (url, statuses)
            finally:
                await browser.close()
