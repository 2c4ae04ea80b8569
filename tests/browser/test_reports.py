"""The evaluation report rendered by chromium, not parsed: every bar of the score chart and
every point of the cost chart is drawn (an unquoted ``stroke=#222/>`` once left the SVG
elements unclosed, so chromium drew only the first bar and no point)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import BrowserContext

from modelyard.evals.html import render_html
from tests.browser.conftest import shoot
from tests.unit.evals.test_report import report

DRAWN = """(selector) => [...document.querySelectorAll(selector)].map((e) => {
    const box = e.getBoundingClientRect();
    // A line has no width or no height; an element swallowed by an open one has neither.
    return e.parentElement.tagName.toLowerCase() + ':' + (box.width > 0 || box.height > 0);
})"""


def test_every_bar_and_point_of_the_eval_report_is_drawn(browser: BrowserContext):
    # Playwright's sync API runs an event loop on this thread: the eval runs on another.
    with ThreadPoolExecutor(1) as pool:
        built = pool.submit(lambda: asyncio.run(report())).result()
    page = browser.new_page()
    page.set_content(render_html(built))
    deployments = len(built.summaries)
    bars = page.evaluate(DRAWN, 'svg[aria-label="scores"] rect')
    assert bars == ["svg:true"] * deployments
    whiskers = page.evaluate(DRAWN, 'svg[aria-label="scores"] line')
    assert len(whiskers) == 3 * deployments + 1 and set(whiskers) == {"svg:true"}
    points = page.evaluate(DRAWN, 'svg[aria-label="cost vs score"] circle')
    assert points == ["svg:true"] * deployments
    labels = page.evaluate(
        "[...document.querySelectorAll('svg[aria-label=\"cost vs score\"] text')]"
        ".map((t) => t.textContent)"
    )
    assert {s.deployment for s in built.summaries} <= set(labels)
    assert page.locator("table").first.inner_text().count("good") >= 2
    shoot(page, "eval-report")
