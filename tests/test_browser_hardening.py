"""Issue 13 in a real browser (JupyterLab 4, headless Chromium): a loop over shared leaves
drawn with a box per use, whose copies follow the node in hover and in the backward
replay; a label with a control character still draws (the SVG is well-formed XML).
Screenshots at 1400x900 with the file browser open, light and dark theme, go to
tests/artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    Server,
    Session,
    browser,
    chromium,
    jupyter,
    our_errors,
    put_notebook,
    run_all,
    session,
    set_server_theme,
)

pytestmark = pytest.mark.browser

NAME = "hardening.ipynb"
CELLS = [
    "%load_ext micrograd_magics",
    "%%autograd\nw = 0.9\nc = 0.1\ny = 1.0\nfor i in range(8): y = y * w + c",
    "from engine import Value",
    "%%autograd\na = Value(2.0, label='a\\x07b')\nb = Value(3.0, label='b')\nL = a * b",
]


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_shared_leaf_copies_and_control_character_label(  # noqa: F811
        jupyter: Server, session: Session, theme: str) -> None:  # noqa: F811
    put_notebook(jupyter, NAME, CELLS)  # the quiz test's helper: PUT through the contents API
    set_server_theme(jupyter, theme)
    run_all(session.page, jupyter, NAME, CELLS, widgets=2)
    page = session.page
    expect(page.locator("#filebrowser")).to_be_visible()  # the file browser is open
    loop, labelled = page.locator(".jp-Notebook .autograd-widget").all()

    w_id = loop.evaluate("""root => [...root.querySelectorAll("svg g[data-kind='value']")]
        .find(g => g.querySelector("text.autograd-label").textContent.trim() === "w")
        .getAttribute("data-node-id")""")
    boxes = loop.locator(f"svg g[data-kind='value'][data-node-id='{w_id}']")
    expect(boxes).to_have_count(8)  # one box per use of w in 8 steps
    expect(loop.locator(f"svg g.autograd-copy[data-node-id='{w_id}']")).to_have_count(7)
    # by hand: y stays 1.0 (0.9 * 1 + 0.1), so dy/dw = 1 + w + ... + w**7 = 5.6953
    expect(boxes.locator("text.autograd-grad")).to_have_text(["grad 5.6953"])
    # hover a copy: it is w (its explanation, every box of w marked)
    copy = loop.locator(f"svg g.autograd-copy[data-node-id='{w_id}']").nth(3)
    copy.scroll_into_view_if_needed()
    copy.hover()
    expect(loop.locator(".autograd-explain")).to_contain_text("w: data 0.9000, grad 5.6953")
    expect(loop.locator(f"svg g.autograd-hover[data-node-id='{w_id}']")).to_have_count(8)
    page.mouse.move(5, 5)
    # replay to step 0: w's grad 0; the step that reaches w marks all its boxes as updated
    loop.locator("button[data-action='first']").click()
    expect(boxes.locator("text.autograd-grad")).to_have_text(["grad 0.0000"])
    loop.locator("button[data-action='forward']").click()
    loop.locator("button[data-action='forward']").click()
    loop.locator("button[data-action='forward']").click()
    expect(loop.locator(f"svg g.autograd-updated[data-node-id='{w_id}']")).to_have_count(8)
    loop.scroll_into_view_if_needed()
    tag = "dark" if "Dark" in theme else "light"
    page.screenshot(path=str(ARTIFACTS / f"hardening-loop-{tag}.png"), scale="css")

    # the control character: drawn, readable as \x07
    labelled.scroll_into_view_if_needed()
    expect(labelled.locator("svg g[data-kind='value']")).to_have_count(3)
    expect(labelled.locator("svg text.autograd-label").first).to_have_text("a\\x07b")
    expect(labelled.locator(".autograd-error")).to_have_count(0)
    expect(labelled.locator(".autograd-step-caption")).to_contain_text("dL/d(a\\x07b) = b")
    page.screenshot(path=str(ARTIFACTS / f"hardening-label-{tag}.png"), scale="css")
    assert our_errors(session.errors) == [], session.errors
