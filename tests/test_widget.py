"""AutogradWidget without a browser: synced state, the step replay, the front-end files and
their documented selectors, and the JS number format against Python's (with node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cells import LECTURE, run_autograd

from micrograd_magics.graph import format_number
from micrograd_magics.result import AutogradResult
from micrograd_magics.widget import STATIC, AutogradWidget

SELECTORS = [".autograd-widget", "data-node-id", ".autograd-explain", 'data-action="first"',
             '"back"', '"forward"', '"last"', '"download"', "input[type=range].autograd-slider",
             ".autograd-step-caption", "text.autograd-label / .autograd-data / .autograd-grad",
             ".autograd-path", ".autograd-current", ".autograd-mismatch", ".autograd-compare"]


def autograd(ip, cell: str, line: str = "") -> AutogradResult:
    return run_autograd(ip, cell, line)


def by_label(widget: AutogradWidget, grads: dict[str, float]) -> dict[str, float]:
    names = {n["id"]: n["name"] for n in widget.model["nodes"]}
    return {names[i]: float(g) for i, g in grads.items()}


def test_synced_state(ip):
    result = autograd(ip, LECTURE)
    widget = result.widget()
    assert isinstance(widget, AutogradWidget)
    state = widget.get_state()
    for key in ("model", "svg", "step", "selected", "renderer", "_esm", "_css"):
        assert key in state, key
    assert state["model"] == result.graph
    assert json.loads(json.dumps(state["model"])) == result.graph
    assert state["svg"] == result.svg and 'data-node-id="n0"' in state["svg"]
    assert state["step"] == len(result.graph["steps"]) == 4  # starts with every step done
    assert state["renderer"] == result.renderer
    assert widget.keys.count("step") == 1 and "step" in widget.keys


def test_step_is_clamped_and_settable_from_python(ip):
    widget = autograd(ip, LECTURE).widget()
    widget.step = 99
    assert widget.step == 4
    widget.step = -3
    assert widget.step == 0
    widget.step = 2
    assert widget.get_state()["step"] == 2


def test_step_replay_matches_the_lecture(ip):
    widget = autograd(ip, LECTURE).widget()
    zero = {name: 0.0 for name in "abecdfL"}
    assert by_label(widget, widget.grads_at(0)) == zero
    assert by_label(widget, widget.grads_at(1)) == {**zero, "L": 1.0}
    assert by_label(widget, widget.grads_at(2)) == {**zero, "L": 1.0, "d": -2.0, "f": 4.0}
    final = by_label(widget, widget.grads_at(4))
    assert final == {"a": 6.0, "b": -4.0, "e": -2.0, "c": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}
    widget.step = 3
    assert by_label(widget, widget.grads_at())["a"] == 0.0


def test_step_replay_shows_accumulation_on_a_reused_node(ip):
    result = autograd(ip, "x = 3.0\ny = x * x\nz = y + x")
    widget = result.widget()
    x = next(n["id"] for n in result.graph["nodes"] if n["label"] == "x")
    assert result.graph["reached_twice"] == [x]
    seen = [float(widget.grads_at(k)[x]) for k in range(widget.step_count + 1)]
    # dz/dx = 2x + 1 = 7, reached as 1 (from z = y + x) then += 3 and += 3 (from x * x)
    assert seen[0] == 0.0 and seen[-1] == 7.0
    assert 1.0 in seen  # a partial sum is visible before the last step
    assert len(set(seen)) >= 3


def test_static_display_makes_no_widget(ip):
    result = autograd(ip, LECTURE, "--static")
    result._repr_mimebundle_()
    assert result._widget is None


def test_from_model(ip):
    result = autograd(ip, LECTURE)
    widget = AutogradWidget.from_model(result.graph, renderer="graphviz-pure")
    assert widget.renderer == "graphviz-pure"
    assert "grad 6.0000" in widget.svg


def test_front_end_files_are_loaded_from_the_package():
    js = (STATIC / "widget.js").read_text()
    css = (STATIC / "widget.css").read_text()
    widget = AutogradWidget({"nodes": [], "edges": [], "steps": []}, "<svg></svg>")
    assert widget.get_state()["_esm"] == js
    assert widget.get_state()["_css"] == css
    assert "export default { render }" in js
    assert "return () => {" in js  # render returns its cleanup
    assert "innerHTML" not in js  # text goes in as text, the SVG is parsed as XML
    header = js[: js.index("*/")]
    for selector in SELECTORS:
        assert selector in header, selector


def test_packaging_ships_the_static_files():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'micrograd_magics = ["static/*"]' in pyproject
    assert "ipywidgets>=8" not in pyproject  # Colab ships ipywidgets 7


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_number_format_matches_python():
    numbers = [0.0, -0.0, 6.0, -4.0, 1.0, 0.5, -2.5, 0.0353, 1e-3, 9.99e-4, 1e-7, -2.7e-6,
               1e7, 12345678.9, 9999999.0, 3.14159265, 123.456789, 0.125, -0.375, 2.5,
               12342500.0, 1.5e22, 0.0009765625, "nan", "inf", "-inf"]  # exact ties too
    script = f"""
        const src = require('fs').readFileSync({json.dumps(str(STATIC / 'widget.js'))}, 'utf8');
        import('data:text/javascript,' + encodeURIComponent(src)).then((m) => {{
          const out = [];
          for (const p of [0, 2, 4])
            for (const x of {json.dumps(numbers)}) out.push(m.formatNumber(x, p));
          console.log(JSON.stringify(out));
        }});
    """
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    expected = [format_number(x, p) for p in (0, 2, 4) for x in numbers]
    assert json.loads(done.stdout) == expected


def test_custom_messages_reach_the_message_handler(ip):
    widget = autograd(ip, LECTURE).widget()
    assert widget.answers == [] and "answers" in widget.keys
    # no handler set: a nudge from the browser is dropped, nothing raises
    widget._handle_custom_msg({"kind": "nudge", "node": "n0", "h": 0.001}, [])
    seen = []
    widget.message_handler = lambda w, content: seen.append((w, content))
    # the path ipywidgets takes for a comm message with method "custom"
    widget._handle_custom_msg({"kind": "set", "values": {"n0": 3.0}}, [])
    widget._handle_custom_msg("not a dict", [])
    assert seen == [(widget, {"kind": "set", "values": {"n0": 3.0}})]
