"""The recorded graph as a plan that every check replays: ops from the engine's table,
parents by position. The cell never runs again; `--torch`, `--check numeric` (and
nudging a leaf) read only this.

One plan serves both engines:
- our `Value`s carry their `Op` and parents (`_a`, `_b`) and folded constant already;
- a learner's nodes (traced through `_prev`, see `foreign.trace`) carry an op *name*
  (`'+'`, `'**2'`, `'tanh'`, `'ReLU'`, ...) which `LEARNER_OPS` maps to the same table.
  Their `_prev` is often a set, so for an op whose parents' order matters (`-`, `/`,
  `**`) the order that reproduces their `.data` is taken; a binary op with one distinct
  parent is `a+a` / `a*a`.

An op name with no twin in the table stays in the plan as an unknown node: replays treat
it as a constant (its recorded value), and the gradients of every node behind it are
marked as not checkable (they flow through the unknown op).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import ops
from engine.ops import Op

LEAF = -1
"""The parent position of a missing parent."""

LEARNER_OPS: dict[str, tuple[Op, ...]] = {
    # name -> (the op with two Value parents, the op with one), as the learner writes them
    "+": (ops.ADD,), "*": (ops.MUL,), "/": (ops.DIV,), "**": (ops.POW,),
    "-": (ops.SUB, ops.NEG), "neg": (ops.NEG,),
    "tanh": (ops.TANH,), "exp": (ops.EXP,), "log": (ops.LOG,), "sigmoid": (ops.SIGMOID,),
    "sqrt": (ops.SQRT,), "sin": (ops.SIN,), "cos": (ops.COS,), "abs": (ops.ABS,),
    "ReLU": (ops.RELU,), "relu": (ops.RELU,),
}
"""A learner's op names and the engine ops that replay them (micrograd's and the
lecture's names; `**k` written as f'**{other}' is parsed separately)."""

_POWER = re.compile(r"^\*\*\s*\(?\s*([-+]?[0-9.eE+-]+)\s*\)?$")
_COMMUTATIVE = (ops.ADD, ops.MUL)


@dataclass
class RecordedGraph:
    """The graph behind a root, parents before children (the root last).

    Position i holds one node: `op[i]` is None for a leaf (and for an unknown op: see
    `unknown`), `a[i]`/`b[i]` are its parents' positions (LEAF when absent), `k[i]` its
    folded constant, `data[i]` the value the engine recorded.
    """

    nodes: Sequence[Any]
    op: list[Op | None]
    a: list[int]
    b: list[int]
    k: list[float | None]
    data: list[float]
    unknown: dict[int, str] = field(default_factory=dict)  # position -> the learner's op
    hidden_parents: dict[int, tuple[int, ...]] = field(default_factory=dict)  # of unknowns

    def __len__(self) -> int:
        return len(self.op)

    @property
    def root(self) -> int:
        return len(self.op) - 1

    def leaves(self) -> list[int]:
        return [i for i, op in enumerate(self.op) if op is None and i not in self.unknown]

    def parents(self, i: int) -> tuple[int, ...]:
        a, b = self.a[i], self.b[i]
        return () if a == LEAF else ((a,) if b == LEAF else (a, b))

    def behind_unknown(self) -> set[int]:
        """Positions whose gradient flows through an unknown op: its parents, theirs, ..."""
        found: set[int] = set()
        stack = [p for i in self.unknown for p in self.hidden_parents.get(i, ())]
        while stack:
            i = stack.pop()
            if i in found:
                continue
            found.add(i)
            stack.extend(self.hidden_parents.get(i, ()) if i in self.unknown
                         else self.parents(i))
        return found


def from_engine(order: Sequence[Any]) -> RecordedGraph:
    """The plan of our engine's graph (`order`: parents first, root last)."""
    # Each node's position lives in its `_users` slot while the columns are read (the
    # slot is the engine's scratch space during a walk, 0 between walks): a dict keyed
    # by id() cost twice as long on 10^5 nodes.
    for i, node in enumerate(order):
        node._users = i
    try:
        # one comprehension per column: several times faster than one loop appending
        op_of: list[Op | None] = [node._op or None for node in order]
        a_of = [LEAF if node._a is None else node._a._users for node in order]
        b_of = [LEAF if node._b is None else node._b._users for node in order]
    finally:
        for node in order:
            node._users = 0
    # a one-parent op keeps its constant in _k (None for tanh, ...); `+`/`*` of two Values
    # leave _k unset
    k_of = [node._k if node._b is None and node._a is not None else None for node in order]
    return RecordedGraph(order, op_of, a_of, b_of, k_of, [node.data for node in order])


def learner_op(name: str, parents: int) -> tuple[Op | None, float | None]:
    """The engine op that replays a learner's op name with this many distinct parents,
    and its constant (`'**2'` -> POW_K, 2.0); (None, None) when there is none."""
    name = name.strip()
    power = _POWER.match(name)
    if power and parents == 1:
        try:
            return ops.POW_K, float(power.group(1))
        except ValueError:
            return None, None
    for op in LEARNER_OPS.get(name, ()):
        if op.arity == parents or (op.arity == 2 and parents == 1):
            return op, None
    return None, None


def from_learner(order: Sequence[Any]) -> RecordedGraph:
    """The plan of a learner's traced graph (`foreign.ForeignNode`s, parents first)."""
    position = {id(node): i for i, node in enumerate(order)}
    graph = RecordedGraph(order, [], [], [], [], [])
    for i, node in enumerate(order):
        data = float(node.data)
        graph.data.append(data)
        parents = [position[id(p)] for p in node._prev]
        op, k = (learner_op(node._op, len(parents)) if parents else (None, None))
        if parents and op is not None and op.arity == 2 and len(parents) == 1:
            parents = parents * 2  # a set of parents hides a + a
        if parents and op is not None and op.arity == 1 and len(parents) != 1:
            op = None
        if parents and op is None:
            graph.unknown[i] = node._op or "?"
            graph.hidden_parents[i] = tuple(parents)
            parents = []
        elif op is not None and op.arity == 2 and op not in _COMMUTATIVE:
            parents = _order_reproducing(op, parents, graph.data, data)
        graph.op.append(op if parents else None)
        graph.a.append(parents[0] if parents else LEAF)
        graph.b.append(parents[1] if len(parents) > 1 else LEAF)
        graph.k.append(k)
    return graph


def _order_reproducing(op: Op, parents: list[int], data: list[float], out: float) -> list[int]:
    """The order of two parents under which op gives the learner's recorded value."""
    forward = op.forward(data[parents[0]], data[parents[1]])
    backward = op.forward(data[parents[1]], data[parents[0]])
    if _distance(backward, out) < _distance(forward, out):
        return [parents[1], parents[0]]
    return parents


def _distance(x: float, y: float) -> float:
    if x == y or (math.isnan(x) and math.isnan(y)):
        return 0.0
    difference = abs(x - y)
    return difference if math.isfinite(difference) else math.inf


def evaluate(graph: RecordedGraph, data: list[float]) -> list[float]:
    """Forward through the op table, in place: every op node recomputed from `data`'s
    leaves (unknown ops keep the value they hold). Returns `data`."""
    op_of, a_of, b_of, k_of = graph.op, graph.a, graph.b, graph.k
    for i, op in enumerate(op_of):
        if op is None:
            continue
        b = b_of[i]
        if b == LEAF:
            data[i] = op.forward(data[a_of[i]], k_of[i])
        else:
            data[i] = op.forward(data[a_of[i]], data[b])
    return data


__all__ = ["LEARNER_OPS", "RecordedGraph", "evaluate", "from_engine", "from_learner",
           "learner_op"]
