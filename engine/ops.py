"""The op table: each op's forward, local derivative rule and formula text, written once.

Backward (`autodiff.py`), the step-by-step explanation and the renderer all read the
rules from here, so a rule is never written twice.

An op has one or two *Value* parents. A plain number on one side of `*`, `+`, ... is not
turned into a leaf node: it is folded into the op as its constant `k` (`x * 2` is one
`*2` node with one parent), which keeps graphs small and readable.

A rule is the local derivative d out / d parent, one per parent, written as a Python
expression over `a` and `b` (the parents' values), `k` (the folded constant) and `out`
(the node's own value): `*` has the rule `("b", "a")`. Like torch's derivatives.yaml, the
text is the one source: `op.local` is compiled from it for the explanation, and
`engine.autodiff` compiles backward's loop from the same text, so the two `*` and `+`
that make up nearly every node of a network cost no function call each.

`op.local` takes plain floats:
- unary ops (one Value parent, maybe a constant): `local(a, k, out) -> dout/da`
- binary ops (two Value parents): `local(a, b, out) -> (dout/da, dout/db)`

A rule written `where(cond, derivative)` is a select, as torch writes ReLU's and `x ** 0`'s
backward: where `cond` holds the parent gets `g * derivative`, elsewhere nothing at all.
`g * 0` would be nan for an infinite upstream `g`; torch's `where` gives 0, and so do we.
`op.contribute(g, a, b_or_k, out)` gives what each parent receives, selects included;
every path (backward's loop, the steps, `apply_rule`) adds exactly that.

Numerics follow torch's float64: overflow gives inf, 0/0 and log(-1) give nan, nothing
raises for a non-finite value.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

INF = math.inf
NAN = math.nan


class Op(str):
    """An op's name (the string micrograd keeps in `Value._op`) plus its rule.

    It *is* a string, so a learner's own `draw_dot` that prints `n._op` keeps working.
    """

    # Slots, not an instance dict: a slot read is several times faster than a dict lookup
    # on a str subclass, and backward reads an op once per node.
    __slots__ = ("arity", "forward", "rule", "local", "contribute", "symbol", "formulas")

    arity: int
    forward: Callable[..., float]
    rule: tuple[str, ...]
    local: Callable[..., object]
    contribute: Callable[..., tuple[float, ...]]
    symbol: str
    formulas: tuple[str, ...]

    def __new__(
        cls,
        name: str,
        *,
        arity: int,
        forward: Callable[..., float],
        rule: tuple[str, ...],
        symbol: str,
        formulas: tuple[str, ...],
    ) -> Op:
        if len(rule) != arity or len(formulas) != arity:
            raise ValueError(f"op {name!r}: one rule and one formula per parent")
        op = super().__new__(cls, name)
        op.arity = arity
        op.forward = forward
        op.rule = rule
        op.local = compile_rule(rule)
        op.contribute = compile_contributions(rule)
        op.symbol = symbol
        op.formulas = formulas
        return op

    def __repr__(self) -> str:
        return f"Op({str.__repr__(self)})"

    def __reduce__(self) -> tuple:
        # copy, deepcopy and pickle hand back the one op of the table, not a new Op
        return (_op_named, (str(self),))


def _op_named(name: str) -> Op:
    return OPS[name]


# --- float helpers: torch float64 semantics instead of Python exceptions -------------


def safe_div(a: float, b: float) -> float:
    """a / b with IEEE results for b == 0 (inf, -inf or nan) instead of ZeroDivisionError."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0.0 or a != a:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def safe_pow(a: float, b: float) -> float:
    """a ** b as torch computes it: nan for a negative base with a fractional exponent,
    inf for 0 ** negative and on overflow, never a complex number or an exception."""
    try:
        return math.pow(a, b)
    except OverflowError:
        odd_integer = b == math.floor(b) and b % 2 == 1
        return -INF if a < 0.0 and odd_integer else INF
    except ValueError:
        if a == 0.0:  # 0 ** negative
            odd_integer = b == math.floor(b) and b % 2 == 1
            return math.copysign(INF, a) if odd_integer else INF
        return NAN


def safe_exp(x: float) -> float:
    """exp(x), inf on overflow."""
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def safe_log(x: float) -> float:
    """log(x): -inf at 0, nan below 0, like torch."""
    if x > 0.0:
        return math.log(x)  # inf stays inf
    if x == 0.0:
        return -INF
    return NAN


def safe_sqrt(x: float) -> float:
    """sqrt(x): nan below 0, like torch."""
    return math.sqrt(x) if x >= 0.0 else NAN


def stable_sigmoid(x: float) -> float:
    """1 / (1 + exp(-x)) without overflow at either end: sigmoid(-1000) is 0.0."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    if x != x:
        return NAN
    e = safe_exp(x)
    return e / (1.0 + e)


def safe_sin(x: float) -> float:
    """sin(x), nan for an infinite x (math.sin raises), like torch."""
    return math.sin(x) if math.isfinite(x) else NAN


def safe_cos(x: float) -> float:
    """cos(x), nan for an infinite x, like torch."""
    return math.cos(x) if math.isfinite(x) else NAN


def sign(x: float) -> float:
    """torch's sgn as abs' backward uses it: -1.0, 1.0, and 0.0 at 0 and at nan."""
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


def pow_base_grad(x: float, k: float) -> float:
    """d/dx x**k as torch has it: k * x**(k-1), and exactly 0 where k == 0."""
    return 0.0 if k == 0.0 else k * safe_pow(x, k - 1.0)


def pow_exponent_grad(base: float, exponent: float, out: float) -> float:
    """d/db a**b as torch has it: a**b * log(a) (out is a**b), and exactly 0 where a == 0
    and b >= 0."""
    if base == 0.0 and exponent >= 0.0:
        return 0.0
    return out * safe_log(base)


RULE_NAMES: dict[str, object] = {
    "safe_div": safe_div, "safe_pow": safe_pow, "safe_log": safe_log,
    "pow_base_grad": pow_base_grad, "pow_exponent_grad": pow_exponent_grad,
    "sin": safe_sin, "cos": safe_cos, "sign": sign,
}
"""What a rule's text may call besides its variables a, b, k and out."""


def split_select(rule: str) -> tuple[str | None, str]:
    """`where(cond, derivative)` -> (cond, derivative); any other rule -> (None, rule)."""
    tree = ast.parse(rule, mode="eval").body
    if (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)
            and tree.func.id == "where" and len(tree.args) == 2):
        condition, derivative = tree.args
        return ast.unparse(condition), ast.unparse(derivative)
    return None, rule


def local_text(rule: str) -> str:
    """A rule as one expression for the local derivative (0.0 where a select is off)."""
    condition, derivative = split_select(rule)
    return derivative if condition is None else f"(({derivative}) if ({condition}) else 0.0)"


def contribution_text(rule: str, g: str = "g") -> str:
    """What a parent receives from upstream gradient g: g * local, or 0.0 where a select
    is off (whatever g is)."""
    condition, derivative = split_select(rule)
    product = f"{g} * ({derivative})"
    return product if condition is None else f"({product} if ({condition}) else 0.0)"


def _variables(arity: int) -> str:
    return "a, k, out" if arity == 1 else "a, b, out"


def compile_rule(rule: tuple[str, ...]) -> Callable[..., object]:
    """`op.local` from the rule's text: local(a, k, out) or local(a, b, out) -> (da, db)."""
    if len(rule) == 1:
        source = f"lambda a, k, out: {local_text(rule[0])}"
    else:
        source = f"lambda a, b, out: ({local_text(rule[0])}, {local_text(rule[1])})"
    return eval(source, dict(RULE_NAMES))  # noqa: S307 - the table's own text


def compile_contributions(rule: tuple[str, ...]) -> Callable[..., tuple[float, ...]]:
    """`op.contribute(g, a, b_or_k, out)`: what each parent's grad receives."""
    parts = ", ".join(contribution_text(r) for r in rule)
    source = f"lambda g, {_variables(len(rule))}: ({parts},)"
    return eval(source, dict(RULE_NAMES))  # noqa: S307 - the table's own text


# --- the table -------------------------------------------------------------------------
# rule: d out / d parent per parent, Python text over a, b, k, out (see the module's doc).
# formulas: the same derivative for people to read, with {a} {b} (parents), {k} (the
# folded constant) and {out} (this node); the renderer fills in labels or numbers.

ADD = Op("+", arity=2, symbol="+",
         forward=lambda a, b: a + b,
         rule=("1.0", "1.0"),
         formulas=("1", "1"))
SUB = Op("-", arity=2, symbol="-",
         forward=lambda a, b: a - b,
         rule=("1.0", "-1.0"),
         formulas=("1", "-1"))
MUL = Op("*", arity=2, symbol="*",
         forward=lambda a, b: a * b,
         rule=("b", "a"),
         formulas=("{b}", "{a}"))
DIV = Op("/", arity=2, symbol="/",
         forward=safe_div,
         # -(a/b)/b, as torch: -a/(b*b) would under- or overflow in b*b first
         rule=("safe_div(1.0, b)", "-safe_div(out, b)"),
         formulas=("1/{b}", "-{a}/{b}²"))
POW = Op("**", arity=2, symbol="**",
         forward=safe_pow,
         # torch selects on b == 0 (nothing flows, even for an infinite g), multiplies else
         rule=("where(b != 0.0, b * safe_pow(a, b - 1.0))", "pow_exponent_grad(a, b, out)"),
         formulas=("{b}·{a}^({b}-1)", "{out}·log({a})"))

ADD_K = Op("+k", arity=1, symbol="+{k}",
           forward=lambda x, k: x + k,
           rule=("1.0",),
           formulas=("1",))
SUB_K = Op("-k", arity=1, symbol="-{k}",
           forward=lambda x, k: x - k,
           rule=("1.0",),
           formulas=("1",))
RSUB_K = Op("k-", arity=1, symbol="{k}-",
            forward=lambda x, k: k - x,
            rule=("-1.0",),
            formulas=("-1",))
MUL_K = Op("*k", arity=1, symbol="*{k}",
           forward=lambda x, k: x * k,
           rule=("k",),
           formulas=("{k}",))
DIV_K = Op("/k", arity=1, symbol="/{k}",
           forward=safe_div,
           rule=("safe_div(1.0, k)",),
           formulas=("1/{k}",))
RDIV_K = Op("k/", arity=1, symbol="{k}/",
            forward=lambda x, k: safe_div(k, x),
            rule=("-safe_div(k, a * a)",),
            formulas=("-{k}/{a}²",))
POW_K = Op("**k", arity=1, symbol="**{k}",
           forward=safe_pow,
           rule=("where(k != 0.0, k * safe_pow(a, k - 1.0))",),
           formulas=("{k}·{a}^({k}-1)",))
RPOW_K = Op("k**", arity=1, symbol="{k}**",
            forward=lambda x, k: safe_pow(k, x),
            rule=("pow_exponent_grad(k, a, out)",),
            formulas=("{out}·log({k})",))
NEG = Op("neg", arity=1, symbol="-",
         forward=lambda x, k: -x,
         rule=("-1.0",),
         formulas=("-1",))
EXP = Op("exp", arity=1, symbol="exp",
         forward=lambda x, k: safe_exp(x),
         rule=("out",),
         formulas=("exp({a}) = {out}",))
LOG = Op("log", arity=1, symbol="log",
         forward=lambda x, k: safe_log(x),
         rule=("safe_div(1.0, a)",),
         formulas=("1/{a}",))
TANH = Op("tanh", arity=1, symbol="tanh",
          forward=lambda x, k: math.tanh(x),
          # (1 - out)(1 + out) is 1 - out² without the rounding of out² near |out| = 1
          rule=("(1.0 - out) * (1.0 + out)",),
          formulas=("1 - {out}²",))
RELU = Op("ReLU", arity=1, symbol="ReLU",
          # torch: relu(-0.0) is -0.0 and relu(nan) is nan; its backward is a select on
          # the output, `where(out <= 0, 0, g)`, so a nan input passes the grad
          forward=lambda x, k: 0.0 if x < 0.0 else x,
          rule=("where(not out <= 0.0, 1.0)",),
          formulas=("1 if {a} > 0 else 0",))
SIGMOID = Op("sigmoid", arity=1, symbol="sigmoid",
             forward=lambda x, k: stable_sigmoid(x),
             rule=("out * (1.0 - out)",),
             formulas=("{out}·(1 - {out})",))
SQRT = Op("sqrt", arity=1, symbol="sqrt",
          forward=lambda x, k: safe_sqrt(x),
          rule=("safe_div(0.5, out)",),
          formulas=("1/(2·{out})",))
SIN = Op("sin", arity=1, symbol="sin",
         forward=lambda x, k: safe_sin(x),
         rule=("cos(a)",),
         formulas=("cos({a})",))
COS = Op("cos", arity=1, symbol="cos",
         forward=lambda x, k: safe_cos(x),
         rule=("-sin(a)",),
         formulas=("-sin({a})",))
ABS = Op("abs", arity=1, symbol="abs",
         forward=lambda x, k: abs(x),
         rule=("sign(a)",),  # torch's sgn: 0 at 0 (and at nan)
         formulas=("sign({a})",))

OPS: dict[str, Op] = {
    op: op
    for op in (ADD, SUB, MUL, DIV, POW, ADD_K, SUB_K, RSUB_K, MUL_K, DIV_K, RDIV_K,
               POW_K, RPOW_K, NEG, EXP, LOG, TANH, RELU, SIGMOID, SQRT, SIN, COS, ABS)
}
"""Every op by name, for lookups and for tests that want to cover all of them."""

FUNCTIONS: dict[str, Op] = {"exp": EXP, "log": LOG, "tanh": TANH, "relu": RELU,
                            "sigmoid": SIGMOID, "sqrt": SQRT, "sin": SIN, "cos": COS}
"""The elementwise functions, by the name a learner calls them with."""
