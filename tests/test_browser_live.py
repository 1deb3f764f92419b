"""%%autograd --live in a real browser (JupyterLab 4, headless Chromium, 1400x900, file
browser open, light and dark theme): example 04's training loop (40 steps of
MLP(2, [16, 16, 1]) on 100 points) runs while the page shows its loss curve growing
(before the cell finishes), then the final state: 40 steps, the loss the cell printed,
three layers' heatmaps, the decision boundary drawn at the last step, exactly one view in
the cell's output. Screenshots go to tests/artifacts/; the light one mid-training also to
docs/live.png (the README's picture)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Locator, expect
from test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    REPO,
    Server,
    Session,
    browser,
    chromium,
    contrast,
    jupyter,
    luminance,
    our_errors,
    put_notebook,
    save_cropped,
    session,
    set_server_theme,
    start_run_all,
)

pytestmark = pytest.mark.browser

NAME = "live.ipynb"
DOCS_IMAGE = REPO / "docs" / "live.png"
RUNNING = re.compile(r"\[\*\]")
EXECUTED = re.compile(r"\[\s*\d+\s*\]")


# plain Values: the named leaves as lines, and the last step's small graph below the view
VALUES_LOOP = """\
%%autograd --live
w = 1.0
b = 0.0
for i in range(30):
    L = (w * 2 + b - 3) ** 2
    w.grad = 0.0
    b.grad = 0.0
    L.backward()
    w.data -= 0.05 * w.grad
    b.data -= 0.05 * b.grad
"""


def example_cells() -> list[str]:
    """Example 04's first three code cells as they are (imports, data, the --live loop),
    then a loop on plain Values."""
    notebook = json.loads((REPO / "examples" / "04_training_an_mlp.ipynb").read_text())
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code[2].startswith("%%autograd --live")
    return code[:3] + [VALUES_LOOP]


def steps_of(view: Locator) -> int:
    return int(view.get_attribute("data-steps") or 0)


def curve_points(view: Locator) -> int:
    return int(view.locator("svg.autograd-live-loss polyline").get_attribute("data-points"))


@pytest.fixture(params=["JupyterLab Light", "JupyterLab Dark"])
def theme(request: pytest.FixtureRequest) -> str:
    return request.param


def test_live_view_grows_while_the_loop_runs(jupyter: Server, session: Session,  # noqa: F811
                                             theme: str) -> None:
    cells = example_cells()
    put_notebook(jupyter, NAME, cells)
    set_server_theme(jupyter, theme)
    tag = "dark" if "Dark" in theme else "light"
    page = session.page
    prompts = start_run_all(page, jupyter, NAME, len(cells), workspace=f"live-{tag}")
    expect(page.locator("#filebrowser")).to_be_visible()

    # while the cell runs: the view is there and its curve grows
    loop_cell = page.locator(".jp-Notebook .jp-CodeCell").nth(2)
    view = loop_cell.locator(".autograd-live")
    expect(view).to_have_attribute("data-status", "running", timeout=60_000)
    page.wait_for_function("el => Number(el.dataset.steps) >= 3", arg=view.element_handle())
    first_steps, first_points = steps_of(view), curve_points(view)
    expect(prompts.nth(2)).to_have_text(RUNNING)
    page.wait_for_function(f"el => Number(el.dataset.steps) >= {first_steps + 5}",
                           arg=view.element_handle())
    view.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"live-running-{tag}.png"))
    if tag == "light":
        save_cropped(page, view, "live-widget.png", DOCS_IMAGE)
    later_steps, later_points = steps_of(view), curve_points(view)
    assert view.get_attribute("data-status") == "running"
    expect(prompts.nth(2)).to_have_text(RUNNING)  # the cell has not finished
    assert later_steps > first_steps and later_points > first_points >= 3, (
        first_steps, first_points, later_steps, later_points)

    # the end: every step, the loss the cell printed, the layers and the boundary
    expect(prompts.nth(2)).to_have_text(EXECUTED, timeout=180_000)
    view = loop_cell.locator(".autograd-live")  # the output was replaced by the final one
    expect(view).to_have_attribute("data-status", "done")
    expect(view).to_have_attribute("data-steps", "40")
    printed = re.search(r"final loss (\d\.\d{4})", loop_cell.inner_text())
    assert printed is not None
    expect(view.locator(".autograd-live-header")).to_contain_text(f"loss {printed[1]}")
    assert curve_points(view) == 40
    layers = view.locator(".autograd-live-layer")
    expect(layers).to_have_count(3)
    expect(layers.nth(1).locator("svg.autograd-live-heatmap[data-kind='grad'] rect")
           ).to_have_count(16 * 17)
    for kind in ("data", "grad"):
        heatmap = layers.nth(0).locator(f"svg.autograd-live-heatmap[data-kind='{kind}']")
        expect(heatmap.locator("rect.autograd-live-max")).to_have_count(1)
        expect(heatmap.locator("rect.autograd-live-min")).to_have_count(1)
    canvas = view.locator("canvas.autograd-live-boundary")
    expect(canvas).to_have_attribute("data-drawn-at", "40")
    # the page's MLP, run on the weights of the last backward, classifies the points as
    # the cell's own last forward pass did (the accuracy it printed)
    accuracy = re.search(r"accuracy (\d+)%", loop_cell.inner_text())
    assert accuracy is not None
    expect(canvas).to_have_attribute("data-accuracy", f"{int(accuracy[1]) / 100:.4f}")
    # one view of the training in the cell's output, no second copy from the result
    expect(loop_cell.locator(".autograd-live")).to_have_count(1)
    expect(loop_cell.locator(".autograd-live-static")).to_have_count(0)

    # the log-scale toggle redraws the curve
    curve = view.locator("svg.autograd-live-loss")
    ticks = curve.locator("text.autograd-live-tick")
    top, middle, bottom = (float(ticks.nth(i).text_content()) for i in range(3))
    assert middle == pytest.approx((top + bottom) / 2, abs=1e-3)
    view.locator("input.autograd-live-log").check()
    # on a log axis the middle is the geometric mean
    page.wait_for_function("el => el.dataset.scale === 'log'", arg=curve.element_handle())
    assert float(ticks.nth(1).text_content()) == pytest.approx((top * bottom) ** 0.5,
                                                               abs=2e-4)
    view.locator("input.autograd-live-log").uncheck()
    expect(curve).to_have_attribute("data-scale", "linear")

    view.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"live-done-{tag}.png"))
    colours = view.evaluate("""root => {
        const css = (el, p) => getComputedStyle(el)[p];
        return {text: css(root.querySelector('.autograd-live-header'), 'color'),
                tick: css(root.querySelector('.autograd-live-tick'), 'fill'),
                background: css(root, 'backgroundColor')};
    }""")
    light_page = tag == "light"
    assert (luminance(colours["background"]) > 0.5) == light_page, colours
    assert contrast(colours["text"], colours["background"]) >= 4.5, colours
    assert contrast(colours["tick"], colours["background"]) >= 3.0, colours

    # plain Values: two lines (w, b), and the last step's graph (it fits) under the view
    expect(prompts.nth(3)).to_have_text(EXECUTED, timeout=60_000)
    values_cell = page.locator(".jp-Notebook .jp-CodeCell").nth(3)
    values = values_cell.locator(".autograd-live")
    expect(values).to_have_attribute("data-steps", "30")
    expect(values.locator("svg.autograd-live-lines polyline")).to_have_count(2)
    expect(values.locator(".autograd-live-layer")).to_have_count(0)
    graph = values_cell.locator(".autograd-widget")
    expect(graph).to_have_count(1)
    expect(graph.locator("svg g[data-kind='value'] text.autograd-label",
                         has_text=re.compile(r"^w$"))
           ).to_have_count(1)
    expect(page.locator(".jp-Notebook .autograd-live")).to_have_count(2)  # one per cell
    values.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"live-values-{tag}.png"))
    assert our_errors(session.errors) == [], session.errors
