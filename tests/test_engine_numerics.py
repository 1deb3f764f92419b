"""Non-finite numerics: the engine follows torch float64 (inf, nan, -inf) and never raises.

The cases a learner meets by hand are checked literally; when torch is installed the same
cases, and a grid of special values through every op, are checked against torch, forward
and gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import Value, backward_steps
from engine.ops import OPS

TORCH_REASON = "torch is optional (pip install 'micrograd-magics[torch]'); compared when installed"

INF, NAN = math.inf, math.nan


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def tensor(torch, x: float):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def same(ours: float, theirs: float, rel: float = 0.0) -> bool:
    """Equal as torch reports them: nan matches nan, inf matches inf of the same sign.

    The sign of a zero is not compared: a leaf's grad starts at +0.0 and +0.0 + -0.0 is
    +0.0, while torch stores the first -0.0 it is given.
    """
    if math.isnan(ours) or math.isnan(theirs):
        return math.isnan(ours) and math.isnan(theirs)
    if ours == theirs:
        return True
    return math.isfinite(theirs) and abs(ours - theirs) <= rel * abs(theirs)


def run_engine(build: Callable, inputs: tuple[float, ...]) -> tuple[float, list[float]]:
    leaves = [Value(x) for x in inputs]
    out = build(*leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def run_torch(torch, build: Callable, inputs: tuple[float, ...]) -> tuple[float, list[float]]:
    leaves = [tensor(torch, x) for x in inputs]
    out = build(*leaves)
    out.backward()
    return out.item(), [0.0 if t.grad is None else t.grad.item() for t in leaves]


# --- the cases by hand: (build, inputs, value, gradients) --------------------------------
# `build` is plain arithmetic and tensor-compatible, so torch can run the same cases.

CASES = [
    pytest.param(lambda x: x.tanh(), (1000.0,), 1.0, [0.0], id="tanh(1000) is 1"),
    pytest.param(lambda x: x.tanh(), (-1000.0,), -1.0, [0.0], id="tanh(-1000) is -1"),
    pytest.param(lambda x: x.sigmoid(), (-1000.0,), 0.0, [0.0], id="sigmoid(-1000) is 0"),
    pytest.param(lambda x: x.sigmoid(), (1000.0,), 1.0, [0.0], id="sigmoid(1000) is 1"),
    pytest.param(lambda x: x.log(), (0.0,), -INF, [INF], id="log(0) is -inf"),
    pytest.param(lambda x: x.log(), (-1.0,), NAN, [-1.0], id="log(-1) is nan"),
    pytest.param(lambda x: x.log(), (INF,), INF, [0.0], id="log(inf) is inf"),
    pytest.param(lambda x: x.exp(), (1000.0,), INF, [INF], id="exp(1000) is inf"),
    pytest.param(lambda x: x.exp(), (-1000.0,), 0.0, [0.0], id="exp(-1000) is 0"),
    pytest.param(lambda x: x.exp(), (-INF,), 0.0, [0.0], id="exp(-inf) is 0"),
    pytest.param(lambda x: x.sqrt(), (-1.0,), NAN, [NAN], id="sqrt(-1) is nan"),
    pytest.param(lambda x: x.sqrt(), (0.0,), 0.0, [INF], id="sqrt(0) has grad inf"),
    pytest.param(lambda a, b: a / b, (1.0, 0.0), INF, [INF, -INF], id="1/0 is inf"),
    pytest.param(lambda a, b: a / b, (-1.0, 0.0), -INF, [INF, INF], id="-1/0 is -inf"),
    pytest.param(lambda a, b: a / b, (0.0, 0.0), NAN, [INF, NAN], id="0/0 is nan"),
    pytest.param(lambda x: x / 0.0, (1.0,), INF, [INF], id="x/0 folded is inf"),
    pytest.param(lambda x: 1.0 / x, (0.0,), INF, [-INF], id="1/x at 0 is inf"),
    pytest.param(lambda x: 0.0 / x, (0.0,), NAN, [NAN], id="0/x at 0 is nan"),
    pytest.param(lambda x: x ** (1 / 3), (-8.0,), NAN, [NAN], id="(-8)**(1/3) is nan"),
    pytest.param(lambda a, b: a**b, (-8.0, 1 / 3), NAN, [NAN, NAN], id="(-8)**b, b=1/3"),
    pytest.param(lambda a, b: a**b, (-2.0, 2.0), 4.0, [-4.0, NAN],
                 id="negative base: exponent grad is nan"),
    pytest.param(lambda x: (-2.0) ** x, (2.0,), 4.0, [NAN],
                 id="negative constant base: grad is nan"),
    pytest.param(lambda a, b: a**b, (0.0, 0.0), 1.0, [0.0, 0.0], id="0**0 is 1, grads 0"),
    pytest.param(lambda x: x**0, (0.0,), 1.0, [0.0], id="x**0 at 0 has grad 0"),
    pytest.param(lambda x: x**-1, (0.0,), INF, [-INF], id="0**-1 is inf"),
    pytest.param(lambda a, b: a**b, (0.0, 2.0), 0.0, [0.0, 0.0], id="0**2 exponent grad 0"),
    pytest.param(lambda x: x**400, (10.0,), INF, [INF], id="10**400 overflows to inf"),
    pytest.param(lambda x: x**401, (-10.0,), -INF, [INF], id="(-10)**401 is -inf"),
    pytest.param(lambda x: 2.0**x, (2000.0,), INF, [INF], id="2**2000 is inf"),
    pytest.param(lambda a, b: a * b, (1e200, 1e200), INF, [1e200, 1e200], id="1e200**2 is inf"),
    pytest.param(lambda a, b: a - b, (INF, INF), NAN, [1.0, -1.0], id="inf - inf is nan"),
    pytest.param(lambda x: x * 0.0, (INF,), NAN, [0.0], id="inf * 0 is nan"),
    pytest.param(lambda x: (x * 2 + 1).tanh().exp().log().sigmoid(), (NAN,), NAN, [NAN],
                 id="nan propagates through a chain"),
    pytest.param(lambda x: (x * x - x).sqrt() + x.exp(), (INF,), NAN, [NAN],
                 id="inf propagates to nan"),
]


@pytest.mark.parametrize("build, inputs, value, grads", CASES)
def test_non_finite_numerics_by_hand(build, inputs, value, grads):
    data, leaf_grads = run_engine(build, inputs)
    assert same(data, value), (data, value)
    assert all(same(g, e) for g, e in zip(leaf_grads, grads)), (leaf_grads, grads)


@pytest.mark.parametrize("build, inputs, value, grads", CASES)
def test_non_finite_numerics_match_torch(torch, build, inputs, value, grads):
    data, leaf_grads = run_engine(build, inputs)
    torch_data, torch_grads = run_torch(torch, build, inputs)
    assert same(value, torch_data), "the expected value in this test is not torch's"
    assert all(same(e, t) for e, t in zip(grads, torch_grads)), "expected grads are not torch's"
    assert same(data, torch_data)
    assert all(same(g, t) for g, t in zip(leaf_grads, torch_grads)), (leaf_grads, torch_grads)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "log", "exp", "sqrt", "relu", "sin",
                                  "cos"])
def test_functions_of_non_finite_plain_numbers_do_not_raise(name):
    function = getattr(engine, name)
    for x in (INF, -INF, NAN, 1000.0, -1000.0, 0.0, -1.0):
        assert isinstance(function(x), float)


def test_functions_of_plain_numbers_by_hand():
    assert engine.tanh(1000.0) == 1.0
    assert engine.sigmoid(-1000.0) == 0.0
    assert engine.log(0.0) == -INF
    assert math.isnan(engine.log(-1.0))
    assert engine.exp(1000) == INF


# --- every op on a grid of special values, against torch ---------------------------------

SPECIALS = [0.0, -0.0, 1.0, -1.0, 2.0, -8.0, 0.5, 1 / 3, -1 / 3, 3.0, -2.0, 1000.0, -1000.0,
            INF, -INF, NAN]

BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "**": lambda a, b: a**b}
WITH_CONSTANT = {  # op -> build(x, k)
    "+k": lambda x, k: x + k, "-k": lambda x, k: x - k, "k-": lambda x, k: k - x,
    "*k": lambda x, k: x * k, "/k": lambda x, k: x / k, "k/": lambda x, k: k / x,
    "**k": lambda x, k: x**k, "k**": lambda x, k: k**x,
}
UNARY = {"neg": lambda x: -x, "exp": lambda x: x.exp(), "log": lambda x: x.log(),
         "tanh": lambda x: x.tanh(), "ReLU": lambda x: x.relu(),
         "sigmoid": lambda x: x.sigmoid(), "sqrt": lambda x: x.sqrt(),
         "sin": lambda x: x.sin(), "cos": lambda x: x.cos(), "abs": lambda x: abs(x)}


def torch_quirk(op: str, x: float, k: float) -> bool:
    """Where torch float64 disagrees with itself, there is nothing to match.

    torch computes `t ** 0.5` as sqrt(t) and `t ** -0.5` as rsqrt(t): (-inf)**0.5 is nan and
    (-0.0)**0.5 is -0.0 there, while torch.pow(t, t2) and C's pow give inf and +0.0.
    """
    return op == "**k" and k in (0.5, -0.5) and x in (-INF, 0.0) and math.copysign(1, x) < 0


def relu_of_nan(op: str, x: float) -> bool:
    return op == "ReLU" and math.isnan(x)  # see test_relu_gradient_at_nan_matches_torch


def test_grid_covers_every_op():
    assert set(BINARY) | set(WITH_CONSTANT) | set(UNARY) == set(OPS)


def grid_mismatches(torch, op: str) -> list[str]:
    mismatches = []

    def compare(case: str, build: Callable, inputs: tuple[float, ...]) -> None:
        ours = run_engine(build, inputs)
        theirs = run_torch(torch, build, inputs)
        ok = same(ours[0], theirs[0], rel=1e-12) and all(
            same(g, t, rel=1e-9) for g, t in zip(ours[1], theirs[1]))
        if not ok:
            mismatches.append(f"{case}: engine {ours}, torch {theirs}")

    for x in SPECIALS:
        if op in UNARY and not relu_of_nan(op, x):
            compare(f"{op}({x})", UNARY[op], (x,))
        for y in SPECIALS:
            if op in BINARY:
                compare(f"{x} {op} {y}", BINARY[op], (x, y))
            if op in WITH_CONSTANT and not torch_quirk(op, x, y):
                compare(f"{op} x={x} k={y}", lambda v, k=y: WITH_CONSTANT[op](v, k), (x,))
    return mismatches


@pytest.mark.parametrize("op", sorted(OPS))
def test_special_value_grid_matches_torch(torch, op):
    mismatches = grid_mismatches(torch, op)
    assert not mismatches, "\n".join(mismatches[:20])


# --- nothing raises, whatever the float ----------------------------------------------------

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
OP_BUILDERS = (
    [(op, lambda a, b, k, f=f: f(a, b)) for op, f in BINARY.items()]
    + [(op, lambda a, b, k, f=f: f(a, k)) for op, f in WITH_CONSTANT.items()]
    + [(op, lambda a, b, k, f=f: f(a)) for op, f in UNARY.items()]
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(OP_BUILDERS), ANY_FLOAT, ANY_FLOAT, ANY_FLOAT)
def test_no_op_raises_for_any_float(op_builder, a, b, k):
    op, build = op_builder
    va, vb = Value(a), Value(b)
    out = build(va, vb, k)
    assert out._op == op
    out.backward()
    assert all(type(x) is float for x in (out.data, va.grad, vb.grad))
    engine.zero_grad(out)
    assert len(backward_steps(out)) == 1


# --- places where a naive rule diverges from torch -------------------------------------


def test_relu_gradient_at_nan_matches_torch(torch):
    ours = run_engine(lambda x: x.relu(), (NAN,))
    theirs = run_torch(torch, lambda x: x.relu(), (NAN,))
    assert math.isnan(ours[0]) and math.isnan(theirs[0])
    assert same(ours[1][0], theirs[1][0])


@pytest.mark.parametrize("x", [8.0, -10.0, 12.0])
def test_tanh_gradient_near_saturation_matches_torch(torch, x):
    ours = run_engine(lambda v: v.tanh(), (x,))
    theirs = run_torch(torch, lambda v: v.tanh(), (x,))
    assert ours[0] == theirs[0]
    assert ours[1][0] == pytest.approx(theirs[1][0], rel=1e-12, abs=0.0)


@pytest.mark.parametrize("a, b, grad_b", [(0.0, 1e-300, 0.0), (1e-300, 1e-300, -1e300),
                                          (1e300, 1e300, -1e-300)])
def test_division_gradient_at_extreme_magnitudes(a, b, grad_b):
    va, vb = Value(a), Value(b)
    (va / vb).backward()
    assert vb.grad == pytest.approx(grad_b, rel=1e-12, abs=0.0)


# --- a zero local derivative meets an infinite upstream gradient: torch selects -----------

HUGE = 1e200  # two of them overflow to inf: the upstream gradient of the node before


@pytest.mark.parametrize("build, x, grad", [
    (lambda v: v.relu() * HUGE * HUGE, -1.0, 0.0),  # ReLU's backward is a select
    (lambda v: (v ** 0) * HUGE * HUGE, 3.0, 0.0),  # so is x ** 0's
    (lambda v: (v ** 2) * HUGE * HUGE, 0.0, NAN),  # a product: inf * 0 is nan in torch too
    (lambda v: abs(v) * HUGE * HUGE, 0.0, NAN),
    (lambda v: (v * 0.0) * HUGE * HUGE, 2.0, NAN),
])
def test_zero_local_derivative_under_an_infinite_gradient_is_torchs(torch, build, x, grad):
    assert run_torch(torch, build, (x,))[1][0] == pytest.approx(grad, nan_ok=True)
    ours = run_engine(build, (x,))
    assert ours[1][0] == pytest.approx(grad, nan_ok=True)
    leaf = Value(x)
    root = build(leaf)
    steps = backward_steps(root)  # the step-through agrees with backward
    assert leaf.grad == pytest.approx(grad, nan_ok=True)
    assert steps[-1].updates[0].contribution == pytest.approx(grad, nan_ok=True)


def test_relu_of_negative_zero_keeps_torchs_sign(torch):
    ours = Value(-0.0).relu().data
    theirs = float(torch.relu(torch.tensor(-0.0, dtype=torch.float64)))
    assert math.copysign(1.0, ours) == math.copysign(1.0, theirs) == -1.0
