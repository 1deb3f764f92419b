"""Value: one scalar in the computation graph, with its data, gradient, op and parents."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

from engine import ops
from engine.ops import Op

LEAF = ""  # micrograd's `_op` of a leaf
ADD, MUL = ops.ADD, ops.MUL


def as_constant(x: object) -> float | None:
    """x as a float when it is a plain real number (int, float, bool, numpy scalar), else None."""
    t = type(x)
    if t is float:
        return x  # type: ignore[return-value]
    if t is int or t is bool or isinstance(x, numbers.Real):
        return float(x)  # type: ignore[arg-type]
    return None


def constant(node: Value) -> float | None:
    """The number folded into node's op (2.0 for `x * 2`), or None where the op has none.

    Only one-parent ops have one; `+` and `*` of two Values leave `_k` unset.
    """
    op = node._op
    return node._k if op and getattr(op, "arity", 0) == 1 else None


_new = object.__new__


def _node(data: float, op: Op, a: Value, b: Value | None = None, k: float | None = None) -> Value:
    """A new op node. Same result as Value(data, "", op, a, b, k), in half the time: every
    op of a forward pass pays for this, and `__init__`'s checks are for user input."""
    node = _new(Value)
    node.data = data
    node.grad = 0.0
    node.label = ""
    node._op = op
    node._a = a
    node._b = b
    node._k = k
    node._users = 0
    return node


class Value:
    """A scalar that remembers how it was computed, so `backward()` can fill in `.grad`.

    `Value(2.0, label="a")` makes a leaf. Arithmetic with Values (or plain numbers on either
    side) makes new Values whose `_op` names the op and whose parents are kept in order in
    `_a` and `_b` (`_prev` gives them as a tuple, as in micrograd). A plain number in an op
    is not a node: it is folded into the op as its constant `_k` (read it with `constant`).
    """

    # _users: during a graph walk, how many nodes that use this one are still to be
    # visited; 0 at rest (see engine.autodiff). A slot instead of a dict keyed by node
    # makes the walk about twice as fast.
    # _k is left unset by `+` and `*` of two Values (see `constant`): every slot a node
    # fills costs a store, and a visit each time the collector scans the node.
    __slots__ = ("data", "grad", "label", "_op", "_a", "_b", "_k", "_users")

    def __init__(
        self,
        data: float,
        label: str = "",
        _op: Op | str = LEAF,
        _a: Value | None = None,
        _b: Value | None = None,
        _k: float | None = None,
    ) -> None:
        if type(data) is not float:
            number = as_constant(data)
            if number is None:
                raise TypeError(f"Value() needs a real number, not {type(data).__name__!r}")
            data = number
        self.data = data
        self.grad = 0.0
        self.label = label
        self._op = _op
        self._a = _a
        self._b = _b
        self._k = _k
        self._users = 0

    # --- micrograd's names --------------------------------------------------------------

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The parents, in the order the op takes them (micrograd keeps a set here)."""
        if self._a is None:
            return ()
        if self._b is None:
            return (self._a,)
        return (self._a, self._b)

    def _backward(self) -> None:
        """Apply this node's local rule once: add grad * local derivative to each parent."""
        from engine.autodiff import apply_rule

        apply_rule(self)

    def backward(self) -> None:
        """Fill in `.grad` of every node this Value depends on (seeding this one with 1.0)."""
        from engine.autodiff import backward

        backward(self)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    # --- arithmetic: a Value on the other side makes a binary node, a number is folded ---

    def __add__(self, other: Value | float) -> Value:
        if type(other) is Value:
            # `_node(self.data + other.data, ops.ADD, self, other)` written out: `+` and `*`
            # of two Values are nearly every node of a network, and the call costs ~15%.
            node = _new(Value)
            node.data = self.data + other.data
            node.grad = 0.0
            node.label = ""
            node._op = ADD
            node._a = self
            node._b = other
            node._users = 0
            return node
        if isinstance(other, Value):
            return _node(self.data + other.data, ops.ADD, self, other)
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(self.data + k, ops.ADD_K, self, None, k)

    def __radd__(self, other: float) -> Value:
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(k + self.data, ops.ADD_K, self, None, k)

    def __sub__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            return _node(self.data - other.data, ops.SUB, self, other)
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(self.data - k, ops.SUB_K, self, None, k)

    def __rsub__(self, other: float) -> Value:
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(k - self.data, ops.RSUB_K, self, None, k)

    def __mul__(self, other: Value | float) -> Value:
        if type(other) is Value:  # `_node(...)` written out, as in `__add__`
            node = _new(Value)
            node.data = self.data * other.data
            node.grad = 0.0
            node.label = ""
            node._op = MUL
            node._a = self
            node._b = other
            node._users = 0
            return node
        if isinstance(other, Value):
            return _node(self.data * other.data, ops.MUL, self, other)
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(self.data * k, ops.MUL_K, self, None, k)

    def __rmul__(self, other: float) -> Value:
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(k * self.data, ops.MUL_K, self, None, k)

    def __truediv__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            return _node(ops.safe_div(self.data, other.data), ops.DIV, self, other)
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(ops.safe_div(self.data, k), ops.DIV_K, self, None, k)

    def __rtruediv__(self, other: float) -> Value:
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(ops.safe_div(k, self.data), ops.RDIV_K, self, None, k)

    def __pow__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            return _node(ops.safe_pow(self.data, other.data), ops.POW, self, other)
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(ops.safe_pow(self.data, k), ops.POW_K, self, None, k)

    def __rpow__(self, other: float) -> Value:
        k = as_constant(other)
        if k is None:
            return NotImplemented
        return _node(ops.safe_pow(k, self.data), ops.RPOW_K, self, None, k)

    def __neg__(self) -> Value:
        return _node(-self.data, ops.NEG, self)

    # --- elementwise functions ----------------------------------------------------------

    def _unary(self, op: Op) -> Value:
        return _node(op.forward(self.data, None), op, self)

    def exp(self) -> Value:
        return self._unary(ops.EXP)

    def log(self) -> Value:
        return self._unary(ops.LOG)

    def tanh(self) -> Value:
        return self._unary(ops.TANH)

    def relu(self) -> Value:
        return self._unary(ops.RELU)

    def sigmoid(self) -> Value:
        return self._unary(ops.SIGMOID)

    def sqrt(self) -> Value:
        return self._unary(ops.SQRT)

    def sin(self) -> Value:
        return self._unary(ops.SIN)

    def cos(self) -> Value:
        return self._unary(ops.COS)

    def __abs__(self) -> Value:  # abs(x)
        return self._unary(ops.ABS)


def weighted_sum(bias: object, weights: Sequence[object], inputs: Iterable[object]) -> object:
    """`bias + w0*x0 + w1*x1 + ...`, left to right: the graph `+` and `*` would build.

    A neuron's pre-activation, the bulk of every network's graph. Where a weight and its
    input are both Values (and the running sum is), the `*` node and the `+` node are
    written out here, as in `__mul__` and `__add__`, saving the two operator dispatches per
    term that cost about a quarter of a network's forward pass. Any other pair (a plain
    number, a torch tensor when a model is mirrored) goes through the operators, so the
    result is the same nodes, the same numbers, in the same order. Stops at the shorter of
    `weights` and `inputs`, as `zip` does.
    """
    act = bias
    for w, x in zip(weights, inputs):
        if type(act) is not Value or type(w) is not Value or type(x) is not Value:
            act = act + w * x
            continue
        product = _new(Value)
        product.data = term = w.data * x.data
        product.grad = 0.0
        product.label = ""
        product._op = MUL
        product._a = w
        product._b = x
        product._users = 0
        node = _new(Value)
        node.data = act.data + term
        node.grad = 0.0
        node.label = ""
        node._op = ADD
        node._a = act
        node._b = product
        node._users = 0
        act = node
    return act
