"""Acting on a result's recorded graph: nudge a leaf and read the slope, set leaves and
recompute, check a learner's predicted gradients (the quiz).

Everything here re-evaluates the graph the cell recorded (`replay.RecordedGraph`, the op
table's forward rules), never the cell: the lecture's `a.data += h; (L2 - L1) / h`, with
the learner's code left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import engine
from micrograd_magics.errors import OneLineError
from micrograd_magics.graph import as_float, format_number
from micrograd_magics.replay import RecordedGraph, evaluate


class NudgeError(ValueError, OneLineError):
    """A nudge, set or answer check that cannot be done; shown as one line."""


@dataclass(frozen=True)
class Nudged:
    """What moving one leaf by h did to the root: the lecture's numerical slope."""

    label: str
    root: str
    h: float
    before: float
    after: float
    grad: float

    @property
    def slope(self) -> float:
        """(after - before) / h: the forward-difference estimate of d root / d leaf."""
        return (self.after - self.before) / self.h

    def text(self, precision: int = 4) -> str:
        f = lambda x: format_number(x, precision)  # noqa: E731
        return (f"{self.root} went from {f(self.before)} to {f(self.after)} when {self.label} "
                f"moved by {self.h:g}: slope {f(self.slope)}, {self.label}.grad {f(self.grad)}")

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Answer:
    """A predicted gradient checked against the graph's: right or not, and the hints."""

    label: str
    typed: float
    ok: bool
    hint: str  # the chain rule for the node, in symbols
    hint_with_numbers: str  # the same with the numbers of the graph (reveals the answer)

    def __repr__(self) -> str:
        verdict = "right" if self.ok else f"not yet: {self.hint}"
        return f"{self.label} = {self.typed:g}: {verdict}"


def position_of(model: dict[str, Any], label: str) -> int:
    """The position in the recorded graph of the node named `label`, or a one-line error
    listing the names there are."""
    for record in model["nodes"]:
        if record["label"] == label or record["name"] == label:
            return int(record["id"][1:])
    named = [r["label"] for r in model["nodes"] if r["label"]]
    shown = ", ".join(named[:12]) + (", ..." if len(named) > 12 else "")
    raise NudgeError(f"no node named {label!r} in this graph (its names: {shown})")


def nudged(graph: RecordedGraph, model: dict[str, Any], label: str, h: float) -> Nudged:
    """Re-evaluate the recorded graph with `label`'s value moved by h; nothing is changed."""
    if not (isinstance(h, (int, float)) and math.isfinite(h) and h != 0):
        raise NudgeError(f"h must be a finite number other than 0, not {h!r}")
    i = position_of(model, label)
    if graph.op[i] is not None:
        raise NudgeError(f"{label} is computed ({graph.op[i]}), not a leaf: nudge a leaf "
                         f"(a name bound to a number) and watch {label} move")
    before = evaluate(graph, list(graph.data))[-1]
    moved = list(graph.data)
    moved[i] += h
    after = evaluate(graph, moved)[-1]
    root = next((r["name"] for r in model["nodes"] if r["id"] == model["root"]), "root")
    grad = float(graph.nodes[i].grad)
    return Nudged(label, root, float(h), before, after, grad)


def set_leaves(graph: RecordedGraph, model: dict[str, Any], values: dict[str, float]) -> None:
    """Give leaves new values, recompute every node's value through the op table and run
    backward again: the graph's Values hold the new numbers, as if the learner had set
    `a.data` and re-run forward and backward."""
    data = list(graph.data)
    for label, value in values.items():
        i = position_of(model, label)
        if graph.op[i] is not None:
            raise NudgeError(f"{label} is computed ({graph.op[i]}), not a leaf: set a leaf")
        try:
            data[i] = float(value)
        except (TypeError, ValueError):
            raise NudgeError(f"{label} = {value!r}: a number is needed") from None
    evaluate(graph, data)
    for node, value in zip(graph.nodes, data):
        node.data = value
    graph.data[:] = data


def rerun_backward(root: Any) -> list[engine.BackwardStep]:
    """Zero the grads of root's graph and run backward step by step (for the widget)."""
    engine.zero_grad(root)
    return engine.backward_steps(root)


def quiz_tolerance(precision: int) -> float:
    """An answer is right when it is within half a unit of the last digit shown."""
    return 0.5 * 10.0 ** -precision


def chain_rule_hints(model: dict[str, Any], label: str) -> tuple[str, str]:
    """`dL/da = dL/de * de/da` for the node named label (a sum where it feeds several
    nodes), and the same with the graph's numbers."""
    names = {r["id"]: r["name"] for r in model["nodes"]}
    root = names.get(model["root"], "L")
    target = next((r["id"] for r in model["nodes"] if label in (r["label"], r["name"])), None)
    if target == model["root"]:
        return f"d{root}/d{root} = 1", f"d{root}/d{root} = 1"
    symbols, numbers = [], []
    for step in model["steps"][1:]:
        for update in step["updates"]:
            if update["target"] != target:
                continue
            user = names[step["node"]]
            symbols.append(f"d{root}/d{_group(user)} * d{_group(user)}/d{_group(label)}")
            numbers.append(update["formula"])
    if not symbols:
        return (f"{label} does not reach {root}: its gradient is 0",) * 2  # type: ignore[return-value]
    plus = " + ".join(symbols)
    hint = f"d{root}/d{_group(label)} = {plus}"
    if len(symbols) > 1:
        hint += f" ({label} is used {len(symbols)} times: the contributions add up, +=)"
    return hint, "; ".join(numbers)


def _group(name: str) -> str:
    return name if name.replace("_", "").replace("[", "").replace("]", "").isalnum() \
        else f"({name})"


def check(model: dict[str, Any], predictions: dict[str, float],
          precision: int) -> dict[str, Answer]:
    """Each predicted gradient against the graph's, at the display precision."""
    tolerance = quiz_tolerance(precision)
    grads = {}
    for record in model["nodes"]:
        for key in {record["label"], record["name"]} - {""}:
            grads[key] = as_float(record["grad"])
    answers = {}
    for label, typed in predictions.items():
        if label not in grads:
            position_of(model, label)  # raises with the names there are
        try:
            number = float(typed)
        except (TypeError, ValueError):
            raise NudgeError(f"{label}: {typed!r} is not a number") from None
        grad = grads[label]
        ok = abs(number - grad) <= tolerance or (math.isnan(grad) and math.isnan(number))
        hint, numbers = chain_rule_hints(model, label)
        answers[label] = Answer(label, number, ok, hint, numbers)
    return answers


__all__ = ["Answer", "NudgeError", "Nudged", "check", "chain_rule_hints", "nudged",
           "quiz_tolerance", "set_leaves"]
