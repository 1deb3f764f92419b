"""Big graphs (no recursion anywhere) and what `import engine` is allowed to pull in."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine import Value

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_million_node_chain_backward_by_hand():
    """y = y*w + c, 500,000 times: 1,000,000 op nodes, w and c each used 500,000 times.

    With w = 1 and c = 1, y_n = x + n, so by hand:
    dy/dx = w**n = 1, dy/dc = n, dy/dw = sum of y_i for i < n = n*x + n*(n-1)/2.
    Every partial sum is an integer or a half below 2**53, so the grads are exact.
    """
    n = 500_000
    x, w, c = Value(0.5, label="x"), Value(1.0, label="w"), Value(1.0, label="c")
    y = x
    gc.disable()  # a tree of Values holds no cycles; gc passes would triple the build time
    try:
        for _ in range(n):
            y = y * w + c
    finally:
        gc.enable()
    assert y.data == 0.5 + n
    y.backward()  # micrograd: RecursionError
    assert x.grad == 1.0
    assert c.grad == float(n)
    assert w.grad == n * 0.5 + n * (n - 1) / 2
    engine.zero_grad(y)
    assert (x.grad, w.grad, c.grad, y.grad) == (0.0, 0.0, 0.0, 0.0)
    del y  # freeing a million-deep chain must not overflow the C stack
    gc.collect()
    assert x.data == 0.5


def test_deep_chain_with_every_walk():
    """3,000 levels (micrograd's recursion gives up near 1,000) through every graph walk."""
    x = Value(2.0)
    y = x
    for _ in range(3_000):
        y = (y * 1.0).tanh() + y * 0.0 + 1.0
    order = engine.topological_order(y)
    assert order[0] is x and order[-1] is y
    steps = engine.backward_steps(y)
    assert len(steps) == len(order) - 1
    grads = [node.grad for node in order]
    engine.zero_grad(y)
    assert all(node.grad == 0.0 for node in order)
    y.backward()
    assert [node.grad for node in order] == grads


FORBIDDEN = ("IPython", "graphviz", "torch", "numpy", "anywidget", "micrograd_magics",
             "micrograd", "ipywidgets", "traitlets")


def test_engine_imports_only_the_standard_library():
    code = (
        "import json, sys\n"
        "import engine, engine.nn\n"
        "x = engine.Value(2.0, label='x')\n"
        "y = engine.tanh(x * x + 1) ** 2 / x\n"
        "y.backward(); engine.backward_steps(y); engine.zero_grad(y)\n"
        "engine.nn.MLP(2, [3, 1])([1.0, 2.0]).backward()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "engine" in loaded and "engine.nn" in loaded
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert not bad, f"import engine pulled in {bad}"
