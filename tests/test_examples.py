"""Every example notebook, executed top to bottom on a real Jupyter kernel (nbclient), with
the numbers a learner would read off its outputs."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@functools.cache
def executed(name: str) -> nbformat.NotebookNode:
    """The notebook run top to bottom on a real kernel (once per test session)."""
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    return notebook


def run_notebook(name: str) -> list[str]:
    """Per code cell of the executed notebook, its text outputs joined."""
    texts = []
    for cell in executed(name).cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.outputs:
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output:
                parts.append(output.data.get("text/plain", ""))
        texts.append("".join(parts))
    return texts


def bundles(name: str) -> list[dict]:
    """The mime bundles of the executed notebook's outputs."""
    return [o.data for c in executed(name).cells if c.cell_type == "code"
            for o in c.outputs if "data" in o]


def test_every_example_is_tested() -> None:
    tested = {"01_first_graph.ipynb", "02_neuron.ipynb", "03_accumulation_bug.ipynb",
              "04_training_an_mlp.ipynb", "05_predict_and_nudge.ipynb"}
    assert {p.name for p in EXAMPLES.glob("*.ipynb")} == tested


def test_first_graph() -> None:
    out = "\n".join(run_notebook("01_first_graph.ipynb"))
    # forward only: every gradient still 0
    assert re.search(r"^a\s+2\.0000\s+0\.0000$", out, re.M)
    # with backward: the lecture's numbers
    assert "a.grad = 6.0" in out
    assert "b.grad = -4.0" in out
    assert "f.grad = 4.0" in out
    assert "dL/da = dL/de * de/da = -2.0000 * -3.0000 = 6.0000" in out
    assert "Value(data=2.0, grad=6.0, label='a') 6.0" in out


def test_neuron() -> None:
    out = "\n".join(run_notebook("02_neuron.ipynb"))
    assert "o = 0.7071" in out
    assert "n.grad = 0.5" in out
    assert "w1.grad = 1.0" in out
    assert "x1.grad = -1.5" in out
    # tanh spelled with exp gives the same leaf gradients
    for name, grad in [("x1", "-1.5"), ("w1", "1.0"), ("x2", "0.5"), ("w2", "0.0"),
                       ("b", "0.5")]:
        assert re.search(rf"^{name} {grad} {grad}$", out, re.M), name
    assert "torch w1.grad = 1.0" in out
    assert "mismatches: []" in out


def test_accumulation_bug() -> None:
    out = "\n".join(run_notebook("03_accumulation_bug.ipynb"))
    assert "with =  : 1.0" in out
    assert "torch    : 2.0" in out
    assert "mismatches: ['a']" in out
    assert "with += : 2.0" in out
    assert "mismatches: ['a', 'b']" in out
    assert "reached twice: ['a', 'b']" in out
    # f = (a*b) * (a+b) at a=-2, b=3: df/da = b(a+b) + ab = -3, df/db = a(a+b) + ab = -8
    assert "a.grad = -3.0  b.grad = -8.0  mismatches: []" in out


def test_predict_and_nudge() -> None:
    out = "\n".join(run_notebook("05_predict_and_nudge.ipynb"))
    # the quiz: no gradient shown in the quiz cell's text, the checker's verdicts
    quiz_text = run_notebook("05_predict_and_nudge.ipynb")[1]
    rows = [line for line in quiz_text.splitlines() if re.match(r"[a-zL] +-?\d", line)]
    assert len(rows) == 7 and all(row.endswith("?") for row in rows), quiz_text
    assert "f right" in out and "b right" in out
    assert "a wrong, hint: dL/da = dL/de * de/da" in out
    # nudges reproduce the lecture's numerical slopes (do/dx1 = -1.5, do/dw1 = 1.0, ...)
    for leaf, grad in (("x1", "-1.5000"), ("w1", "1.0000"), ("x2", "0.5000"), ("b", "0.5000")):
        found = re.search(rf"when {leaf} moved by 0.001: slope (-?[\d.]+), {leaf}.grad "
                          rf"(-?[\d.]+)", out)
        assert found and found[2] == grad, leaf
        assert abs(float(found[1]) - float(grad)) < 5e-3, leaf  # forward difference, h = 1e-3
    # set: o = tanh(x1*w1 + x2*w2 + b) at w2 = -1, x2 = 0.5
    import math

    n = 2.0 * -3.0 + 0.5 * -1.0 + 6.8813735870195432
    o = math.tanh(n)
    slope = 1 - o * o
    assert f"o = {o:.4f}, w2.grad = {slope * 0.5:.4f}, x2.grad = {slope * -1:.4f}" in out
    assert "your x2 is now 0.5" in out


def test_training_an_mlp() -> None:
    out = "\n".join(run_notebook("04_training_an_mlp.ipynb"))
    accuracy = int(re.search(r"accuracy (\d+)%", out).group(1))
    assert accuracy >= 95
    # the training cell's one output is the live view, saved with its static loss curve
    live = [b for b in bundles("04_training_an_mlp.ipynb")
            if b.get("text/plain", "").startswith("%%autograd --live")]
    assert len(live) == 1
    assert "application/vnd.jupyter.widget-view+json" in live[0]
    assert "40 steps" in live[0]["image/svg+xml"]
    assert "<table" in live[0]["text/html"]
    grads = re.search(r"x0\.grad = (-?[\d.]+)  = w0 if the ReLU is open: (-?[\d.]+)", out)
    assert grads is not None
    assert grads.group(1) == grads.group(2)
    assert float(grads.group(1)) != 0.0
    # the whole network on one step, collapsed, one neuron expanded (issue 17)
    assert re.search(r"^\d+ boxes for 65\d\d\d nodes$", out, re.M)
    assert "drawn collapsed: " in out
    shown = re.search(r"data on X\[0\]: (-?[\d.]+) = (-?[\d.]+)", out)
    assert shown is not None and shown[1] == shown[2] and float(shown[1]) > 0


@pytest.mark.parametrize("name", ["01_first_graph.ipynb"])
def test_outputs_carry_widget_and_static_renderings(name: str) -> None:
    """Each %%autograd output holds the widget view and, for nbconvert, GitHub and terminals,
    the static SVG, the HTML (graph and table) and the text table."""
    autograd = [b for b in bundles(name) if "%%autograd" in b.get("text/plain", "")]
    assert len(autograd) == 2
    for bundle in autograd:
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert bundle["image/svg+xml"].lstrip().startswith(("<svg", "<?xml"))
        assert "<svg" in bundle["text/html"] and "<table" in bundle["text/html"]
        assert re.search(r"^a\s+2\.0000\s+-?\d", bundle["text/plain"], re.M)
    # the second output is after backward: a's record in the SVG shows its gradient
    assert "grad 6.0000" in autograd[1]["image/svg+xml"]
