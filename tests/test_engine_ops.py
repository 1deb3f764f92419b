"""Every op of engine.ops.OPS: its node, its gradient against finite differences and
against torch float64, and the TypeError a wrong operand gets."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

import engine
from engine import Value
from engine.ops import FUNCTIONS, OPS

TORCH_REASON = "torch is optional (pip install 'micrograd-magics[torch]'); compared when installed"


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def tensor(torch, x: float):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


# --- the cases: one or more per op -------------------------------------------------------
# Each case is (op, build, points). `build` takes the operands and is plain arithmetic, so
# the same function builds a Value graph and a torch graph. Points stay where the op is
# smooth (no kink, no pole, no negative base for a fractional power).

GENERAL = [-2.0, -0.7, 0.3, 1.5, 3.0]
POSITIVE = [0.2, 0.9, 1.7, 4.0]
NONZERO = [-2.5, -0.4, 0.6, 3.0]
PAIRS = [(-2.0, 0.5), (0.3, -1.5), (1.5, 3.0), (-0.7, -2.5)]
POSITIVE_BASE_PAIRS = [(0.2, 1.5), (0.9, -2.0), (1.7, 0.5), (4.0, -0.3)]


def _unary_cases() -> list[tuple[str, str, Callable, list]]:
    cases = [
        ("+k", "x + 2.5", lambda x: x + 2.5, GENERAL),
        ("+k", "2.5 + x", lambda x: 2.5 + x, GENERAL),
        ("+k", "x + 2 (int)", lambda x: x + 2, GENERAL),
        ("-k", "x - 2.5", lambda x: x - 2.5, GENERAL),
        ("k-", "2.5 - x", lambda x: 2.5 - x, GENERAL),
        ("*k", "x * 2.5", lambda x: x * 2.5, GENERAL),
        ("*k", "-3 * x", lambda x: -3 * x, GENERAL),
        ("/k", "x / 2.5", lambda x: x / 2.5, GENERAL),
        ("k/", "2.5 / x", lambda x: 2.5 / x, NONZERO),
        ("**k", "x ** 2.5", lambda x: x**2.5, POSITIVE),
        ("**k", "x ** 3", lambda x: x**3, GENERAL),
        ("**k", "x ** -2", lambda x: x**-2, NONZERO),
        ("**k", "x ** 0.5", lambda x: x**0.5, POSITIVE),
        ("k**", "2.5 ** x", lambda x: 2.5**x, GENERAL),
        ("k**", "0.5 ** x", lambda x: 0.5**x, GENERAL),
        ("neg", "-x", lambda x: -x, GENERAL),
        ("abs", "abs(x)", lambda x: abs(x), NONZERO),
    ]
    domains = {"log": POSITIVE, "sqrt": POSITIVE, "relu": [-1.5, -0.2, 0.4, 2.0]}
    for name, op in FUNCTIONS.items():
        points = domains.get(name, GENERAL)
        cases.append((op, f"x.{name}()", lambda x, name=name: getattr(x, name)(), points))
    return cases


BINARY_CASES = [
    ("+", "a + b", lambda a, b: a + b, PAIRS),
    ("-", "a - b", lambda a, b: a - b, PAIRS),
    ("*", "a * b", lambda a, b: a * b, PAIRS),
    ("/", "a / b", lambda a, b: a / b, PAIRS),
    ("**", "a ** b", lambda a, b: a**b, POSITIVE_BASE_PAIRS),
]
UNARY_CASES = _unary_cases()

UNARY_PARAMS = [
    pytest.param(op, build, x, id=f"{text} at {x}")
    for op, text, build, points in UNARY_CASES
    for x in points
]
BINARY_PARAMS = [
    pytest.param(op, build, a, b, id=f"{text} at {a}, {b}")
    for op, text, build, points in BINARY_CASES
    for a, b in points
]


def test_cases_cover_every_op_in_the_table():
    covered = {op for op, *_ in UNARY_CASES} | {op for op, *_ in BINARY_CASES}
    assert covered == set(OPS), f"ops without a gradient test: {set(OPS) - covered}"


def central_difference(f: Callable[[float], float], x: float) -> float:
    h = 1e-6 * max(1.0, abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


# --- the node each op makes --------------------------------------------------------------


@pytest.mark.parametrize("op, build, x", UNARY_PARAMS)
def test_unary_op_makes_one_node_with_one_parent(op, build, x):
    leaf = Value(x)
    out = build(leaf)
    assert out._op == op
    assert out._prev == (leaf,)  # a plain number is folded into the op, not a leaf


@pytest.mark.parametrize("op, build, a, b", BINARY_PARAMS)
def test_binary_op_keeps_its_parents_in_order(op, build, a, b):
    va, vb = Value(a), Value(b)
    out = build(va, vb)
    assert out._op == op
    assert out._prev == (va, vb)


def test_a_leaf_has_micrograd_names():
    a = Value(2.0, label="a")
    assert (a.data, a.grad, a.label, a._op, a._prev) == (2.0, 0.0, "a", "", ())
    assert isinstance(Value(3).data, float)


def test_an_op_is_the_string_micrograd_keeps_in_op():
    out = Value(2.0) * Value(3.0)
    assert out._op == "*" and isinstance(out._op, str)
    assert f"{Value(2.0).tanh()._op}" == "tanh"
    assert Value(2.0).relu()._op == "ReLU"  # micrograd's spelling


# --- gradients against central finite differences ----------------------------------------


@pytest.mark.parametrize("op, build, x", UNARY_PARAMS)
def test_unary_gradient_matches_finite_differences(op, build, x):
    leaf = Value(x)
    out = build(leaf)
    out.backward()
    numeric = central_difference(lambda t: build(Value(t)).data, x)
    assert leaf.grad == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("op, build, a, b", BINARY_PARAMS)
def test_binary_gradients_match_finite_differences(op, build, a, b):
    va, vb = Value(a), Value(b)
    build(va, vb).backward()
    numeric_a = central_difference(lambda t: build(Value(t), Value(b)).data, a)
    numeric_b = central_difference(lambda t: build(Value(a), Value(t)).data, b)
    assert va.grad == pytest.approx(numeric_a, rel=1e-6, abs=1e-9)
    assert vb.grad == pytest.approx(numeric_b, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("op, build, a, b", BINARY_PARAMS)
def test_binary_op_with_one_node_on_both_sides(op, build, a, b):
    """x op x: the node is both parents, and both contributions reach it."""
    x = abs(a) if op == "**" else a
    leaf = Value(x)
    out = build(leaf, leaf)
    assert out._prev == (leaf, leaf)
    out.backward()
    numeric = central_difference(lambda t: build(Value(t), Value(t)).data, x)
    assert leaf.grad == pytest.approx(numeric, rel=1e-6, abs=1e-9)


# --- one rule, two readers: backward's compiled loop and op.local -------------------------


def _four_backwards(build_root):
    """grads of the leaves after backward(), zeroed_backward(), backward along a given
    order, and backward_steps (which calls op.local), each on a fresh copy of the graph."""
    results = []
    for run in ("walk", "zeroed", "order", "steps"):
        leaves, root = build_root()
        if run == "walk":
            root.backward()
        elif run == "zeroed":
            engine.zeroed_backward(root)
        elif run == "order":
            engine.backward(root, engine.topological_order(root))
        else:
            engine.backward_steps(root)
        results.append([leaf.grad for leaf in leaves])
    return results


@pytest.mark.parametrize("op, build, x", UNARY_PARAMS)
def test_compiled_backward_gives_the_rules_numbers_for_unary_ops(op, build, x):
    """backward runs a loop compiled from the table's rule text, backward_steps the rule
    compiled into op.local: the same numbers, bit for bit (the node is reused)."""
    def build_root():
        leaf = Value(x)
        out = build(leaf)
        return [leaf], out * out + out * 0.5
    walk, zeroed, order, steps = _four_backwards(build_root)
    assert walk == zeroed == order == steps


@pytest.mark.parametrize("op, build, a, b", BINARY_PARAMS)
def test_compiled_backward_gives_the_rules_numbers_for_binary_ops(op, build, a, b):
    def build_root():
        va, vb = Value(a), Value(b)
        out = build(va, vb)
        return [va, vb], out * out + out * 0.5
    walk, zeroed, order, steps = _four_backwards(build_root)
    assert walk == zeroed == order == steps


def test_backward_source_has_every_op_of_the_table_written_in():
    source = engine.autodiff.BACKWARD_SOURCE
    for name, op in vars(engine.ops).items():
        if isinstance(op, engine.ops.Op):
            assert source.count(f"op is {name}:") == 3, name  # in each of the three loops


# --- values and gradients against torch float64 ------------------------------------------


@pytest.mark.parametrize("op, build, x", UNARY_PARAMS)
def test_unary_op_matches_torch(torch, op, build, x):
    leaf, t = Value(x), tensor(torch, x)
    out, tout = build(leaf), build(t)
    out.backward()
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-14, abs=0.0)
    assert leaf.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("op, build, a, b", BINARY_PARAMS)
def test_binary_op_matches_torch(torch, op, build, a, b):
    va, vb, ta, tb = Value(a), Value(b), tensor(torch, a), tensor(torch, b)
    out, tout = build(va, vb), build(ta, tb)
    out.backward()
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-14, abs=0.0)
    assert va.grad == pytest.approx(ta.grad.item(), rel=1e-12, abs=1e-300)
    assert vb.grad == pytest.approx(tb.grad.item(), rel=1e-12, abs=1e-300)


# --- the functions: as methods and as engine.<name>(x) -----------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("x", [0.3, 1.7])
def test_function_and_method_give_the_same_node(name, x):
    a, b = Value(x), Value(x)
    by_method = getattr(a, name)()
    by_function = getattr(engine, name)(b)
    assert by_function._op == by_method._op == FUNCTIONS[name]
    assert by_function._prev == (b,)
    assert by_function.data == by_method.data
    by_method.backward()
    by_function.backward()
    assert b.grad == a.grad
    numeric = central_difference(lambda t: getattr(engine, name)(Value(t)).data, x)
    assert b.grad == pytest.approx(numeric, rel=1e-6)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_matches_torch(torch, name):
    x = 0.8
    leaf, t = Value(x), tensor(torch, x)
    out, tout = getattr(engine, name)(leaf), getattr(torch, name)(t)
    out.backward()
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-14)
    assert leaf.grad == pytest.approx(t.grad.item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_of_a_plain_number_is_a_plain_number(name):
    result = getattr(engine, name)(2)
    assert type(result) is float
    assert result == getattr(Value(2.0), name)().data


def test_function_of_a_plain_number_by_hand():
    assert engine.exp(0.0) == 1.0
    assert engine.log(1.0) == 0.0
    assert engine.tanh(0.0) == 0.0
    assert engine.relu(-3) == 0.0
    assert engine.sigmoid(0.0) == 0.5
    assert engine.sqrt(9) == 3.0


# --- wrong operand types -----------------------------------------------------------------

WRONG_OPERANDS = [
    pytest.param(lambda: Value(1) + "x", "+", "str", id="Value + str"),
    pytest.param(lambda: Value(1) - None, "-", "NoneType", id="Value - None"),
    pytest.param(lambda: Value(1) * {}, "*", "dict", id="Value * dict"),
    pytest.param(lambda: Value(1) / "x", "/", "str", id="Value / str"),
    pytest.param(lambda: Value(1) ** "x", "**", "str", id="Value ** str"),
    pytest.param(lambda: Value(1) + 1j, "+", "complex", id="Value + complex"),
    pytest.param(lambda: None + Value(1), "+", "NoneType", id="None + Value"),
    pytest.param(lambda: None - Value(1), "-", "NoneType", id="None - Value"),
    pytest.param(lambda: None * Value(1), "*", "NoneType", id="None * Value"),
    pytest.param(lambda: {} / Value(1), "/", "dict", id="dict / Value"),
    pytest.param(lambda: None ** Value(1), "**", "NoneType", id="None ** Value"),
]


@pytest.mark.parametrize("expression, op, type_name", WRONG_OPERANDS)
def test_wrong_operand_type_raises_type_error_naming_op_and_type(expression, op, type_name):
    with pytest.raises(TypeError) as error:
        expression()
    message = str(error.value)
    assert f" {op}" in message or f"{op}:" in message, message
    assert type_name in message, message


@pytest.mark.parametrize(
    "expression",
    [
        lambda: Value(2) * "x",
        lambda: "x" * Value(2),
        lambda: Value(2) * [1.0],
        lambda: "x" + Value(2),
    ],
    ids=["Value * str", "str * Value", "Value * list", "str + Value"],
)
def test_a_sequence_operand_raises_type_error_not_repetition(expression):
    """Python's own sequence rules word these messages ("can't multiply sequence by non-int
    of type 'Value'"); what matters is that nothing is silently repeated or concatenated."""
    with pytest.raises(TypeError, match="Value"):
        expression()


@pytest.mark.parametrize("bad", ["x", None, [1.0], 1 + 2j, object()])
def test_value_of_a_non_number_raises_type_error_naming_the_type(bad):
    with pytest.raises(TypeError, match=rf"Value.*{type(bad).__name__}"):
        Value(bad)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("bad", ["x", None, [1.0]])
def test_function_of_a_non_number_raises_type_error_naming_it(name, bad):
    with pytest.raises(TypeError, match=rf"{name}.*{type(bad).__name__}"):
        getattr(engine, name)(bad)


def test_numbers_of_other_real_types_are_accepted():
    from fractions import Fraction

    assert Value(Fraction(1, 4)).data == 0.25
    assert Value(True).data == 1.0
    assert (Value(1.0) + Fraction(1, 2)).data == 1.5
    assert math.isnan(Value(math.nan).data)
