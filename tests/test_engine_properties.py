"""Random expression programs over every op, with reused nodes, against torch float64.

Hypothesis draws a program: a few leaves, then steps that each apply one op to nodes made
so far (any node may be picked again, so nodes get several users). The program runs on
the engine; a step whose operands are outside the op's domain, or whose result would be
ill-conditioned, is left out. The steps that ran are replayed on torch float64 tensors and
every node's value and gradient is compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import Value
from engine.ops import FUNCTIONS, OPS


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is optional (pip install "
                               "'micrograd-magics[torch]'); compared when installed")


REL = 1e-9

ARITHMETIC = {  # kind -> step(a, b, k): plain operators, so Values and tensors both run it
    "+": lambda a, b, k: a + b,
    "-": lambda a, b, k: a - b,
    "*": lambda a, b, k: a * b,
    "/": lambda a, b, k: a / b,
    "**": lambda a, b, k: a**b,
    "x+k": lambda a, b, k: a + k,
    "k+x": lambda a, b, k: k + a,
    "x-k": lambda a, b, k: a - k,
    "k-x": lambda a, b, k: k - a,
    "x*k": lambda a, b, k: a * k,
    "k*x": lambda a, b, k: k * a,
    "x/k": lambda a, b, k: a / k,
    "k/x": lambda a, b, k: k / a,
    "x**k": lambda a, b, k: a**k,
    "k**x": lambda a, b, k: k**a,
    "neg": lambda a, b, k: -a,
    "abs": lambda a, b, k: abs(a),
}
BINARY = ["+", "-", "*", "/", "**"]
KINDS = [*ARITHMETIC, *FUNCTIONS]


def apply(kind: str, a, b, k: float, as_function: bool, lib):
    """One step on Values (lib=engine) or tensors (lib=torch); a function such as tanh is
    called as a method, a.tanh(), or as lib.tanh(a)."""
    if kind in ARITHMETIC:
        return ARITHMETIC[kind](a, b, k)
    return getattr(lib, kind)(a) if as_function else getattr(a, kind)()


def test_program_steps_cover_every_op():
    x, y = Value(1.5), Value(0.5)
    made = {apply(kind, x, y, 2.0, False, engine)._op for kind in KINDS}
    assert made == set(OPS)


# --- where a step may run --------------------------------------------------------------
# `condition` bounds how much a relative error of the inputs can grow through the program
# (leaves are exact: 0). Ops whose result is not exact carry a few ulp of their own and
# torch's libm may differ from Python's by that much; a step that would let those ulp
# grow past ~1e3 (cancellation in +/-, log near 1) is left out, so 1e-9 stays meaningful.

MAX_CONDITION = 1e3
MAX_MAGNITUDE = 1e4


def in_domain(kind: str, a: float, b: float, k: float) -> bool:
    x = a
    if kind == "/":
        return abs(b) >= 0.1
    if kind == "**":
        # and not a ~ 1, where the exponent's gradient out*log(a) is ill-conditioned
        return 0.1 <= a <= 10.0 and abs(b) <= 3.0 and abs(math.log(a)) >= 1e-2
    if kind == "x/k":
        return abs(k) >= 0.1
    if kind == "k/x":
        return abs(x) >= 0.1
    if kind == "x**k":
        if float(k).is_integer():
            return abs(x) >= 0.1 or k >= 0
        return 0.1 <= x <= 10.0
    if kind == "k**x":
        return 0.1 <= k <= 5.0 and abs(x) <= 5.0
    if kind == "exp":
        return -10.0 <= x <= 5.0
    if kind in ("log", "sqrt"):
        return 0.1 <= x <= MAX_MAGNITUDE
    if kind in ("tanh", "sigmoid"):
        # tanh' is (1 - t)(1 + t), as torch computes it: saturated inputs agree too
        return abs(x) <= 12.0
    return True


def condition(kind: str, a: float, b: float, k: float, out: float,
              ca: float, cb: float) -> float:
    """First-order bound of out's relative error, in units of rounding error, from a's (ca)
    and b's (cb)."""
    if kind in ("+", "-", "x+k", "k+x", "x-k", "k-x"):
        other, c_other = (b, cb) if kind in BINARY else (k, 0.0)
        scaled = abs(a) * ca + abs(other) * c_other
        if scaled == 0.0:
            return 1.0
        return math.inf if out == 0.0 else scaled / abs(out) + 1.0
    if kind in ("*", "/"):
        return ca + cb + 1.0
    if kind == "**":
        return abs(b) * ca + abs(b * math.log(a)) * cb + 2.0
    if kind in ("x*k", "k*x", "x/k", "k/x"):
        return ca + 2.0
    if kind == "x**k":
        return abs(k) * ca + 2.0
    if kind == "k**x":
        return abs(a * math.log(k)) * ca + 2.0
    if kind == "neg":
        return ca
    if kind == "relu":
        return ca if a > 0 else 0.0
    if kind == "exp":
        return abs(a) * ca + 2.0
    if kind == "log":
        return ca / abs(out) + 2.0 if out else math.inf
    if kind == "sqrt":
        return ca / 2 + 1.0
    return ca + 2.0  # tanh and sigmoid damp an input error: |x f'(x)/f(x)| <= 1


# --- programs ----------------------------------------------------------------------------

leaf_values = st.floats(-3.0, 3.0, allow_nan=False)
constants = st.one_of(st.sampled_from([0, 1, 2, 3, -1, -2, -3]), st.floats(-3.0, 3.0))
steps = st.tuples(st.sampled_from(KINDS), st.integers(0, 255), st.integers(0, 255),
                  constants, st.booleans())
programs = st.tuples(st.lists(leaf_values, min_size=1, max_size=4),
                     st.lists(steps, min_size=4, max_size=40))


@dataclass
class Step:
    kind: str
    i: int  # operand indices into the node list
    j: int
    k: float
    as_function: bool


def run_on_engine(leaves: list[float], raw_steps) -> tuple[list[Value], list[Step]]:
    """Run what can run; return every node (leaves first) and the steps that ran."""
    nodes = [Value(x, label=f"x{n}") for n, x in enumerate(leaves)]
    conditions = [0.0] * len(nodes)
    ran = []
    for kind, raw_i, raw_j, k, as_function in raw_steps:
        i, j = len(nodes) - 1 - raw_i % len(nodes), len(nodes) - 1 - raw_j % len(nodes)
        a, b = nodes[i], nodes[j]
        if not in_domain(kind, a.data, b.data, k):
            continue
        out = apply(kind, a, b, k, as_function, engine)
        if kind == "-" and i == j:
            c = 0.0  # x - x is exactly 0 in both
        else:
            c = condition(kind, a.data, b.data, k, out.data, conditions[i], conditions[j])
        if not (math.isfinite(out.data) and abs(out.data) <= MAX_MAGNITUDE and c <= MAX_CONDITION):
            continue
        nodes.append(out)
        conditions.append(c)
        ran.append(Step(kind, i, j, k, as_function))
    return nodes, ran


def sum_of_squares(nodes):
    """Every node squared and summed: each node gets more users, and no sum cancels."""
    total = nodes[0] * nodes[0]
    for node in nodes[1:]:
        total = total + node * node
    return total


def run_on_torch(torch, leaves: list[float], ran: list[Step]):
    nodes = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    for step in ran:
        out = apply(step.kind, nodes[step.i], nodes[step.j], step.k, step.as_function, torch)
        out.retain_grad()
        nodes.append(out)
    root = sum_of_squares(nodes)
    root.backward()
    return nodes, root


def gradient_scales(root: Value) -> dict[int, float]:
    """Per node, the sum over all paths to root of |product of local derivatives|.

    It bounds the terms a gradient adds up, so `REL * scale` is the 1e-9 relative
    agreement even where the terms cancel: the engine and torch add them in different
    orders, and a sum that cancels to ~0 keeps only the rounding of the order used.
    """
    order = engine.topological_order(root)
    scale = {id(node): 0.0 for node in order}
    scale[id(root)] = 1.0
    for node in reversed(order):
        for parent, local in engine.local_gradients(node):
            scale[id(parent)] += scale[id(node)] * abs(local)
    return scale


def describe(leaves, ran) -> str:
    lines = [f"leaves {leaves}"]
    lines += [f"n{len(leaves) + n} = {s.kind}(n{s.i}, n{s.j}, k={s.k}, function={s.as_function})"
              for n, s in enumerate(ran)]
    return "\n".join(lines)


@settings(max_examples=200, deadline=None)
@given(programs)
def test_random_programs_agree_with_torch(torch, program):
    leaves, raw_steps = program
    nodes, ran = run_on_engine(leaves, raw_steps)
    root = sum_of_squares(nodes)
    root.backward()
    torch_nodes, torch_root = run_on_torch(torch, leaves, ran)
    scales = gradient_scales(root)
    where = describe(leaves, ran)

    assert root.data == pytest.approx(torch_root.item(), rel=REL, abs=0.0), where
    for n, (node, tnode) in enumerate(zip(nodes, torch_nodes)):
        assert node.data == pytest.approx(tnode.item(), rel=REL, abs=0.0), f"n{n}\n{where}"
        expected = tnode.grad.item()
        tolerance = REL * max(abs(expected), scales[id(node)])
        assert abs(node.grad - expected) <= tolerance, (
            f"grad of n{n}: {node.grad} vs torch {expected}\n{where}")


@settings(max_examples=100, deadline=None)
@given(programs)
def test_random_programs_reuse_nodes_and_backward_steps_agree(program):
    """The same programs through backward_steps: each rule runs once, after every user of
    its node, and the grads equal backward()'s."""
    leaves, raw_steps = program
    nodes, _ = run_on_engine(leaves, raw_steps)
    root = sum_of_squares(nodes)
    steps = engine.backward_steps(root)
    stepped = [node.grad for node in nodes]
    engine.zero_grad(root)
    assert all(node.grad == 0.0 for node in engine.topological_order(root))
    root.backward()
    scales = gradient_scales(root)
    for node, grad in zip(nodes, stepped):
        assert abs(node.grad - grad) <= 1e-12 * scales[id(node)]

    order = engine.topological_order(root)
    users = {id(node): 0 for node in order}
    for node in order:
        for parent in node._prev:
            users[id(parent)] += 1
    assert all(users[id(node)] >= 2 for node in nodes)  # each node is reused
    position = {id(step.node): n for n, step in enumerate(steps)}
    assert len(position) == len(steps) == sum(1 for node in order if node._prev)
    for node in order:
        for parent in node._prev:
            if parent._prev:
                assert position[id(node)] < position[id(parent)]
