"""The cross-checks replay the recorded graph and never run the cell again (issue 12).

Cells are written as learners type them in the micrograd lecture: their own backward()
calls, draw_dot, `+=` on computed Values, training loops, side effects. Every expected
gradient is worked out by hand in the test (torch float64 is only what is compared).
"""

from __future__ import annotations

import math

import pytest
from cells import LECTURE, LECTURE_GRADS, clear_namespace, run_autograd
from IPython.utils.capture import capture_output
from test_learner_engine import (
    ASSIGN_BUG_CLASS,
    ASSIGN_BUG_EVERYWHERE_CLASS,
    LECTURE_CLASS,
    define,
    variant,
)
from test_learner_engine import autograd as on_their_class

pytest.importorskip("torch")

DRAW_DOT = '''\
from graphviz import Digraph

def trace(root):
    nodes, edges = set(), set()
    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    return nodes, edges

def draw_dot(root):
    dot = Digraph(format='svg', graph_attr={'rankdir': 'LR'})
    nodes, edges = trace(root)
    for n in nodes:
        uid = str(id(n))
        dot.node(name=uid, label="{ %s | data %.4f | grad %.4f }" % (n.label, n.data, n.grad),
                 shape='record')
        if n._op:
            dot.node(name=uid + n._op, label=n._op)
            dot.edge(uid + n._op, uid)
    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    return dot
'''

# the lecture's cells 31 and 32, verbatim: the two that find the `=` bug
CELL_31 = """\
a = Value(3.0, label='a')
b = a + a   ; b.label = 'b'
b.backward()
draw_dot(b)"""

CELL_32 = """\
a = Value(-2.0, label='a')
b = Value(3.0, label='b')
d = a * b    ; d.label = 'd'
e = a + b    ; e.label = 'e'
f = d * e    ; f.label = 'f'

f.backward()

draw_dot(f)"""

# micrograd's own test_more_ops, with its += on computed Values
MORE_OPS = """\
a = Value(-4.0)
b = Value(2.0)
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + (b + a).relu()
d += 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
g.backward()"""

RELU_METHOD = '''
    def relu(self):
        out = Value(0 if self.data < 0 else self.data, (self,), 'ReLU')
        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def log(self):
        x = self.data
        out = Value(math.log(x), (self,), 'log')
        def _backward():
            self.grad += (1 / x) * out.grad
        out._backward = _backward
        return out
'''
FULL_CLASS = LECTURE_CLASS.replace("    def backward(self):",
                                   RELU_METHOD + "\n    def backward(self):")

# the lecture's softmax / negative log likelihood exercise, as written there
SOFTMAX = """\
def softmax(logits):
    counts = [logit.exp() for logit in logits]
    denominator = sum(counts)
    out = [c / denominator for c in counts]
    return out

logits = [Value(0.0), Value(3.0), Value(-2.0), Value(1.0)]
probs = softmax(logits)
loss = -probs[3].log()
loss.backward()

ans = [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986]
checks = []
for dim in range(4):
    checks.append(abs(logits[dim].grad - ans[dim]) < 1e-5)"""


def engine_value(shell) -> None:
    shell.run_cell("from engine import Value").raise_error()


def no_mismatch(result) -> None:
    assert result.mismatches == [], result.graph["compare"]["rows"]
    assert "first_failure" not in result.graph["compare"]
    for label, grad in result.grads.items():
        assert result.torch_grads[label] == pytest.approx(grad, rel=1e-9, abs=1e-12), label


# --- 1. the cell runs once -------------------------------------------------------------

COUNTED = """\
calls.append(1)
a = 2.0
b = -3.0
L = a * b + a"""


@pytest.mark.parametrize("line", ["--torch", "--check numeric", "--torch --check numeric",
                                  "--torch-graph"])
def test_side_effects_happen_once(shell, line):
    shell.run_cell("calls = []").raise_error()
    result = run_autograd(shell, COUNTED, line)
    assert shell.user_ns["calls"] == [1]
    assert result.grads["a"] == -2.0 and result.grads["b"] == 2.0  # dL/da = b + 1, dL/db = a


@pytest.mark.parametrize("line", ["--engine Value --torch", "--engine Value --check numeric"])
def test_side_effects_happen_once_on_their_class(ip, line):
    define(ip, LECTURE_CLASS)
    ip.run_cell("calls = []").raise_error()
    result = run_autograd(ip, COUNTED, line)
    assert ip.user_ns["calls"] == [1]
    assert result.grads["a"] == -2.0
    if "numeric" in line:
        assert result.numeric_grads["a"] == pytest.approx(-2.0, rel=1e-6)
        assert result.numeric_grads["b"] == pytest.approx(2.0, rel=1e-6)


def test_prints_iterators_and_random_draws_happen_once(shell):
    shell.run_cell("import random\nrng = random.Random(5)\nit = iter([1.5, 2.5, 3.5])"
                   ).raise_error()
    cell = "x = next(it)\nw = 2.0\nr = rng.random()\nL = w * x + r\nprint('loss', L.data)"
    with capture_output() as shown:
        result = run_autograd(shell, cell, "--torch --check numeric")
    assert shown.stdout.count("loss") == 1
    assert next(shell.user_ns["it"]) == 2.5  # one draw
    expected_r = random_draw(5)
    assert shell.user_ns["r"] == expected_r
    assert result.grads["w"] == 1.5 and result.torch_grads["w"] == 1.5
    assert result.mismatches == []


def random_draw(seed: int) -> float:
    import random

    return random.Random(seed).random()


TRAIN = """\
for k in range(20):
    ypred = [model(x) for x in xs]
    loss = sum((yout - ygt)**2 for ygt, yout in zip(ys, ypred))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data += -0.05 * p.grad
    losses.append(loss.data)"""

TRAIN_SETUP = """\
import random
from engine.nn import MLP
random.seed(0)
model = MLP(3, [4, 4, 1])
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]
losses = []"""


def test_a_training_loop_trains_once_with_torch(shell):
    shell.run_cell(TRAIN_SETUP).raise_error()
    shell.run_cell(TRAIN).raise_error()  # the same loop, plainly
    plain = [p.data for p in shell.user_ns["model"].parameters()]
    plain_losses = list(shell.user_ns["losses"])
    clear_namespace(shell)
    shell.run_cell(TRAIN_SETUP).raise_error()
    result = run_autograd(shell, TRAIN, "--torch")
    assert [p.data for p in shell.user_ns["model"].parameters()] == plain
    assert shell.user_ns["losses"] == plain_losses and len(plain_losses) == 20
    # the last loss's graph, with the parameters it was computed from: torch agrees
    assert result.mismatches == [] and result.torch_grads
    assert result.root.data == plain_losses[-1]
    assert any("changed after loss.backward()" in w for w in result.warnings)
    assert not any(type(x).__module__.startswith("torch") for x in shell.user_ns["losses"])


def test_a_training_step_keeps_lr_a_number(shell):
    cell = "lr = 0.1\nw = 2.0\nx = 3.0\nL = w * x\nL.backward()\nw.data -= lr * w.grad"
    result = run_autograd(shell, cell, "--torch")
    assert type(shell.user_ns["lr"]) is float
    assert type(shell.user_ns["w"].data) is float
    assert shell.user_ns["w"].data == pytest.approx(2.0 - 0.1 * 3.0)
    assert result.grads["w"] == 3.0 and result.grads["x"] == 2.0  # at w = 2.0, as computed
    assert result.mismatches == []


def test_a_value_stored_into_data_is_refused_before_it_lands(shell):
    with capture_output() as shown:
        outcome = shell.run_cell("%%autograd\nw = 2.0\nx = 3.0\nL = w * x\nw.data -= L")
    assert not outcome.success
    shown_text = shown.stdout + shown.stderr
    assert "w.data would become a Value" in shown_text
    assert "micrograd_magics" not in shown_text and "----> 5" in shown_text
    assert shell.user_ns["w"].data == 2.0  # nothing lost


# --- 2. torch replays the recorded graph ------------------------------------------------


def test_the_cells_own_backward_does_not_double_torch(shell):
    engine_value(shell)
    result = run_autograd(shell, "a = Value(3.0, label='a')\nb = a + a\nb.backward()\n"
                                 "b.backward()", "--torch")
    assert result.grads["a"] == 2.0 and result.torch_grads["a"] == 2.0
    no_mismatch(result)


def test_backward_in_the_cell_through_mul_and_tanh(shell):
    engine_value(shell)
    cell = "x = Value(0.5, label='x')\ny = (x * x).tanh()\ny.backward()"
    result = run_autograd(shell, cell, "--torch")
    t = math.tanh(0.25)
    assert result.grads["x"] == pytest.approx((1 - t * t) * 2 * 0.5)
    no_mismatch(result)


def test_lecture_cells_31_32_on_our_engine(shell):
    engine_value(shell)
    shell.run_cell(DRAW_DOT).raise_error()
    r31 = run_autograd(shell, CELL_31, "--torch")
    assert r31.grads == {"a": 2.0, "b": 1.0}
    no_mismatch(r31)
    r32 = run_autograd(shell, CELL_32, "--torch")
    assert r32.grads == {"a": -3.0, "b": -8.0, "d": 1.0, "e": -6.0, "f": 1.0}
    no_mismatch(r32)


def test_lecture_cells_31_32_on_a_correct_class(ip):
    define(ip, LECTURE_CLASS)
    ip.run_cell(DRAW_DOT).raise_error()
    no_mismatch(on_their_class(ip, CELL_31))
    result = on_their_class(ip, CELL_32)
    assert result.torch_grads == {"a": -3.0, "b": -8.0, "d": 1.0, "e": -6.0, "f": 1.0}
    no_mismatch(result)


def test_lecture_cells_31_32_on_the_assign_class_are_flagged(ip):
    define(ip, ASSIGN_BUG_CLASS)
    ip.run_cell(DRAW_DOT).raise_error()
    r31 = on_their_class(ip, CELL_31)
    assert r31.mismatches == ["a"] and r31.torch_grads["a"] == 2.0
    assert r31.graph["compare"]["first_failure"].startswith(
        "`=` where `+=` belongs in the rule of `a+a` at node `b`")
    define(ip, ASSIGN_BUG_EVERYWHERE_CLASS)  # the lecture's class had `=` in every rule then
    r32 = on_their_class(ip, CELL_32)
    assert sorted(r32.mismatches) == ["a", "b"]
    assert "`=` where `+=` belongs in the rule of" in r32.graph["compare"]["first_failure"]


@pytest.mark.parametrize("line", ["--torch", "--torch --check numeric"])
def test_micrograds_more_ops_with_augmented_assignments(shell, line):
    engine_value(shell)
    result = run_autograd(shell, MORE_OPS, line)
    # the figures micrograd's own test checks against torch
    assert shell.user_ns["g"].data == pytest.approx(24.70408163265306, rel=1e-12)
    assert shell.user_ns["a"].grad == pytest.approx(138.83381924198252, rel=1e-12)
    assert shell.user_ns["b"].grad == pytest.approx(645.5772594752187, rel=1e-12)
    no_mismatch(result)


def test_micrograds_more_ops_on_micrograd_itself(shell):
    shell.run_cell("from micrograd.engine import Value").raise_error()
    result = run_autograd(shell, MORE_OPS, "--engine Value --torch")
    assert result.root.data == pytest.approx(24.70408163265306, rel=1e-12)
    no_mismatch(result)


def test_augmented_assignment_on_a_computed_value(shell):
    result = run_autograd(shell, "a = 2.0\nb = -3.0\nc = a * b\nc += a\nL = c * b", "--torch")
    # L = (ab + a) b: dL/da = b(b + 1) = 6, dL/db = 2ab + a = -10
    assert result.grads["a"] == 6.0 and result.grads["b"] == -10.0
    no_mismatch(result)


def test_a_running_sum_from_a_plain_zero(shell):
    cell = "x = [1.0, 2.0, 3.0]\nw = [0.5, -1.0, 2.0]\nloss = 0.0\nfor i in range(3):\n" \
           "    loss += x[i] * w[i]"
    result = run_autograd(shell, cell, "--torch")
    assert result.grads["w[2]"] == 3.0 and result.grads["x[1]"] == -1.0
    no_mismatch(result)


def test_values_from_an_earlier_cell_with_label_assignments(shell):
    engine_value(shell)
    shell.run_cell("a = Value(2.0)\na.label = 'a'\nb = Value(-3.0, label='b')").raise_error()
    result = run_autograd(shell, "e = a * b\ne.label = 'e'\nL = e * e", "--torch")
    # L = (ab)^2: dL/da = 2ab * b = 36, dL/db = 2ab * a = -24
    assert result.grads["a"] == 36.0 and result.grads["b"] == -24.0
    no_mismatch(result)


def test_every_node_is_compared_named_or_not(ip):
    # their tanh forward is wrong at an unnamed node: the row names it
    source = variant(LECTURE_CLASS, "t = (math.exp(2*x) - 1)/(math.exp(2*x) + 1)",
                     "t = (math.exp(2*x) - 1)/(math.exp(2*x) + 2)")
    define(ip, source)
    result = on_their_class(ip, "x = 0.5\nL = x.tanh() * 2.0")
    first = result.graph["compare"]["first_failure"]
    assert first.startswith("your forward of `tanh(x)`")
    assert "torch says 0.46211715726000974" in first


def test_an_op_without_a_twin_is_named_and_the_rest_compared(ip):
    source = LECTURE_CLASS.replace("    def backward(self):", '''
    def sin(self):
        out = Value(math.sin(self.data), (self,), 'sine')
        def _backward():
            self.grad += math.cos(self.data) * out.grad
        out._backward = _backward
        return out

    def backward(self):''')
    define(ip, source)
    result = on_their_class(ip, "x = 0.5\nw = 3.0\ns = x.sin()\nL = s * w")
    assert result.grads["w"] == pytest.approx(math.sin(0.5))
    assert result.torch_grads["w"] == pytest.approx(math.sin(0.5))
    assert result.torch_grads["s"] == 3.0
    assert result.mismatches == []
    assert any("your op 'sine' has no torch twin" in w for w in result.warnings)
    row_x = next(r for r in result.graph["compare"]["rows"] if r["label"] == "x")
    assert row_x["checked"] is False


def test_torch_graph_maps_to_our_nodes(shell):
    result = run_autograd(shell, LECTURE, "--torch-graph")
    names = {n["maps_to"] for n in result.graph["torch_graph"]["nodes"]}
    assert {"a", "b", "e", "d", "L"} <= names
    no_mismatch(result)


# --- 3. the first wrong rule ------------------------------------------------------------


@pytest.mark.parametrize("old, new, expected", [
    ("self.grad += (1 / x) * out.grad", "self.grad += 1.0 * out.grad",
     "the rule of `log` at node `"),
    ("self.grad += out.data * out.grad", "self.grad += x * out.grad",
     "the rule of `exp` at node `"),
    ("self.grad += other * (self.data ** (other - 1)) * out.grad",
     "self.grad += other * (self.data ** other) * out.grad", "the rule of `**k` at node `"),
])
def test_a_wrong_rule_in_the_softmax_is_named(ip, old, new, expected):
    define(ip, variant(FULL_CLASS, old, new))
    result = on_their_class(ip, SOFTMAX)
    assert result.mismatches
    first = result.graph["compare"]["first_failure"]
    assert first.startswith(expected), first
    assert "torch says" in first


def test_the_softmax_exercise_runs_as_written(ip):
    define(ip, FULL_CLASS)
    result = on_their_class(ip, SOFTMAX)
    assert ip.user_ns["checks"] == [True, True, True, True]
    assert type(ip.user_ns["ans"][0]) is float  # a cell with its own Values lifts nothing
    assert result.mismatches == [] and result.torch_grads
    assert result.root.data == pytest.approx(-math.log(math.exp(1) / (
        1 + math.exp(3) + math.exp(-2) + math.exp(1))))


def test_a_wrong_log_rule_names_the_numbers(ip):
    define(ip, variant(FULL_CLASS, "self.grad += (1 / x) * out.grad",
                       "self.grad += 1.0 * out.grad"))
    result = on_their_class(ip, "x = 0.8390245074625319\nL = x.log()")
    assert result.graph["compare"]["first_failure"] == (
        "the rule of `log` at node `L`: d out/d x = 1.0000; torch says 1.1919 (1/x)")


# --- 5. numerics where a zero local derivative meets an infinite gradient -------------


def test_relu_under_an_infinite_gradient_matches_torch(shell):
    result = run_autograd(shell, "a = -1.0\nL = relu(a) * 1e200 * 1e200", "--torch")
    assert result.grads["a"] == 0.0 and result.torch_grads["a"] == 0.0
    assert result.mismatches == []


# --- 6. cells learners write ----------------------------------------------------------


def test_rerunning_a_cell_that_redefines_their_class(ip):
    cell = LECTURE_CLASS + """
a = Value(2.0, label='a')
b = Value(-3.0, label='b')
e = a*b; e.label = 'e'
L = e * a; L.label = 'L'"""
    first = on_their_class(ip, cell)  # Value is not defined before the first run
    second = on_their_class(ip, cell)  # Value is now the class the first run defined
    for result in (first, second):
        assert result.grads["a"] == -12.0 and result.grads["b"] == 4.0  # L = a^2 b
        assert result.mismatches == []


def test_sin_cos_abs_are_ops(shell):
    result = run_autograd(shell, "x = 0.5\nL = sin(x) * cos(x) + abs(x)", "--torch")
    expected = math.cos(0.5) ** 2 - math.sin(0.5) ** 2 + 1.0
    assert result.grads["x"] == pytest.approx(expected, rel=1e-12)
    no_mismatch(result)


def test_math_sin_on_a_value_points_at_the_bare_sin(shell):
    with capture_output() as shown:
        shell.run_cell("%%autograd\nimport math\nx = 0.5\nL = math.sin(x)")
    assert "use the bare sin(x) or x.sin()" in shown.stdout + shown.stderr


def test_rsub_hint_has_the_right_sign(ip):
    define(ip, LECTURE_CLASS.replace("    def __rsub__(self, other):  # other - self\n"
                                     "        return other + (-self)\n", ""))
    with capture_output() as shown:
        ip.run_cell("%%autograd --engine Value\nx = 2.0\nL = 1.0 - x")
    assert "return (-self) + other" in shown.stdout + shown.stderr


# --- 7. the verdict everywhere ---------------------------------------------------------


def test_text_plain_shows_the_torch_column_and_marks(ip):
    define(ip, ASSIGN_BUG_CLASS)
    result = on_their_class(ip, "a = 3.0\nb = a + a")
    text = result._repr_mimebundle_()["text/plain"]
    assert "torch" in text
    line_a = next(line for line in text.splitlines() if line.split()[:1] == ["a"])
    assert "2.0000" in line_a and "✗" in line_a


def test_torch_that_fails_to_import_gives_one_line(shell, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "torch":
            raise OSError("libtorch_cpu.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    result = run_autograd(shell, LECTURE, "--torch")
    assert result.grads == LECTURE_GRADS
    assert result.warnings == ["torch could not be imported (OSError: libtorch_cpu.so: cannot "
                               "open shared object file)"]


def test_no_backward_with_torch_says_there_is_nothing_to_compare(shell):
    result = run_autograd(shell, LECTURE, "--no-backward --torch")
    assert result.mismatches == []
    assert any("nothing to compare" in w for w in result.warnings)


# --- the two torch replays agree -------------------------------------------------------


def test_the_replay_by_level_equals_the_replay_node_by_node(shell):
    """A wide graph (a network over many points) is replayed a level at a time; the same
    graph replayed one node at a time must give the same values and gradients, with every
    op of the table in it."""
    import torch

    from micrograd_magics.compare import _levels, replay_in_torch
    from micrograd_magics.replay import from_engine

    shell.run_cell("import random\nfrom engine import Value\nfrom engine.nn import MLP\n"
                   "random.seed(3)\n"
                   "model = MLP(2, [8, 1])\n"
                   "X = [[random.uniform(-1, 1), random.uniform(-1, 1)] for _ in range(40)]"
                   ).raise_error()
    cell = ("extra = [model(x) * 1.5 + 0.5 - model(x) / 2.0 for x in X]\n"
            "odd = [(abs(v) ** 1.5 + 2.0 ** v + 3.0 / (v + 4.0) - 1.0 - v).exp().log()"
            " + v.tanh() + v.sigmoid() + (v * v + 1.0).sqrt() + v.sin() + v.cos() + (-v)"
            " + (v + 5.0) ** Value(0.5) + v.relu() for v in extra]\n"
            "loss = sum((e - o) ** 2 for e, o in zip(extra, odd))")
    result = run_autograd(shell, cell, "--torch")
    no_mismatch(result)
    import engine

    graph = from_engine(engine.topological_order(result.root))
    assert max(_levels(graph)) * 16 <= len(graph) and len(graph) >= 256  # the level path
    by_level = replay_in_torch(torch, graph)
    by_node = replay_in_torch(torch, graph, node_by_node=True)
    assert by_level.tensors is None and by_node.tensors is not None
    assert by_level.values == pytest.approx(by_node.values, rel=1e-12, abs=1e-300)
    assert by_level.grads == pytest.approx(by_node.grads, rel=1e-9, abs=1e-12)
    ops_used = {str(op) for op in graph.op if op is not None}
    assert {"*", "+", "**k", "k**", "k/", "abs", "exp", "log", "tanh", "sigmoid", "sqrt",
            "sin", "cos", "neg", "**", "ReLU", "-", "/k", "-k", "+k", "*k"} <= ops_used
