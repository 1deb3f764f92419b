"""%%autograd --engine NAME: the same cell on the learner's OWN Value class.

The classes are written here the way a learner writes them while following the micrograd
lecture (one correct, several with the lecture's classic mistakes), defined in a real
IPython shell with `ip.run_cell`, then used with `%%autograd --engine Value`. The tests
check the numbers a learner checks by hand (a.grad == 6.0), the step-by-step replay of
THEIR `_backward` closures, and that torch points at the first rule that went wrong.
micrograd 0.1.0 from PyPI is the reference for a correct class.
"""

from __future__ import annotations

import math
import re

import pytest
from cells import LECTURE, LECTURE_GRADS, NEURON, NEURON_EXP, NEURON_GRADS, run_autograd
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from micrograd_magics.result import AutogradResult

pytest.importorskip("torch")


LECTURE_VALUES = {"a": 2.0, "b": -3.0, "c": 10.0, "e": -6.0, "d": 4.0, "f": -2.0, "L": -8.0}


# b makes n = atanh(1/sqrt(2)): o = 0.7071, do/dn = 1 - o**2 = 0.5

NEURON_RELU = NEURON.replace("o = tanh(n)", "o = relu(n)")  # micrograd 0.1.0 has relu only
NEURON_RELU_GRADS = {"x1": -3.0, "w1": 2.0, "x2": 1.0, "w2": 0.0, "b": 1.0, "n": 1.0, "o": 1.0}

# The lecture's Value, as a learner types it by the end of the lecture: every op with its
# own _backward closure, a recursive build_topo in backward(), _prev a set.
LECTURE_CLASS = '''\
import math

class Value:
    def __init__(self, data, _children=(), _op='', label=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op
        self.label = label

    def __repr__(self):
        return f"Value(data={self.data})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')
        def _backward():
            self.grad += 1.0 * out.grad
            other.grad += 1.0 * out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other):
        assert isinstance(other, (int, float)), "only int/float powers"
        out = Value(self.data**other, (self,), f'**{other}')
        def _backward():
            self.grad += other * (self.data ** (other - 1)) * out.grad
        out._backward = _backward
        return out

    def __radd__(self, other):  # other + self
        return self + other

    def __rmul__(self, other):  # other * self
        return self * other

    def __truediv__(self, other):  # self / other
        return self * other**-1

    def __rtruediv__(self, other):  # other / self
        return other * self**-1

    def __neg__(self):  # -self
        return self * -1

    def __sub__(self, other):  # self - other
        return self + (-other)

    def __rsub__(self, other):  # other - self
        return other + (-self)

    def tanh(self):
        x = self.data
        t = (math.exp(2*x) - 1)/(math.exp(2*x) + 1)
        out = Value(t, (self,), 'tanh')
        def _backward():
            self.grad += (1 - t**2) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        x = self.data
        out = Value(math.exp(x), (self,), 'exp')
        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        topo = []
        visited = set()
        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()
'''

ITERATIVE_BACKWARD = '''\
    def backward(self):
        topo, visited, stack = [], set(), [(self, False)]
        while stack:
            v, expanded = stack.pop()
            if expanded:
                topo.append(v)
            elif v not in visited:
                visited.add(v)
                stack.append((v, True))
                stack.extend((child, False) for child in v._prev)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()
'''


def variant(source: str, old: str, new: str) -> str:
    """The class with one edit, the way a learner would have typed it."""
    assert source.count(old) == 1, old
    return source.replace(old, new)


def without_method(source: str, name: str) -> str:
    """The class without `def name(...)` (up to the next method or the end)."""
    start = source.index(f"    def {name}(")
    end = source.find("\n    def ", start + 1)
    return source[:start] + (source[end + 1:] if end != -1 else "")


# `=` instead of `+=` in __add__'s backward: the lecture's bug
ASSIGN_BUG_CLASS = variant(
    LECTURE_CLASS,
    "            self.grad += 1.0 * out.grad\n            other.grad += 1.0 * out.grad",
    "            self.grad = 1.0 * out.grad\n            other.grad = 1.0 * out.grad")
# ... and in __mul__'s too, as in the lecture's first version
ASSIGN_BUG_EVERYWHERE_CLASS = variant(
    ASSIGN_BUG_CLASS,
    "            self.grad += other.data * out.grad\n"
    "            other.grad += self.data * out.grad",
    "            self.grad = other.data * out.grad\n"
    "            other.grad = self.data * out.grad")
TANH_BUG_CLASS = variant(LECTURE_CLASS, "(1 - t**2) * out.grad", "(1 - t) * out.grad")
NO_RADD_CLASS = without_method(LECTURE_CLASS, "__radd__")
NO_TANH_CLASS = without_method(LECTURE_CLASS, "tanh")  # they only wrote exp
CLOSURES_ONLY_CLASS = without_method(LECTURE_CLASS, "backward")
ITERATIVE_CLASS = without_method(LECTURE_CLASS, "backward") + ITERATIVE_BACKWARD

# No room for a label: the magic keeps the labels on its side
SLOTS_CLASS = '''\
class Value:
    __slots__ = ("data", "grad", "_prev", "_op", "_backward")

    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._prev = tuple(_children)
        self._op = _op
        self._backward = lambda: None

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), '+')
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), '*')
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        topo, seen, stack = [], set(), [(self, False)]
        while stack:
            v, expanded = stack.pop()
            if expanded:
                topo.append(v)
            elif id(v) not in seen:
                seen.add(id(v))
                stack.append((v, True))
                stack.extend((p, False) for p in v._prev)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()
'''

# backward() from an op table, no per-node closures: gradients right, no steps to replay
TAPE_CLASS = '''\
class Tape:
    def __init__(self, data, _prev=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._prev = tuple(_prev)
        self._op = _op

    def __add__(self, other):
        return Tape(self.data + other.data, (self, other), '+')

    def __mul__(self, other):
        return Tape(self.data * other.data, (self, other), '*')

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            if node._op == '+':
                x, y = node._prev
                x.grad += node.grad
                y.grad += node.grad
            elif node._op == '*':
                x, y = node._prev
                x.grad += y.data * node.grad
                y.grad += x.data * node.grad
'''

HELPERS = ("tanh", "exp", "log", "relu", "sigmoid", "sqrt", "__autograd_cell__")
INTERNALS = ("micrograd_magics/", "engine/", "IPython/core", "CellFailed")


def define(ip, source: str) -> None:
    """The learner's cell that defines their class; a failure fails the test."""
    ip.run_cell(source).raise_error()


def autograd(ip, cell: str, line: str = "--engine Value --torch") -> AutogradResult:
    return run_autograd(ip, cell, line)


def run_failing(ip, source: str) -> tuple[str, str]:
    """A cell run the notebook way that must fail; (stdout, stderr) as shown."""
    with capture_output() as shown:
        outcome = ip.run_cell(source)
    assert not outcome.success
    return shown.stdout, shown.stderr


def one_usage_error(stdout: str, stderr: str) -> str:
    """The single line of a UsageError, checked to be just that."""
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("UsageError: ")
    return lines[0]


def names(result: AutogradResult) -> dict[str, str]:
    """node id -> the name the graph shows."""
    return {n["id"]: n["name"] for n in result.graph["nodes"]}


def step_updates(result: AutogradResult) -> list[tuple[str, dict[str, tuple[float, float]]]]:
    """The model's steps as (node, {target: (before, after)}), the seed left out."""
    shown = names(result)
    return [(shown[s["node"]],
             {shown[u["target"]]: (u["before"], u["after"]) for u in s["updates"]})
            for s in result.graph["steps"] if not s.get("seed")]


def agrees_with_torch(result: AutogradResult) -> None:
    assert result.mismatches == []
    assert result.graph["compare"]["mismatches"] == []
    assert "first_failure" not in result.graph["compare"]
    assert result.warnings == []
    assert set(result.torch_grads) == set(result.grads)
    for label, grad in result.grads.items():
        assert result.torch_grads[label] == pytest.approx(grad, rel=1e-9, abs=1e-12), label


# --- 1. the learner's class runs the cell ------------------------------------------------


def test_lecture_cell_on_the_learners_class(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, LECTURE)
    assert result.grads == LECTURE_GRADS
    assert result.values == LECTURE_VALUES
    assert result.torch_grads == LECTURE_GRADS
    agrees_with_torch(result)
    assert result.graph["engine"] == "Value"
    cls = ip.user_ns["Value"]
    for name, data in LECTURE_VALUES.items():  # the cell's names hold THEIR Values
        value = ip.user_ns[name]
        assert type(value) is cls
        assert value.data == data
        assert value.grad == LECTURE_GRADS[name]
        assert value.label == name  # labels set through their .label
    assert result.root is ip.user_ns["L"]


def test_graph_model_on_the_learners_class(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, LECTURE, "--engine Value")
    model = result.graph
    assert model["node_count"] == 7
    assert model["truncated"] is False
    by_label = {n["label"]: n for n in model["nodes"]}
    assert by_label["L"]["id"] == model["root"]
    assert by_label["e"]["op"] == "*" and by_label["d"]["op"] == "+"
    assert by_label["a"]["leaf"] and not by_label["e"]["leaf"]
    shown = names(result)
    edges = {(shown[e["source"]], shown[e["target"]]) for e in model["edges"]}
    assert edges == {("a", "e"), ("b", "e"), ("e", "d"), ("c", "d"), ("d", "L"), ("f", "L")}
    assert len(model["steps"]) == 4  # the seed, then L's, d's and e's closures
    assert result.torch_grads == {} and result.mismatches == []


def test_the_root_is_named_on_the_line(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, LECTURE, "d --engine Value --torch")
    assert result.root is ip.user_ns["d"]
    assert result.grads == {"a": -3.0, "b": 2.0, "c": 1.0, "e": 1.0, "d": 1.0}
    agrees_with_torch(result)


def test_a_dotted_path_names_the_class(ip):
    from micrograd.engine import Value as Micrograd

    result = autograd(ip, LECTURE, "--engine micrograd.engine.Value --torch")
    assert result.grads == LECTURE_GRADS
    agrees_with_torch(result)
    assert type(ip.user_ns["L"]) is Micrograd
    assert ip.user_ns["a"].grad == 6.0


def test_labels_kept_on_our_side_for_a_class_with_slots(ip):
    define(ip, SLOTS_CLASS)
    result = autograd(ip, LECTURE)
    assert result.grads == LECTURE_GRADS
    assert result.values == LECTURE_VALUES
    agrees_with_torch(result)
    a = ip.user_ns["a"]
    assert not hasattr(a, "label")
    assert a.grad == 6.0
    assert {n["label"] for n in result.graph["nodes"]} == set(LECTURE_GRADS)


def test_intermediates_are_labelled_with_their_source_text(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, NEURON)
    assert result.grads["x1*w1 + x2*w2"] == pytest.approx(0.5)
    assert result.grads["x1*w1"] == pytest.approx(0.5)
    assert ip.user_ns["n"].label == "n"
    agrees_with_torch(result)


def test_closures_run_in_topological_order_without_backward(ip):
    define(ip, CLOSURES_ONLY_CLASS)
    assert not hasattr(ip.user_ns["Value"], "backward")
    result = autograd(ip, LECTURE)
    assert result.grads == LECTURE_GRADS
    agrees_with_torch(result)
    assert ip.user_ns["a"].grad == 6.0
    assert len(result.graph["steps"]) == 4


def test_backward_without_closures_gives_grads_and_no_steps(ip):
    define(ip, TAPE_CLASS)
    result = autograd(ip, LECTURE, "--engine Tape --torch")
    assert result.grads == LECTURE_GRADS
    agrees_with_torch(result)
    assert result.graph["steps"] == []
    assert result.graph["engine"] == "Tape"


def test_a_name_used_twice(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, "a = 3.0\nb = a + a")
    assert result.grads == {"a": 2.0, "b": 1.0}
    agrees_with_torch(result)


def test_every_run_starts_from_zero_gradients(ip):
    define(ip, LECTURE_CLASS)
    first = autograd(ip, LECTURE)
    second = autograd(ip, LECTURE)
    assert first.grads == second.grads == LECTURE_GRADS
    # a Value of an earlier cell is read again: its gradient is not added on top
    once = autograd(ip, "M = L * L", "--engine Value")
    twice = autograd(ip, "M = L * L", "--engine Value")
    assert once.grads["L"] == twice.grads["L"] == -16.0  # the label L carries over
    assert ip.user_ns["L"].grad == -16.0
    assert once.grads["a"] == twice.grads["a"] == 2 * -8.0 * 6.0  # dM/da = 2L * dL/da


def test_plain_number_from_an_earlier_cell_is_a_leaf_of_their_class(ip):
    define(ip, LECTURE_CLASS)
    ip.run_cell("x = 3.0").raise_error()
    result = autograd(ip, "y = x * x + x")
    assert result.grads == {"x": 7.0, "x * x": 1.0, "y": 1.0}
    assert type(ip.user_ns["x"]) is float and ip.user_ns["x"] == 3.0  # put back
    agrees_with_torch(result)


def test_neuron_with_the_full_lecture_class_agrees_with_torch(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, NEURON)
    assert result.values["o"] == pytest.approx(1 / math.sqrt(2))
    for label, grad in NEURON_GRADS.items():
        assert result.grads[label] == pytest.approx(grad, abs=1e-12), label
    agrees_with_torch(result)
    assert [name for name in HELPERS if name in ip.user_ns] == []


def test_neuron_written_with_exp_agrees_with_torch(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, NEURON_EXP)
    for label, grad in NEURON_GRADS.items():
        assert result.grads[label] == pytest.approx(grad, abs=1e-12), label
    agrees_with_torch(result)


def test_check_numeric_on_the_learners_class(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, LECTURE, "--engine Value --check numeric")
    assert result.grads == LECTURE_GRADS
    assert set(result.numeric_grads) == {"a", "b", "c", "f"}
    for label, estimate in result.numeric_grads.items():
        assert estimate == pytest.approx(LECTURE_GRADS[label], rel=1e-5)
    assert result.mismatches == []
    assert result.graph["compare"]["columns"] == ["numeric"]
    assert ip.user_ns["a"].grad == 6.0  # the re-runs leave the cell's own Values alone


def test_check_numeric_and_torch_together(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, NEURON, "--engine Value --torch --check numeric")
    assert result.graph["compare"]["columns"] == ["torch", "numeric"]
    assert result.mismatches == []
    assert result.numeric_grads["x1"] == pytest.approx(-1.5, rel=1e-5)


def test_check_numeric_on_a_big_cell_is_skipped_with_a_note(ip):
    """Central differences re-run the learner's cell twice per leaf: past a budget the
    check says so instead of running the cell hundreds of times."""
    define(ip, ITERATIVE_CLASS)  # a chain of 3,000 nodes: deeper than a recursive build_topo
    numbers = ", ".join(f"{0.001 * i:.3f}" for i in range(1000))
    cell = (f"xs = [{numbers}]\n"
            "L = xs[0] * xs[0]\n"
            "for x in xs[1:]:\n"
            "    L = L + x * x")
    result = autograd(ip, cell, "--engine Value --check numeric")
    assert result.numeric_grads == {}
    assert any("--check numeric skipped" in w and "1000 leaves" in w for w in result.warnings)
    assert result.grads["xs[3]"] == pytest.approx(0.006)  # the cell's own backward ran


def test_check_numeric_catches_a_wrong_rule_without_torch(ip):
    define(ip, TANH_BUG_CLASS)
    result = autograd(ip, NEURON, "--engine Value --check numeric")
    assert set(result.mismatches) == {"x1", "w1", "x2", "b"}  # the leaves; w2's grad is 0


def test_a_missing_method_is_one_line_naming_it(ip):
    define(ip, NO_TANH_CLASS)
    out, err = run_failing(ip, "%%autograd --engine Value --torch\n" + NEURON)
    line = one_usage_error(out, err)
    assert "line 8" in line  # the cell's o = tanh(n), the %%autograd line being line 1
    assert "your Value class has no tanh() method: add one" in line
    assert "(exp(2*x) - 1) / (exp(2*x) + 1)" in line
    assert isinstance(ip.user_ns["n"], ip.user_ns["Value"])  # lines before it ran
    assert "o" not in ip.user_ns
    assert [name for name in HELPERS if name in ip.user_ns] == []


def test_a_missing_method_from_run_cell_magic_raises_usage_error(ip):
    define(ip, NO_TANH_CLASS)
    with pytest.raises(UsageError, match=r"your Value class has no tanh\(\) method"):
        ip.run_cell_magic("autograd", "--engine Value", NEURON)


def test_an_engine_name_that_is_not_defined(ip):
    out, err = run_failing(ip, "%%autograd --engine MyValue\na = 2.0\nL = a * a")
    line = one_usage_error(out, err)
    assert "--engine MyValue: no such name" in line
    assert "micrograd.engine.Value" in line
    assert "a" not in ip.user_ns  # the cell did not run


def test_an_engine_path_that_does_not_import(ip):
    out, err = run_failing(ip, "%%autograd --engine micrograd.engine.Nope\na = 2.0\nL = a * a")
    assert "cannot import it" in one_usage_error(out, err)


def test_an_engine_name_that_is_not_a_class(ip):
    ip.run_cell("value = 3").raise_error()
    out, err = run_failing(ip, "%%autograd --engine value\na = 2.0\nL = a * a")
    assert "--engine value: value is a int, not a class" in one_usage_error(out, err)


KARPATHY_STYLE = """\
a = Value(2.0, label='a')
b = Value(-3.0, label='b')
c = Value(10.0, label='c')
e = a*b; e.label = 'e'
d = e + c; d.label = 'd'
f = Value(-2.0, label='f')
L = d * f; L.label = 'L'"""


def test_the_lectures_explicit_value_cells_replay_in_torch(ip):
    # Value(2.0, label='a') written out, as in the lecture: torch makes those leaves too
    define(ip, LECTURE_CLASS)
    result = autograd(ip, KARPATHY_STYLE)
    assert result.grads == LECTURE_GRADS
    assert result.torch_grads == LECTURE_GRADS
    agrees_with_torch(result)
    assert ip.user_ns["a"].label == "a" and ip.user_ns["a"].grad == 6.0


def test_explicit_values_without_labels_are_named_by_the_cell(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, "x = Value(3.0)\ny = x * x + Value(1.0)")
    assert result.grads["x"] == 6.0 and result.grads["y"] == 1.0
    agrees_with_torch(result)


def test_values_of_an_earlier_cell_keep_their_labels_and_compare(ip):
    define(ip, LECTURE_CLASS)
    autograd(ip, LECTURE, "--engine Value")
    result = autograd(ip, "x = 2.0\nM = L * x")
    assert result.grads["L"] == 2.0 and result.grads["a"] == 12.0 and result.grads["x"] == -8.0
    # the graph behind L was recorded by their class in the earlier cell: torch replays it
    agrees_with_torch(result)
    assert result.torch_grads["a"] == 12.0 and result.torch_grads["L"] == 2.0


def test_their_class_is_left_as_it_was(ip):
    import micrograd.engine

    define(ip, LECTURE_CLASS)
    cls = ip.user_ns["Value"]
    before = dict(vars(cls))
    micrograd_before = dict(vars(micrograd.engine.Value))
    autograd(ip, NEURON_EXP)
    autograd(ip, LECTURE, "--engine micrograd.engine.Value")
    assert dict(vars(cls)) == before
    assert dict(vars(micrograd.engine.Value)) == micrograd_before


def test_a_method_the_cell_redefines_is_kept(ip):
    define(ip, LECTURE_CLASS)
    cell = "Value.__neg__ = lambda self: self * -2\na = 3.0\nb = -a"
    result = autograd(ip, cell)
    assert result.grads["a"] == -2.0
    assert ip.user_ns["Value"].__neg__(ip.user_ns["Value"](1.0)).data == -2.0


# --- 2. their backward, step by step ---------------------------------------------------


def test_steps_replay_their_closures_one_node_at_a_time(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, LECTURE)
    seed = result.graph["steps"][0]
    assert seed["seed"] and names(result)[seed["node"]] == "L"
    assert step_updates(result) == [
        ("L", {"d": (0.0, -2.0), "f": (0.0, 4.0)}),
        ("d", {"e": (0.0, -2.0), "c": (0.0, -2.0)}),
        ("e", {"a": (0.0, 6.0), "b": (0.0, -4.0)}),
    ]
    upstream = {names(result)[s["node"]]: s["upstream"] for s in result.graph["steps"][1:]}
    assert upstream == {"L": 1.0, "d": -2.0, "e": -2.0}
    e_step = result.graph["steps"][3]
    local = {names(result)[u["target"]]: u["local"] for u in e_step["updates"]}
    assert local == {"a": -3.0, "b": 2.0}  # de/da = b, de/db = a
    assert len(result.learner_steps) == 3


def test_steps_show_what_their_rule_did_not_what_it_should(ip):
    define(ip, TANH_BUG_CLASS)
    result = autograd(ip, NEURON, "--engine Value")
    tanh_step = next(s for s in result.graph["steps"]
                     if names(result)[s["node"]] == "o" and not s.get("seed"))
    (update,) = tanh_step["updates"]
    t = 1 / math.sqrt(2)
    assert names(result)[update["target"]] == "n"
    assert update["before"] == 0.0
    assert update["after"] == pytest.approx(1 - t)  # their 1 - t, not 1 - t**2
    assert update["local"] == pytest.approx(1 - t)


def test_a_node_reached_twice_accumulates_in_the_steps(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, "a = 3.0\nb = a * 2.0\nc = a * b")
    assert result.grads["a"] == 12.0  # c = 2a**2
    a_updates = [u for _, targets in step_updates(result) for t, u in targets.items()
                 if t == "a"]
    assert a_updates == [(0.0, 6.0), (6.0, 12.0)]


def test_no_steps_above_the_node_cap(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, LECTURE, "--engine Value --torch --max-nodes 5")
    assert result.graph["truncated"] is True
    assert result.graph["steps"] == []
    assert result.grads == LECTURE_GRADS
    agrees_with_torch(result)


def test_first_failing_step_of_a_plus_a_with_the_assign_bug(ip):
    define(ip, ASSIGN_BUG_CLASS)
    result = autograd(ip, "a = 3.0\nb = a + a")
    assert result.mismatches == ["a"]
    assert result.grads == {"a": 1.0, "b": 1.0}
    assert result.torch_grads == {"a": 2.0, "b": 1.0}
    first = ("`=` where `+=` belongs in the rule of `a+a` at node `b`: a is both operands, "
             "so it gets two contributions of 1.0000; your rule kept one (a.grad = 1.0000, "
             "torch says 2.0000)")
    assert result.graph["compare"]["first_failure"] == first
    assert result.warnings[0] == f"first wrong rule: {first}"
    rows = {r["label"]: r for r in result.graph["compare"]["rows"]}
    assert (rows["a"]["engine"], rows["a"]["torch"], rows["a"]["ok"]) == (1.0, 2.0, False)
    assert rows["b"]["ok"] is True
    assert step_updates(result) == [("b", {"a": (0.0, 1.0)})]


def test_assign_bug_on_a_lecture_sized_cell(ip):
    # a feeds e = a + b and, further down, d = e * a: d's rule adds to a.grad first, then
    # e's rule (with `=`) throws that away, whatever order the sets come out in
    define(ip, ASSIGN_BUG_CLASS)
    cell = "a = 2.0\nb = -3.0\nc = 10.0\ne = a + b\nd = e * a\nf = -2.0\nL = d * f + c"
    result = autograd(ip, cell)
    # L = (a + b) * a * f + c: dL/da = f * (2a + b) = -2, dL/db = f * a = -4
    assert result.torch_grads["a"] == -2.0 and result.torch_grads["b"] == -4.0
    assert result.grads["a"] == -4.0
    assert result.mismatches == ["a"]
    first = result.graph["compare"]["first_failure"]
    # e's rule (with `=`) threw away the 2.0 that d's rule had added to a.grad
    # their _prev is a set: e's parents come in either order
    assert first in [f"`=` where `+=` belongs in the rule of `{pair}` at node `e`: it set a.grad "
                     f"to -4.0000, dropping the 2.0000 it already had (torch: -2.0000)"
                     for pair in ("a+b", "b+a")]
    assert result.warnings[0] == f"first wrong rule: {first}"


def test_assign_bug_everywhere_on_the_lectures_bug_example(ip):
    # the lecture's own example of the bug: a and b each feed two nodes
    define(ip, ASSIGN_BUG_EVERYWHERE_CLASS)
    result = autograd(ip, "a = -2.0\nb = 3.0\nd = a * b\ne = a + b\nf = d * e")
    assert result.torch_grads == {"a": -3.0, "b": -8.0, "d": 1.0, "e": -6.0, "f": 1.0}
    assert sorted(result.mismatches) == ["a", "b"]
    assert re.fullmatch(r"`=` where `\+=` belongs in the rule of `\w\*?\+?\w` at node `[de]`: "
                        r"it set [ab]\.grad to .*", result.graph["compare"]["first_failure"])
    rows = {r["label"]: r for r in result.graph["compare"]["rows"]}
    assert [r["ok"] for r in result.graph["compare"]["rows"]] == [False, False, True, True, True]
    assert rows["d"]["ok"] and rows["e"]["ok"] and rows["f"]["ok"]


def test_the_correct_class_has_no_failing_step_on_the_same_cell(ip):
    define(ip, LECTURE_CLASS)
    result = autograd(ip, "a = -2.0\nb = 3.0\nd = a * b\ne = a + b\nf = d * e")
    assert result.grads == {"a": -3.0, "b": -8.0, "d": 1.0, "e": -6.0, "f": 1.0}
    agrees_with_torch(result)


def test_wrong_tanh_derivative_fails_the_tanh_input_and_upstream(ip):
    define(ip, TANH_BUG_CLASS)
    result = autograd(ip, NEURON)
    t = 1 / math.sqrt(2)
    assert result.grads["n"] == pytest.approx(1 - t)
    assert result.torch_grads["n"] == pytest.approx(0.5)
    # everything upstream of o gets the wrong factor; w2's grad is x2 * ... = 0 either way
    assert set(result.mismatches) == {"n", "x1*w1 + x2*w2", "x1*w1", "x2*w2", "x1", "w1",
                                      "x2", "b"}
    rows = {r["label"]: r["ok"] for r in result.graph["compare"]["rows"]}
    assert rows["o"] is True and rows["w2"] is True
    first = result.graph["compare"]["first_failure"]
    found = re.fullmatch(r"the rule of `tanh` at node `o`: d out/d n = (\S+); torch says (\S+) "
                         r"\(1 - o²\)", first)
    assert found, first
    assert float(found[1]) == pytest.approx(1 - t, abs=1e-4)
    assert float(found[2]) == pytest.approx(0.5)
    assert result.warnings[0] == f"first wrong rule: {first}"


def test_backward_and_closures_disagreeing_is_noted(ip):
    # backward() forgets reversed(): leaves first, so no gradient reaches them
    source = variant(LECTURE_CLASS, "        for node in reversed(topo):\n",
                     "        for node in topo:\n")
    define(ip, source)
    result = autograd(ip, "a = 2.0\nb = a * a\nc = b * b", "--engine Value --torch")
    assert result.grads == {"a": 0.0, "b": 8.0, "c": 1.0}  # what THEIR backward() gave
    assert ip.user_ns["a"].grad == 0.0
    assert result.mismatches == ["a"]  # d(a**4)/da = 32
    assert any("your backward() gives other gradients than your _backward closures" in w
               for w in result.warnings)
    # their closures were right, so no step is to blame: the note says where to look
    assert "first_failure" not in result.graph["compare"]


# --- 3. the lecture's classic mistakes -------------------------------------------------


def test_missing_radd_is_explained(ip):
    define(ip, NO_RADD_CLASS)
    out, err = run_failing(ip, "%%autograd --engine Value\na = 3.0\nb = 2 + a\nc = b * a")
    assert "TypeError" in out
    assert "----> 3 b = 2 + a" in out
    assert "unsupported operand type(s) for +: 'int' and 'Value'" in out
    assert "Python tries int.__add__ first, then Value.__radd__" in out
    assert "your Value class has no __radd__" in out
    assert "def __radd__(self, other)" in out
    assert "return self + other" in out
    for internal in INTERNALS:
        assert internal not in out + err
    assert isinstance(ip.user_ns["a"], ip.user_ns["Value"])
    assert "b" not in ip.user_ns and "c" not in ip.user_ns
    assert [name for name in HELPERS if name in ip.user_ns] == []
    # with __radd__ added, the same cell runs
    define(ip, LECTURE_CLASS)
    result = autograd(ip, "a = 3.0\nb = 2 + a\nc = b * a")
    assert result.grads["a"] == 2 * 3.0 + 2
    agrees_with_torch(result)


CHAIN = "x = 0.5\ny = x\nfor _ in range(5000):\n    y = y + x\nL = y * 2.0"


def test_recursive_build_topo_on_a_long_chain_says_recursion(ip):
    define(ip, LECTURE_CLASS)
    out, err = run_failing(ip, "%%autograd --engine Value\n" + CHAIN)
    line = one_usage_error(out, err)
    assert "your backward() hit Python's recursion limit" in line
    assert "recursive build_topo" in line
    assert "explicit stack" in line
    assert "on a graph of 5,003 nodes" in line  # x, 5000 sums, the constant 2.0, L
    # the kernel goes on: a normal cell, and a %%autograd cell on the same class
    ip.run_cell("z = 1 + 1").raise_error()
    assert ip.user_ns["z"] == 2
    result = autograd(ip, LECTURE)
    assert result.grads == LECTURE_GRADS
    agrees_with_torch(result)


def test_micrograd_recursive_backward_on_a_long_chain_says_recursion(ip):
    out, err = run_failing(ip, "%%autograd --engine micrograd.engine.Value\n" + CHAIN)
    assert "recursion limit" in one_usage_error(out, err)
    ip.run_cell("z = 2").raise_error()


def test_iterative_backward_on_a_long_chain(ip):
    define(ip, ITERATIVE_CLASS)
    result = autograd(ip, CHAIN, "--engine Value")
    assert result.graph["node_count"] == 5003  # x, 5000 sums, the constant 2.0, L
    assert result.graph["truncated"] is True and result.graph["steps"] == []
    assert ip.user_ns["x"].grad == 2 * 5001
    assert result.grads["x"] == 2 * 5001
    assert result.warnings == []


def test_closures_only_on_a_long_chain(ip):
    # no backward(): the magic runs the closures itself, walking _prev without recursion
    define(ip, CLOSURES_ONLY_CLASS)
    result = autograd(ip, CHAIN, "--engine Value")
    assert ip.user_ns["x"].grad == 2 * 5001
    assert result.grads["L"] == 1.0


# --- 3. a correct class: micrograd 0.1.0 from PyPI ---------------------------------------


@pytest.mark.parametrize("line", ["--engine Value --torch",
                                  "--engine micrograd.engine.Value --torch"])
def test_micrograd_passes_the_lecture_cell(ip, line):
    ip.run_cell("from micrograd.engine import Value").raise_error()
    result = autograd(ip, LECTURE, line)
    assert result.grads == LECTURE_GRADS
    assert result.torch_grads == LECTURE_GRADS
    agrees_with_torch(result)
    assert step_updates(result)[0] == ("L", {"d": (0.0, -2.0), "f": (0.0, 4.0)})


@pytest.mark.parametrize("line", ["--engine Value --torch",
                                  "--engine micrograd.engine.Value --torch"])
def test_micrograd_passes_the_neuron_with_its_own_ops(ip, line):
    ip.run_cell("from micrograd.engine import Value").raise_error()
    result = autograd(ip, NEURON_RELU, line)
    for label, grad in NEURON_RELU_GRADS.items():
        assert result.grads[label] == pytest.approx(grad, abs=1e-12), label
    agrees_with_torch(result)


def test_micrograd_passes_a_polynomial_with_division_and_powers(ip):
    cell = "a = 1.5\nb = -0.5\nc = (a**2 - b) / (a + 1) + 3 * b**3\nL = c - a / 2"
    result = autograd(ip, cell, "--engine micrograd.engine.Value --torch --check numeric")
    agrees_with_torch(result)
    assert result.numeric_grads["a"] == pytest.approx(result.grads["a"], rel=1e-5)


@pytest.mark.parametrize("function", ["tanh", "exp"])
def test_micrograd_has_no_tanh_or_exp_one_line(ip, function):
    cell = NEURON.replace("o = tanh(n)", f"o = {function}(n)")
    out, err = run_failing(ip, "%%autograd --engine micrograd.engine.Value --torch\n" + cell)
    line = one_usage_error(out, err)
    assert f"your Value class has no {function}() method: add one" in line
