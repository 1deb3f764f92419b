"""The lecture's cells and their hand-checked gradients, shared by the test files."""

from __future__ import annotations

from micrograd_magics.result import AutogradResult

LECTURE = """\
a = 2.0
b = -3.0
c = 10.0
e = a * b
d = e + c
f = -2.0
L = d * f"""

LECTURE_GRADS = {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0, "f": 4.0, "L": 1.0}

NEURON = """\
x1 = 2.0
x2 = 0.0
w1 = -3.0
w2 = 1.0
b = 6.8813735870195432
n = x1*w1 + x2*w2 + b
o = tanh(n)"""

# b is chosen so that n = atanh(1/sqrt(2)): o = 0.7071, do/dn = 1 - o**2 = 0.5
NEURON_GRADS = {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5, "n": 0.5, "o": 1.0}

# the same neuron with tanh spelled out, as the lecture does before adding tanh()
NEURON_EXP = NEURON.replace("o = tanh(n)", "o = (exp(2*n) - 1) / (exp(2*n) + 1)")


def run_autograd(ip, cell: str, line: str = "") -> AutogradResult:  # noqa: ANN001
    """`%%autograd line` + cell on a real shell; the result it returned."""
    result = ip.run_cell_magic("autograd", line, cell)
    assert isinstance(result, AutogradResult)
    return result


def clear_namespace(ip) -> None:  # noqa: ANN001
    """The user's names gone, IPython's own kept: `ip.reset()` does this too, but its
    gc.collect() costs half a second once torch is imported."""
    for name in [n for n in ip.user_ns if n not in ip.user_ns_hidden and not n.startswith("_")]:
        del ip.user_ns[name]


DEMO_LOSS = """\
inputs = [list(map(Value, row)) for row in X]
scores = list(map(model, inputs))
losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
data_loss = sum(losses) * (1.0 / len(losses))
reg_loss = 1e-4 * sum(p * p for p in model.parameters())
total = data_loss + reg_loss"""
"""micrograd's demo loss (SVM max-margin plus L2) over the points X, y for an MLP `model`:
the collapsed drawing's test cell (about 65,000 nodes over 100 points)."""
