"""The text a learner reads: compound names parenthesised in every formula (hover box,
step captions, `.graph['steps']`), and readable names for the intermediate nodes that
engine.nn builds (no `#3`)."""

from __future__ import annotations

import pytest
from cells import NEURON, run_autograd

from micrograd_magics.graph import derived_name, fill_formula, in_formula


def node(result, name: str) -> dict:
    found = [n for n in result.graph["nodes"] if n["name"] == name]
    assert len(found) == 1, [n["name"] for n in result.graph["nodes"]]
    return found[0]


def formulas(result) -> list[str]:
    return [u["formula"] for s in result.graph["steps"] for u in s["updates"]]


def test_compound_names_are_parenthesised_in_the_neurons_formulas(ip):
    result = run_autograd(ip, NEURON)
    # do/dx1 through the x1*w1 node: upstream 0.5 (= 1 - o²), local w1 = -3
    x1 = "do/dx1 = do/d(x1*w1) * d(x1*w1)/dx1 = 0.5000 * -3.0000 = -1.5000"
    assert x1 in node(result, "x1")["explain"]
    assert x1 in formulas(result)
    step = next(s for s in result.graph["steps"] if s["node"] == node(result, "x1*w1")["id"])
    assert step["rule"] == "d(x1*w1)/dx1 = w1; d(x1*w1)/dw1 = x1"
    # the sum's own gradient, through n = (x1*w1 + x2*w2) + b
    assert ("do/d(x1*w1 + x2*w2) = do/dn * dn/d(x1*w1 + x2*w2) = 0.5000 * 1.0000 = 0.5000"
            in node(result, "x1*w1 + x2*w2")["explain"])
    # plain names stay bare
    assert "do/dn = do/do * do/dn = 1.0000 * 0.5000 = 0.5000" in node(result, "n")["explain"]
    assert node(result, "o")["explain"] == ["do/do = 1"]


def test_a_compound_root_is_parenthesised_too(ip):
    ip.run_cell("w, x, b = -3.0, 2.0, 6.5")
    result = ip.run_line_magic("autograd", "tanh(w*x + b)")
    root = next(n for n in result.graph["nodes"] if n["id"] == result.graph["root"])
    assert root["explain"] == [f"d({root['name']})/d({root['name']}) = 1"]
    assert all(f.startswith(f"d({root['name']})/d") for f in formulas(result))


def test_neuron_intermediates_are_named_from_their_parents(ip):
    ip.run_cell("from engine.nn import Neuron\nneuron = Neuron(2)\n"
                "neuron.w[0].data, neuron.w[1].data, neuron.b.data = 2.0, -1.0, 0.5")
    result = run_autograd(ip, "x0 = 3.0\nx1 = 4.0\nact = neuron([x0, x1])")
    names = {n["name"] for n in result.graph["nodes"]}
    assert not [n for n in names if n.startswith("#")], names
    # act = relu(0.5 + 2*3 + -1*4) = 2.5; d act/d x0 = w0 = 2, d act/d x1 = w1 = -1
    first = node(result, "neuron.w[0]*x0")
    assert first["data"] == 6.0 and first["label"] == ""  # a name to read, not a label
    total = node(result, "neuron.b + neuron.w[0]*x0 + neuron.w[1]*x1")
    assert total["data"] == 2.5 and total["grad"] == 1.0
    assert result.grads["x0"] == 2.0 and result.grads["x1"] == -1.0
    assert ("dact/dx0 = dact/d(neuron.w[0]*x0) * d(neuron.w[0]*x0)/dx0 = 1.0000 * 2.0000"
            " = 2.0000") in node(result, "x0")["explain"]
    # .grads and .values stay keyed by the learner's own labels only
    assert "neuron.w[0]*x0" not in result.grads


@pytest.mark.parametrize(("symbol", "parents", "name"), [
    ("*", ["w[0]", "x[0]"], "w[0]*x[0]"),
    ("+", ["b", "w[0]*x[0]"], "b + w[0]*x[0]"),
    ("*", ["a + b", "c"], "(a + b)*c"),
    ("-", ["a", "b + c"], "a - (b + c)"),
    ("/", ["a*b", "c"], "(a*b)/c"),
    ("tanh", ["n"], "tanh(n)"),
    ("ReLU", ["w*x + b"], "ReLU(w*x + b)"),
    ("**2", ["x + y"], "(x + y)**2"),
    ("*2", ["x"], "x*2"),
    ("1-", ["o"], "1-o"),
    ("-", ["a"], "-a"),
    ("", ["a"], None),
    ("?", ["a", "b", "c"], None),
])
def test_derived_names(symbol, parents, name):
    assert derived_name(symbol, parents) == name


def test_formula_names():
    assert in_formula("w[0]") == "w[0]" and in_formula("y#1") == "y#1"
    assert in_formula("model.layers[0].neurons[3].w[1]") == "model.layers[0].neurons[3].w[1]"
    assert in_formula("x1*w1") == "(x1*w1)"
    # brackets the template has already are not doubled
    assert fill_formula("exp({a}) = {out}", {"a": "2*n", "out": "t"}) == "exp(2*n) = t"
    assert fill_formula("1 - {out}²", {"out": "x + y"}) == "1 - (x + y)²"


def test_example_markdown_has_no_stray_emphasis():
    """A formula in a notebook's markdown goes in backticks: `x1*w1 + x2*w2` written bare
    renders as x1<em>w1 + x2</em>w2 (02's title did)."""
    import json
    import re
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            text = re.sub(r"`[^`]*`", "", "".join(cell["source"]))
            text = re.sub(r"\*\*?[A-Za-z][\w ]*\*\*?", "", text)  # *word*, **words**
            assert "*" not in text, (path.name, "".join(cell["source"])[:120])
