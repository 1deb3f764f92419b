"""Random cells with augmented assignments, reused names and explicit labels: torch's
replay of the recorded graph finds no false mismatch (issue 12's 152-of-533 regression)."""

from __future__ import annotations

import pytest
from cells import clear_namespace, run_autograd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

NAMES = ["a", "b", "c", "d"]
BINARY = ["+", "-", "*"]
FUNCTIONS = ["tanh", "exp", "relu", "sigmoid", "sin"]
NUMBERS = st.sampled_from([-2.0, -1.5, -0.5, 0.5, 1.0, 2.0, 3.0])


@st.composite
def expressions(draw, depth: int = 0):  # noqa: ANN001, ANN201
    kind = draw(st.integers(0, 4 if depth < 2 else 1))
    if kind == 0:
        return draw(st.sampled_from(NAMES))
    if kind == 1:
        return repr(draw(NUMBERS))
    if kind in (2, 3):
        left, right = draw(expressions(depth + 1)), draw(expressions(depth + 1))
        return f"({left} {draw(st.sampled_from(BINARY))} {right})"
    return f"{draw(st.sampled_from(FUNCTIONS))}({draw(expressions(depth + 1))})"


@st.composite
def cells(draw):  # noqa: ANN001, ANN201
    explicit = draw(st.booleans())  # the lecture's Value(2.0, label='a') style
    lines = ["from engine import Value"] if explicit else []
    for name in NAMES:
        number = draw(NUMBERS)
        lines.append(f"{name} = Value({number!r}, label={name!r})" if explicit
                     else f"{name} = {number!r}")
    for _ in range(draw(st.integers(1, 6))):
        target = draw(st.sampled_from(NAMES))
        operator = draw(st.sampled_from(["=", "+=", "-=", "*="]))
        expression = draw(expressions())
        if explicit and operator == "=":  # keep every name a Value, so `.label` works
            expression = f"{draw(st.sampled_from(NAMES))} + {expression}"
        lines.append(f"{target} {operator} {expression}")
        if explicit and draw(st.booleans()):
            lines.append(f"{target}.label = {target + '2'!r}")
    lines.append(f"L = {' + '.join(NAMES)}")
    return "\n".join(lines)


@settings(max_examples=2000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cells())
def test_random_cells_have_no_false_mismatch(shell, cell):
    clear_namespace(shell)
    result = run_autograd(shell, cell, "--torch")
    assert result.mismatches == [], (cell, result.graph["compare"]["rows"])
    assert "first_failure" not in result.graph["compare"], cell
