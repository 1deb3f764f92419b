"""VS Code's renderer path: the notebook's saved widget state rendered by
`@jupyter-widgets/html-manager` (the standalone widget manager VS Code's notebook renderer
is built on), with anywidget's AMD module, from local files in headless Chromium with the
network cut off (no CDN).

examples/01 is executed by nbconvert (which stores the widget state) with nbconvert's
require.js and html-manager URLs pointed at local copies (npm, installed by scripts/test.sh
into .cache/npm) and a requirejs path for `anywidget` to the nbextension the anywidget
package installs. This is the manager and the saved state VS Code uses, not VS Code itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_path
from playwright.sync_api import expect, sync_playwright
from test_browser import ARTIFACTS, CHROMIUM_ARGS, TIMEOUT_MS, find_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
NPM = REPO / ".cache" / "npm" / "node_modules"
NOTEBOOK = REPO / "examples" / "01_first_graph.ipynb"
A_RULE = "dL/da = dL/de * de/da = -2.0000 * -3.0000 = 6.0000"


def anywidget_amd() -> Path | None:
    for base in jupyter_path("nbextensions"):
        candidate = Path(base) / "anywidget" / "index.js"
        if candidate.exists():
            return candidate
    return None


def test_saved_widget_state_renders_with_html_manager_offline(tmp_path: Path) -> None:
    chromium = find_chromium()
    manager = NPM / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js"
    requirejs = NPM / "requirejs" / "require.js"
    amd = anywidget_amd()
    if chromium is None or not manager.exists() or not requirejs.exists() or amd is None:
        pytest.skip(f"needs Chromium, {manager}, {requirejs} (scripts/test.sh installs them "
                    f"with npm) and anywidget's nbextension (found: {amd})")
    site = tmp_path / "site"
    (site / "anywidget").mkdir(parents=True)
    shutil.copy(manager, site / "embed-amd.js")
    shutil.copy(requirejs, site / "require.js")
    shutil.copy(amd, site / "anywidget" / "index.js")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(NOTEBOOK),
         "--output-dir", str(site), "--HTMLExporter.require_js_url=require.js",
         "--HTMLExporter.widget_renderer_url=embed-amd.js", "--HTMLExporter.mathjax_url="],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    page_file = site / "01_first_graph.html"
    text = page_file.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" in text  # the saved state is there
    assert "autograd-inline-data" not in text  # so nbconvert chose the widget view
    loader = '<script src="require.js"></script>'
    assert loader in text, "nbconvert's template changed: no require.js script to extend"
    text = text.replace(loader, loader + "<script>require.config({paths: "
                        "{anywidget: 'anywidget/index'}});</script>", 1)
    page_file.write_text(text, encoding="utf-8")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_offline(True)
        blocked: list[str] = []
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
            ("file:", "blob:", "data:")) else (blocked.append(r.request.url), r.abort()))
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.goto(page_file.as_uri())
        widgets = page.locator(".jupyter-widgets .autograd-widget")
        expect(widgets).to_have_count(2)
        lecture = page.locator(".autograd-widget[data-steps='4']")
        expect(lecture).to_have_attribute("data-step", "4")
        lecture.scroll_into_view_if_needed()
        ids = lecture.evaluate("""root => Object.fromEntries(
            [...root.querySelectorAll("svg g[data-kind='value'][data-node-id]")].map(g => [
                g.querySelector("text.autograd-label").textContent.trim(),
                g.getAttribute("data-node-id")]))""")
        a_grad = lecture.locator(
            f"svg g[data-kind='value'][data-node-id='{ids['a']}'] text.autograd-grad")
        expect(a_grad).to_have_text("grad 6.0000")
        lecture.locator("button[data-action='back']").click()
        expect(lecture).to_have_attribute("data-step", "3")
        expect(a_grad).to_have_text("grad 0.0000")
        lecture.locator("button[data-action='last']").click()
        lecture.locator(f"svg g[data-kind='value'][data-node-id='{ids['a']}']").hover()
        expect(lecture.locator(".autograd-explain")).to_contain_text(A_RULE)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html-manager-offline.png"), full_page=True)
        browser.close()
    assert not blocked, blocked
    assert not [e for e in errors if "autograd" in e or "anywidget" in e], errors
