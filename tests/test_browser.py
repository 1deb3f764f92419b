"""The widget in a real browser: JupyterLab 4 and Notebook 7 in headless Chromium.

A JupyterLab server runs on 127.0.0.1 (free port, random token) over a temporary folder
holding a copy of examples/01_first_graph.ipynb, with every Jupyter/IPython config,
runtime, workspace and settings folder temporary too. Playwright drives Debian's Chromium
(`/usr/bin/chromium`; Playwright's own browser download is not needed), runs the notebook
and checks what a learner sees: the lecture graph with its gradients, the chain-rule text
on hover, the backward replay buttons, the SVG download, and no page errors from the
widget. Screenshots go to tests/artifacts/ (gitignored); the cropped lecture widget also
goes to docs/widget.png, the README's picture.

Skipped only when no Chromium binary is found (scripts/test.sh installs Debian's).
See /work/shared/BROWSER_TESTING.md for the pitfalls these steps avoid.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab_server import (  # noqa: F401  (put_notebook, set_server_theme: the other tests' import)
    CHROMIUM_ARGS,
    Server,
    find_chromium,
    free_port,
    put_notebook,
    set_server_theme,
    start_lab,
    stop_server,
)
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "01_first_graph.ipynb"
EXAMPLES = sorted((REPO / "examples").glob("*.ipynb"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_IMAGE = REPO / "docs" / "widget.png"

TIMEOUT_MS = 45_000  # any single wait: generous for a loaded CI box (a run takes ~30-50 s)


def code_cells(notebook: Path) -> int:
    return sum(cell["cell_type"] == "code"
               for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"])


CODE_CELLS = code_cells(NOTEBOOK)
LABELS = {"a", "b", "c", "d", "e", "f", "L"}
A_RULE = "dL/da = dL/de * de/da = -2.0000 * -3.0000 = 6.0000"
EXECUTED = re.compile(r"\[\s*\d+\s*\]")
STARTED = re.compile(r"\[\s*(\*|\d+)\s*\]")
# an error from our front end: it names us, or its stack runs through a blob: URL (anywidget
# loads widget.js as a blob module, so a bare TypeError in it carries no other name)
OUR_CODE = re.compile(r"autograd|micrograd|widget|blob:", re.I)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium binary found (looked for $CHROMIUM, /usr/bin/chromium, "
                    "chromium, chromium-browser, google-chrome); "
                    "install it with `apt-get install chromium` (scripts/test.sh does)")
    return path


@pytest.fixture(scope="module")
def jupyter(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A JupyterLab server (which also serves Notebook 7) over a copy of the examples."""
    tmp = tmp_path_factory.mktemp("jupyter")
    root = tmp / "notebooks"
    root.mkdir()
    for notebook in EXAMPLES:
        shutil.copy(notebook, root / notebook.name)
    process, server = start_lab(tmp, root)
    try:
        yield server
    finally:
        stop_server(process, server)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(server.log, ARTIFACTS / "jupyter-server.log")


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Session:
    page: Page
    errors: list[str]


@pytest.fixture
def session(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A fresh page; page errors and console errors are collected, a last screenshot kept."""
    # device scale 2: a sharp docs/widget.png (page screenshots are taken at CSS scale)
    context = browser.new_context(viewport={"width": 1600, "height": 1000},
                                  device_scale_factor=2, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(
        f"pageerror: {error.name}: {error.message}\n{error.stack or ''}"))
    page.on("console", lambda message: errors.append(f"console.error: {message.text}")
            if message.type == "error" else None)
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"),
                                      dialog.dismiss()))
    try:
        yield Session(page, errors)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:  # the state the test ended in, passed or failed
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), scale="css")
        except Exception:  # noqa: BLE001  (a closed or crashed page: nothing to keep)
            pass
        context.close()


# --- steps shared by the two front ends ------------------------------------------------

def open_and_run_all(page: Page, url: str, cells: int = CODE_CELLS) -> None:
    """Open the notebook, wait for its kernel, Run → Run All, and see execution start."""
    # The indicator reads "idle" before any kernel exists: wait for the kernel's socket.
    with page.expect_websocket(lambda ws: "/api/kernels/" in ws.url, timeout=TIMEOUT_MS):
        page.goto(url)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    expect(prompts.first).to_be_visible()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    # Run All really started: the first cell's prompt turns to [*] or [N] soon
    expect(prompts.first).to_have_text(STARTED, timeout=10_000)
    # and every code cell ran
    expect(prompts).to_have_count(cells)
    for i in range(cells):
        expect(prompts.nth(i)).to_have_text(EXECUTED, timeout=120_000)


def lecture_widget(page: Page) -> Locator:
    """The widget of the `%%autograd` cell with backward (the one with steps)."""
    widget = page.locator(
        ".jp-Notebook .jp-CodeCell .autograd-widget[data-steps]:not([data-steps='0'])")
    expect(widget).to_have_count(1)
    widget.scroll_into_view_if_needed()
    expect(widget.locator("svg g[data-kind='value'][data-node-id]")).to_have_count(len(LABELS))
    return widget


def node_ids(widget: Locator) -> dict[str, str]:
    """label -> model id of every value node in the widget's SVG."""
    return widget.evaluate("""root => Object.fromEntries(
        [...root.querySelectorAll("svg g[data-kind='value'][data-node-id]")].map(g => [
            g.querySelector("text.autograd-label").textContent.trim(),
            g.getAttribute("data-node-id")]))""")


def value_group(widget: Locator, node_id: str) -> Locator:
    return widget.locator(f"svg g[data-kind='value'][data-node-id='{node_id}']")


def grad_text(widget: Locator, node_id: str) -> Locator:
    return value_group(widget, node_id).locator("text.autograd-grad")


def current_value_ids(widget: Locator) -> list[str]:
    return widget.evaluate("""root => [...root.querySelectorAll(
        "svg g.autograd-current[data-kind='value']")].map(g => g.getAttribute("data-node-id"))""")


def our_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if OUR_CODE.search(e)]


# --- the tests ---------------------------------------------------------------------------

def test_lab_widget_shows_and_steps_through_backward(jupyter: Server, session: Session) -> None:
    page = session.page
    ARTIFACTS.mkdir(exist_ok=True)
    open_and_run_all(page, jupyter.url(f"lab/tree/{NOTEBOOK.name}"))

    # the forward-only cell: a graph, every gradient 0
    forward_only = page.locator(".jp-Notebook .autograd-widget[data-steps='0']")
    expect(forward_only).to_have_count(1)
    expect(forward_only.locator("svg text.autograd-grad")).to_have_text(
        ["grad 0.0000"] * len(LABELS))

    # one graph per output: JupyterLab shows the widget, not also the text/html (which
    # carries the same front end for pages with no kernel)
    expect(page.locator(".jp-Notebook .autograd-widget")).to_have_count(2)
    expect(page.locator(".jp-Notebook .autograd-result")).to_have_count(0)
    expect(page.locator(".jp-Notebook .jp-OutputArea-output svg.autograd-svg")).to_have_count(2)

    # the lecture cell: every label, the final gradients, the last step shown
    widget = lecture_widget(page)
    ids = node_ids(widget)
    assert set(ids) == LABELS, ids
    steps = widget.get_attribute("data-steps")
    assert steps is not None and int(steps) >= 3, steps
    expect(widget).to_have_attribute("data-step", steps)
    for label, grad in [("a", "6.0000"), ("b", "-4.0000"), ("c", "-2.0000"),
                        ("d", "-2.0000"), ("e", "-2.0000"), ("f", "4.0000"), ("L", "1.0000")]:
        expect(grad_text(widget, ids[label])).to_have_text(f"grad {grad}")
    expect(value_group(widget, ids["a"]).locator("text.autograd-data")).to_have_text(
        "data 2.0000")
    expect(widget.locator(".autograd-step-caption")).to_contain_text(f"step {steps} / {steps}")
    page.screenshot(path=str(ARTIFACTS / "lab-run-all.png"), full_page=True, scale="css")

    # hover a: its chain-rule step, and a's group is marked as hovered
    a = value_group(widget, ids["a"])
    a.hover()
    explain = widget.locator(".autograd-explain")
    expect(explain).to_contain_text(A_RULE)
    expect(explain).to_contain_text("a: data 2.0000, grad 6.0000 (leaf)")
    expect(a).to_have_class(re.compile(r"\bautograd-hover\b"))
    page.screenshot(path=str(ARTIFACTS / "lab-hover-a.png"), full_page=True, scale="css")
    save_docs_image(page, widget)

    # replay backward: before it every grad is 0 and nothing is current
    caption = widget.locator(".autograd-step-caption")
    button = lambda action: widget.locator(f"button[data-action='{action}']")  # noqa: E731
    button("first").click()
    expect(widget).to_have_attribute("data-step", "0")
    expect(grad_text(widget, ids["a"])).to_have_text("grad 0.0000")
    expect(grad_text(widget, ids["L"])).to_have_text("grad 0.0000")
    expect(caption).to_contain_text(f"step 0 / {steps}")
    expect(widget.locator("svg .autograd-current")).to_have_count(0)
    expect(button("first")).to_be_disabled()
    expect(button("back")).to_be_disabled()

    # forward one step at a time: the highlight moves from L towards the leaves
    seen_captions = [caption.inner_text()]
    seen_current = []
    for k in range(1, int(steps) + 1):
        button("forward").click()
        expect(widget).to_have_attribute("data-step", str(k))
        expect(caption).not_to_have_text(seen_captions[-1])
        seen_captions.append(caption.inner_text())
        current = current_value_ids(widget)
        assert len(current) == 1, (k, current)
        seen_current.append(current[0])
        if k == 1:  # the seed: dL/dL = 1 on L
            assert current == [ids["L"]], current
            expect(grad_text(widget, ids["L"])).to_have_text("grad 1.0000")
            expect(grad_text(widget, ids["d"])).to_have_text("grad 0.0000")
        if k < int(steps):
            expect(grad_text(widget, ids["a"])).to_have_text("grad 0.0000")
    # the last step runs e's rule (e = a * b), which gives a and b their gradients
    assert seen_current[-1] == ids["e"], seen_current
    assert len(set(seen_current)) >= 3, seen_current  # the highlight really moved
    expect(grad_text(widget, ids["a"])).to_have_text("grad 6.0000")
    expect(grad_text(widget, ids["b"])).to_have_text("grad -4.0000")
    expect(value_group(widget, ids["a"])).to_have_class(re.compile(r"\bautograd-updated\b"))
    expect(button("forward")).to_be_disabled()

    # back one step: a's gradient is 0 again, the highlight moves back
    button("back").click()
    expect(widget).to_have_attribute("data-step", str(int(steps) - 1))
    expect(grad_text(widget, ids["a"])).to_have_text("grad 0.0000")
    expect(caption).to_have_text(seen_captions[-2])
    assert current_value_ids(widget) == [seen_current[-2]]
    assert seen_current[-2] != ids["e"]

    # the slider and the last button
    widget.locator("input[type=range].autograd-slider").fill("1")
    expect(widget).to_have_attribute("data-step", "1")
    expect(grad_text(widget, ids["L"])).to_have_text("grad 1.0000")
    button("last").click()
    expect(widget).to_have_attribute("data-step", steps)
    expect(grad_text(widget, ids["a"])).to_have_text("grad 6.0000")

    # download: the graph as an SVG file (the laid-out SVG with the final gradients)
    with page.expect_download() as download_info:
        button("download").click()
    download = download_info.value
    assert download.suggested_filename == "autograd-graph.svg"
    saved = ARTIFACTS / "lab-download.svg"
    download.save_as(saved)
    svg = saved.read_text(encoding="utf-8")
    assert svg.startswith("<?xml"), svg[:200]
    assert "<svg" in svg and svg.rstrip().endswith("</svg>"), svg[-200:]
    assert "grad 6.0000" in svg
    for label in LABELS:
        assert f">{label}</text>" in svg, label

    assert not our_errors(session.errors), session.errors


def test_notebook7_widget_renders(jupyter: Server, session: Session) -> None:
    page = session.page
    ARTIFACTS.mkdir(exist_ok=True)
    open_and_run_all(page, jupyter.url(f"notebooks/{NOTEBOOK.name}"))
    widget = lecture_widget(page)
    ids = node_ids(widget)
    assert set(ids) == LABELS, ids
    expect(grad_text(widget, ids["a"])).to_have_text("grad 6.0000")
    value_group(widget, ids["a"]).hover()
    expect(widget.locator(".autograd-explain")).to_contain_text(A_RULE)
    page.screenshot(path=str(ARTIFACTS / "notebook7-run-all.png"), full_page=True, scale="css")
    assert not our_errors(session.errors), session.errors


def save_docs_image(page: Page, widget: Locator) -> None:
    """The lecture cell's output (the widget, a hovered) -> artifacts and docs/widget.png."""
    output = widget.locator("xpath=ancestor::*[contains(@class, 'jp-OutputArea-output')][1]")
    target = output if output.count() else widget
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    # a little white around the widget, but not the cell's input area above it
    margin = 8
    top = box["y"] - margin
    source = widget.locator("xpath=ancestor::*[contains(@class, 'jp-CodeCell')][1]"
                            "//*[contains(@class, 'jp-Cell-inputWrapper')]")
    source_box = source.bounding_box() if source.count() == 1 else None
    if source_box is not None:
        top = max(top, source_box["y"] + source_box["height"] + 1)
    path = ARTIFACTS / "lab-widget.png"
    page.screenshot(path=str(path), clip={
        "x": max(box["x"] - margin, 0), "y": max(top, 0), "width": box["width"] + 2 * margin,
        "height": box["y"] + box["height"] + margin - max(top, 0)})
    if not same_picture(path, DOCS_IMAGE):
        DOCS_IMAGE.parent.mkdir(exist_ok=True)
        shutil.copy(path, DOCS_IMAGE)


def start_run_all(page: Page, server: Server, name: str, cells: int,
                  workspace: str | None = None) -> Locator:
    """Open notebook `name` in JupyterLab at 1400x900, in a workspace of its own (Lab would
    reopen another test's notebook beside it), wait for its kernel, and Run -> Run All.
    Returns the cells' prompts."""
    page.set_viewport_size({"width": 1400, "height": 900})
    with page.expect_websocket(lambda ws: "/api/kernels/" in ws.url):
        page.goto(server.url(f"lab/workspaces/{workspace or name.split('.')[0]}/tree/{name}"))
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    expect(prompts).to_have_count(cells)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    return prompts


def run_all(page: Page, server: Server, name: str, cells: list[str], widgets: int) -> None:
    """start_run_all, then every cell ran and the page shows this many of our widgets."""
    prompts = start_run_all(page, server, name, len(cells))
    for i in range(len(cells)):
        expect(prompts.nth(i)).to_have_text(EXECUTED)
    expect(page.locator(".jp-Notebook .autograd-widget")).to_have_count(widgets)


def save_cropped(page: Page, target: Locator, artifact: str, docs_image: Path) -> None:
    """target's box and a small margin -> tests/artifacts/<artifact>, and to docs_image
    when the picture changed (the README's pictures)."""
    box = target.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    margin = 8
    path = ARTIFACTS / artifact
    page.screenshot(path=str(path), clip={
        "x": max(box["x"] - margin, 0), "y": max(box["y"] - margin, 0),
        "width": box["width"] + 2 * margin, "height": box["height"] + 2 * margin})
    if not same_picture(path, docs_image):
        docs_image.parent.mkdir(exist_ok=True)
        shutil.copy(path, docs_image)


def same_picture(new: Path, old: Path) -> bool:
    """True when `old` exists and differs from `new` by no more than anti-aliasing noise
    (between runs Chromium shades a few hundred edge pixels slightly differently), so
    docs/widget.png only changes in git when the widget looks different."""
    if not old.exists():
        return False
    if new.read_bytes() == old.read_bytes():
        return True
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return False
    with Image.open(new) as a, Image.open(old) as b:
        if a.size != b.size:
            return False
        diff = ImageChops.difference(a.convert("L"), b.convert("L"))
        changed = diff.point(lambda v: 255 if v > 40 else 0).histogram()[255]
    return changed <= 3


# --- every example's graphs fit a 1400 x 900 window with the file browser open -----------

FIT_VIEWPORT = {"width": 1400, "height": 900}

# For each widget on the page: its output area, viewport, SVG and comparison table boxes,
# the zoom, and whether the viewport scrolls sideways (something is hidden to the right).
BOXES = """root => {
    const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                                width: r.width, height: r.height}; };
    const output = root.closest('.jp-OutputArea-output');
    const viewport = root.querySelector('.autograd-viewport');
    const side = root.querySelector('.autograd-side');
    return {output: box(output), widget: box(root), viewport: box(viewport),
            svg: box(root.querySelector('.autograd-canvas svg')),
            table: side && side.style.display !== 'none' ? box(side) : null,
            stacked: root.querySelector('.autograd-body').classList.contains('autograd-stacked'),
            zoom: Number(root.dataset.zoom), fit: root.dataset.fit === '1',
            hidden: viewport.scrollWidth - viewport.clientWidth};
}"""


def inside(inner: dict, outer: dict, slack: float = 1.0) -> bool:
    return (inner["left"] >= outer["left"] - slack and inner["right"] <= outer["right"] + slack
            and inner["top"] >= outer["top"] - slack
            and inner["bottom"] <= outer["bottom"] + slack)


@pytest.fixture
def lab_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A 1400 x 900 page (device scale 1), errors collected, a last screenshot kept."""
    context = browser.new_context(viewport=FIT_VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(
        f"pageerror: {error.name}: {error.message}\n{error.stack or ''}"))
    try:
        yield Session(page, errors)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"))
        except Exception:  # noqa: BLE001  (a closed or crashed page: nothing to keep)
            pass
        context.close()


def open_file_browser(page: Page) -> None:
    """JupyterLab's left sidebar with the file browser, as a learner has it."""
    browser_panel = page.locator("#filebrowser")
    if not browser_panel.is_visible():
        page.locator(".jp-SideBar.jp-mod-left [data-id='filebrowser']").click()
    expect(browser_panel).to_be_visible()
    box = browser_panel.bounding_box()
    assert box is not None and box["width"] > 150, box


def check_widgets_fit(page: Page, name: str) -> list[dict]:
    """Every widget of the page: the SVG lies inside its viewport (nothing hidden to the
    right), the viewport and the table inside the output area, zoom at most 100 %."""
    widgets = page.locator(".jp-Notebook .jp-CodeCell .autograd-widget")
    count = widgets.count()
    assert count >= 1, name
    found = []
    for i in range(count):
        widget = widgets.nth(i)
        widget.scroll_into_view_if_needed()
        expect(widget).to_have_attribute("data-fit", "1")
        boxes = widget.evaluate(BOXES)
        where = f"{name}, widget {i + 1}: {boxes}"
        assert 0 < boxes["zoom"] <= 1.0, where
        assert inside(boxes["svg"], boxes["viewport"]), where
        assert boxes["hidden"] <= 1, where
        assert inside(boxes["viewport"], boxes["output"]), where
        assert boxes["widget"]["right"] <= boxes["output"]["right"] + 1, where
        if boxes["table"]:
            assert inside(boxes["table"], boxes["output"]), where
            if not boxes["stacked"]:  # beside: the graph at 100 %, left of the table
                assert boxes["zoom"] == 1.0 and boxes["viewport"]["right"] <= boxes[
                    "table"]["left"], where
        found.append(boxes)
    return found


@pytest.mark.parametrize("notebook", [n.name for n in EXAMPLES])
def test_example_graphs_fit_with_the_file_browser_open(
        jupyter: Server, lab_page: Session, notebook: str) -> None:
    page = lab_page.page
    ARTIFACTS.mkdir(exist_ok=True)
    stem = notebook.removesuffix(".ipynb")
    # a workspace of its own: only this notebook open (no tabs left by other tests)
    open_and_run_all(page, jupyter.url(f"lab/workspaces/{stem}/tree/{notebook}"),
                     cells=code_cells(REPO / "examples" / notebook))
    open_file_browser(page)
    found = check_widgets_fit(page, notebook)
    for i in range(len(found)):
        widget = page.locator(".jp-Notebook .jp-CodeCell .autograd-widget").nth(i)
        widget.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"fit-{stem}-{i + 1}.png"))
    widgets = page.locator(".jp-Notebook .jp-CodeCell .autograd-widget")
    if notebook.startswith("02"):
        # the --torch cell: its table and graph both in the output, table below the graph
        with_table = [b for b in found if b["table"]]
        assert with_table and all(b["stacked"] for b in with_table), with_table
        # a graph scaled down to fit: "100 %" shows it at full size (sideways scrolling),
        # "fit" brings it back; pressing "fit" again changes nothing
        shrunk = next(i for i, b in enumerate(found) if b["zoom"] < 0.99)
        widget = widgets.nth(shrunk)
        widget.scroll_into_view_if_needed()
        widget.locator("button[data-action='actual']").click()
        expect(widget).to_have_attribute("data-zoom", "1.00")
        expect(widget.locator(".autograd-zoom")).to_have_text("100 %")
        assert widget.evaluate(BOXES)["hidden"] > 10
        for _ in range(2):
            widget.locator("button[data-action='fit']").click()
            expect(widget).to_have_attribute("data-fit", "1")
            assert widget.evaluate(BOXES)["zoom"] == pytest.approx(found[shrunk]["zoom"],
                                                                  abs=0.01)
    if notebook.startswith("03"):
        # a graph that fits: "fit" leaves it at 100 %, no overflow
        fitting = next(i for i, b in enumerate(found) if b["zoom"] == 1.0)
        widget = widgets.nth(fitting)
        widget.scroll_into_view_if_needed()
        widget.locator("button[data-action='fit']").click()
        boxes = widget.evaluate(BOXES)
        assert boxes["zoom"] == 1.0 and boxes["hidden"] <= 1, boxes
    assert not our_errors(lab_page.errors), lab_page.errors


# --- JupyterLab's dark theme: the widget's text, nodes, highlights and table readable ---

# The colours a learner reads, as the browser computes them: a value node's text and
# outline, the viewport behind them, the table's text, the hover box's text.
COLOURS = """root => {
    const css = (el, prop) => el ? getComputedStyle(el)[prop] : null;
    const value = root.querySelector("svg g[data-kind='value']");
    return {
        text: css(value.querySelector('text'), 'fill'),
        outline: css(value.querySelector('polygon'), 'stroke'),
        edge: css(root.querySelector("svg g[data-kind='edge'] path"), 'stroke'),
        background: css(root.querySelector('.autograd-viewport'), 'backgroundColor'),
        graphBackground: css(root.querySelector('svg g.graph > polygon'), 'fill'),
        table: css(root.querySelector('.autograd-compare td'), 'color'),
        explain: css(root.querySelector('.autograd-explain'), 'color'),
        caption: css(root.querySelector('.autograd-step-caption'), 'color'),
    };
}"""


def luminance(colour: str) -> float:
    """Relative luminance (WCAG) of an `rgb(...)`/`rgba(...)` string."""
    numbers = [float(x) for x in re.findall(r"[\d.]+", colour)[:3]]
    assert len(numbers) == 3, colour

    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = map(channel, numbers)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted([luminance(a), luminance(b)], reverse=True)
    return (la + 0.05) / (lb + 0.05)


def set_theme(page: Page, theme: str) -> None:
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme")).first.hover()
    page.locator(".lm-Menu-item", has_text=theme).first.click()
    expect(page.locator("body")).to_have_attribute(
        "data-jp-theme-light", "false" if "Dark" in theme else "true")


def test_widget_is_readable_in_the_dark_theme(jupyter: Server, lab_page: Session) -> None:
    page = lab_page.page
    notebook = "02_neuron.ipynb"
    open_and_run_all(page, jupyter.url(f"lab/workspaces/dark/tree/{notebook}"),
                     cells=code_cells(REPO / "examples" / notebook))
    open_file_browser(page)
    widget = page.locator(".jp-Notebook .jp-CodeCell .autograd-widget").last  # --torch
    widget.scroll_into_view_if_needed()
    light = widget.evaluate(COLOURS)
    try:
        set_theme(page, "JupyterLab Dark")
        widget.scroll_into_view_if_needed()
        # a highlight on: hover a leaf, step to the middle so a node is current
        widget.locator("button[data-action='first']").click()
        widget.locator("button[data-action='forward']").click()
        widget.locator("button[data-action='forward']").click()
        widget.locator("svg g[data-kind='value']").first.hover()
        page.wait_for_timeout(300)  # the theme's CSS transition
        dark = widget.evaluate(COLOURS)
        page.screenshot(path=str(ARTIFACTS / "dark-02_neuron.png"))
        widget.screenshot(path=str(ARTIFACTS / "dark-02_neuron-widget.png"))
    finally:
        set_theme(page, "JupyterLab Light")
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(ARTIFACTS / "light-02_neuron-widget.png"))
    assert luminance(dark["background"]) < 0.1 < luminance(light["background"]), (light, dark)
    assert luminance(dark["graphBackground"]) < 0.1, dark
    # WCAG AA: 4.5:1 for text, 3:1 for lines and outlines (a highlighted outline included)
    for part, least in [("text", 4.5), ("table", 4.5), ("explain", 4.5), ("caption", 4.5),
                        ("outline", 3.0), ("edge", 3.0)]:
        assert contrast(dark[part], dark["background"]) >= least, (part, dark)
        assert contrast(light[part], light["background"]) >= least, (part, light)
    assert not our_errors(lab_page.errors), lab_page.errors
