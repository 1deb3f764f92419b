"""The graph stays interactive with no kernel: an nbconvert HTML export of examples/01 and
a page written by `result.save("graph.html")`, opened from file:// in headless Chromium
with the network cut off (every request that is not a file:// URL is aborted and counted).

nbconvert is run with `--ExecutePreprocessor.store_widget_state=False`: with the widget
state stored (nbconvert's default for --execute), nbconvert's HTML picks the widget view and
loads @jupyter-widgets/html-manager and require.js from unpkg/cdnjs, so the page needs the
network and our text/html (which carries the front end) is not in it. A notebook saved from
JupyterLab (which does not save widget state by default) exports like the run here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cells import LECTURE
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_browser import ARTIFACTS, CHROMIUM_ARGS, TIMEOUT_MS, find_chromium

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "01_first_graph.ipynb"
A_RULE = "dL/da = dL/de * de/da = -2.0000 * -3.0000 = 6.0000"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium binary found (scripts/test.sh installs Debian's)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_offline(browser: Browser, path: Path) -> tuple[Page, list[str], list[str]]:
    """The file in a page that can reach nothing but file:// URLs."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_offline(True)
    blocked: list[str] = []

    def route(r):  # noqa: ANN001
        if r.request.url.startswith(("file:", "blob:", "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda m: errors.append(m.text) if "micrograd" in m.text else None)
    page.goto(path.as_uri())
    return page, blocked, errors


def check_steps_and_hover(page: Page, widget) -> None:  # noqa: ANN001
    steps = int(widget.get_attribute("data-steps"))
    assert steps == 4
    expect(widget).to_have_attribute("data-step", "4")
    ids = widget.evaluate("""root => Object.fromEntries(
        [...root.querySelectorAll("svg g[data-kind='value'][data-node-id]")].map(g => [
            g.querySelector("text.autograd-label").textContent.trim(),
            g.getAttribute("data-node-id")]))""")
    grad = lambda label: widget.locator(  # noqa: E731
        f"svg g[data-kind='value'][data-node-id='{ids[label]}'] text.autograd-grad")
    expect(grad("a")).to_have_text("grad 6.0000")
    widget.locator("button[data-action='back']").click()
    expect(widget).to_have_attribute("data-step", "3")
    expect(grad("a")).to_have_text("grad 0.0000")  # e's rule (the last step) undone
    expect(widget.locator(".autograd-step-caption")).to_contain_text("step 3 / 4")
    widget.locator("button[data-action='forward']").click()
    expect(widget).to_have_attribute("data-step", "4")
    expect(grad("a")).to_have_text("grad 6.0000")
    widget.locator(f"svg g[data-kind='value'][data-node-id='{ids['a']}']").hover()
    expect(widget.locator(".autograd-explain")).to_contain_text(A_RULE)


def test_nbconvert_html_export_is_interactive_offline(browser: Browser, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
         "--ExecutePreprocessor.store_widget_state=False", str(NOTEBOOK),
         "--output-dir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    export = tmp_path / "01_first_graph.html"
    text = export.read_text(encoding="utf-8")
    assert "autograd-inline-data" in text
    assert "unpkg.com" not in text and "jsdelivr" not in text  # no widget manager from a CDN

    page, blocked, errors = open_offline(browser, export)
    # the two %%autograd outputs: each shows one graph, the interactive one
    widgets = page.locator(".autograd-result .autograd-widget")
    expect(widgets).to_have_count(2)
    for result in page.locator(".autograd-result").all():
        visible_svgs = [s for s in result.locator("svg.autograd-svg, .autograd-graph svg").all()
                        if s.is_visible()]
        assert len(visible_svgs) == 1, result.inner_html()[:300]
    forward_only, lecture = widgets.nth(0), widgets.nth(1)
    expect(forward_only).to_have_attribute("data-steps", "0")
    lecture.scroll_into_view_if_needed()
    check_steps_and_hover(page, lecture)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-01-offline.png"), full_page=True)
    # only nbconvert's own template asked for the network (require.js and MathJax from
    # cdnjs), and was refused; the graph needed nothing
    assert all(re.match(r"https://cdnjs\.cloudflare\.com/ajax/libs/(require\.js|mathjax)/", url)
               for url in blocked), blocked
    assert not errors, errors
    page.context.close()


def test_saved_html_page_is_interactive_offline(ip, browser: Browser, tmp_path: Path) -> None:
    result = ip.run_cell_magic("autograd", "", LECTURE)
    path = result.save(tmp_path / "graph.html")
    page, blocked, errors = open_offline(browser, path)
    widget = page.locator(".autograd-widget")
    expect(widget).to_have_count(1)
    check_steps_and_hover(page, widget)
    expect(page.locator(".autograd-graph svg")).to_be_hidden()  # the static copy gave way
    page.screenshot(path=str(ARTIFACTS / "saved-graph-html.png"))
    assert not blocked and not errors, (blocked, errors)
    page.context.close()


def test_without_scripts_the_static_graph_shows(ip, browser: Browser, tmp_path: Path) -> None:
    result = ip.run_cell_magic("autograd", "", LECTURE)
    path = result.save(tmp_path / "graph.html")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(path.as_uri())
    expect(page.locator(".autograd-graph svg")).to_be_visible()
    expect(page.locator(".autograd-widget")).to_have_count(0)
    expect(page.locator(".autograd-graph svg text", has_text="grad 6.0000")).to_have_count(1)
    context.close()
