"""A small scalar autodiff engine in pure Python, in the spirit of Karpathy's micrograd.

    from engine import Value, tanh
    a = Value(2.0, label="a"); b = Value(-3.0, label="b")
    L = tanh(a * b + 1)
    L.backward()
    a.grad, b.grad
"""

from __future__ import annotations

from engine import ops
from engine.autodiff import (
    BackwardStep,
    GradUpdate,
    apply_rule,
    backward,
    backward_steps,
    local_gradients,
    observing_backward,
    topological_order,
    zero_grad,
    zeroed_backward,
)
from engine.ops import Op
from engine.value import Value, as_constant

__all__ = [
    "BackwardStep", "GradUpdate", "Op", "Value", "apply_rule", "backward", "backward_steps",
    "cos", "exp", "local_gradients", "log", "observing_backward", "relu", "sigmoid", "sin",
    "sqrt", "tanh", "topological_order", "zero_grad", "zeroed_backward",
]


def _function(op: Op):
    name = "relu" if op is ops.RELU else str(op)

    def function(x: Value | float) -> Value | float:
        if isinstance(x, Value):
            return x._unary(op)
        number = as_constant(x)
        if number is None:
            raise TypeError(f"{name}() takes a Value or a number, not {type(x).__name__!r}")
        return op.forward(number, None)  # a constant stays a constant: no node

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (f"{name}(x): a new Value for a Value (with its gradient rule), "
                        f"a float for a plain number.")
    return function


exp = _function(ops.EXP)
log = _function(ops.LOG)
tanh = _function(ops.TANH)
relu = _function(ops.RELU)
sigmoid = _function(ops.SIGMOID)
sqrt = _function(ops.SQRT)
sin = _function(ops.SIN)
cos = _function(ops.COS)
