"""Reverse-mode autodiff over Values: topological order, backward, backward as steps, zero_grad.

Nothing here recurses, so a chain of a million nodes is as fine as a chain of ten.
Every local derivative comes from the op's rule in `engine.ops`: `local_gradients` and
`backward_steps` call the rule compiled into `op.local`; `backward` runs a loop compiled
from the same rule text (`print(engine.autodiff.BACKWARD_SOURCE)` shows it).
"""

from __future__ import annotations

import ast
import contextlib
import linecache
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from engine import ops
from engine.value import Value


def _count_users(root: Value, zero_grads: bool = False) -> None:
    """Set each node's `_users` to how many times nodes of root's graph use it, and with
    `zero_grads` each node's grad to 0.0 as it is found."""
    if zero_grads:
        root.grad = 0.0
    # Depth first (a stack), as every walk here: a chain's nodes were made one after the
    # other and sit side by side in memory, so following chains keeps the caches warm.
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        a = node._a
        if a is None:  # a leaf uses nothing
            continue
        if a._users == 0:
            if zero_grads:
                a.grad = 0.0
            push(a)
        a._users += 1
        b = node._b
        if b is not None:
            if b._users == 0:
                if zero_grads:
                    b.grad = 0.0
                push(b)
            b._users += 1


def _reset_users(root: Value) -> None:
    """Put every `_users` of root's graph back to 0 after a walk was interrupted."""
    seen = {id(root)}
    stack = [root]
    while stack:
        node = stack.pop()
        node._users = 0
        for parent in (node._a, node._b):
            if parent is not None and id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)


def _backward_order(root: Value) -> list[Value]:
    """root's graph with every node before its parents (root first, leaves last).

    Kahn's algorithm on the reversed graph: a node is placed once every node that uses it
    has been placed, so its gradient is complete when its rule runs. The counts live in
    the nodes' `_users` slot and are all back to 0 when this returns. `backward` places
    nodes in this same order.
    """
    order: list[Value] = []
    try:
        _count_users(root)
        ready = [root]  # a stack: see `_count_users`
        pop, push, place = ready.pop, ready.append, order.append
        while ready:
            node = pop()
            place(node)
            a = node._a
            if a is None:
                continue
            users = a._users - 1
            a._users = users
            if users == 0:
                push(a)
            b = node._b
            if b is not None:
                users = b._users - 1
                b._users = users
                if users == 0:
                    push(b)
    except BaseException:
        _reset_users(root)
        raise
    return order


def topological_order(root: Value) -> list[Value]:
    """Every node of root's graph after all of its parents: leaves first, root last."""
    order = _backward_order(root)
    order.reverse()
    return order


BackwardObserver = Callable[[Value, list[Value]], None]
_observers: list[BackwardObserver] = []


@contextlib.contextmanager
def observing_backward(observer: BackwardObserver) -> Iterator[None]:
    """Call `observer(root, order)` after every `backward(root)` inside the block.

    `order` is root's graph in the order the rules ran (root first, every node before its
    parents), from the walk backward made anyway: an observer that wants the leaves or
    the gradients need not walk the graph again. Without observers backward runs its
    usual walk, which records nothing.
    """
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


def backward(root: Value, order: list[Value] | None = None) -> None:
    """Seed root.grad with 1.0 and add each node's contribution into its parents' grads.

    Gradients accumulate (`+=`): a node used twice gets both contributions, and grads
    left from an earlier backward are added to, as in micrograd and torch's leaves.

    `order`: root's graph as `topological_order(root)` gave it, when the caller has it
    already (the magic does): the rules then run along it, with no walk of their own.
    Without it, the rules run as Kahn's walk places each node (`_backward_order`'s order,
    with no order list): the demo training step spends about half its time in here.
    """
    root.grad = 1.0
    if order is not None:
        _run_rules(reversed(order))
        ran = order[::-1] if _observers else order
    else:
        try:
            _count_users(root)
            if not _observers:
                _walk_running_rules(root)
                return
            ran = _walk_running_rules_recording(root)
        except BaseException:
            _reset_users(root)
            raise
    for observer in list(_observers):
        observer(root, ran)


def zeroed_backward(root: Value) -> list[Value]:
    """`zero_grad(root)` then `backward(root)`, in one walk of the graph.

    Returns root's graph in the order the rules ran: root first, every node before its
    parents (`topological_order(root)` reversed).
    """
    try:
        _count_users(root, zero_grads=True)
        root.grad = 1.0
        return _walk_running_rules_recording(root)
    except BaseException:
        _reset_users(root)
        raise


# --- backward's loops, compiled from the op table ----------------------------------------
# Calling a rule costs about as much as the rest of a node's backward step together, so
# the loops below have every op's rule written into them, from the same text the op table
# compiles `op.local` from. `+` and `*` come first: they are nearly every node of a network.

_HOT_OPS = (ops.ADD, ops.MUL, ops.RELU, ops.TANH)
_READS = {"a": "a.data", "b": "b.data", "k": "node._k", "out": "node.data"}


class _ReadFromNodes(ast.NodeTransformer):
    """A rule's variables read from the nodes: `b` becomes `b.data`, `out` `node.data`."""

    def visit_Name(self, name: ast.Name) -> ast.expr:
        if name.id in _READS:
            return ast.parse(_READS[name.id], mode="eval").body
        return name


def _read_from_nodes(text: str) -> str:
    return ast.unparse(_ReadFromNodes().visit(ast.parse(text, mode="eval")))


def _accumulate(parent: str, rule: str) -> str:
    """The line adding upstream gradient g times one local derivative to a parent's grad
    (only where the condition holds, for a select: see `engine.ops`)."""
    condition, rule = ops.split_select(rule)
    if rule == "1.0":
        line = f"{parent}.grad += g"
    elif rule == "-1.0":
        line = f"{parent}.grad -= g"  # exactly a.grad + g * -1.0
    else:
        line = f"{parent}.grad += g * ({_read_from_nodes(rule)})"
    return line if condition is None else f"if {_read_from_nodes(condition)}: {line}"


def _op_names() -> dict[ops.Op, str]:
    return {value: name for name, value in vars(ops).items() if isinstance(value, ops.Op)}


def _dispatch(indent: str) -> str:
    """`if op is ADD: ... elif op is MUL: ...` over the whole table, rules written in."""
    names = _op_names()
    table = list(_HOT_OPS) + [op for op in ops.OPS.values() if op not in _HOT_OPS]
    lines = []
    for i, op in enumerate(table):
        lines.append(f"{'if' if i == 0 else 'elif'} op is {names[op]}:  # {op.symbol}")
        lines += [f"    {_accumulate(parent, rule)}" for parent, rule in zip("ab", op.rule)]
    lines += [
        "else:  # an op from outside the table: its compiled rule",
        "    if b is None:",
        "        a.grad += op.contribute(g, a.data, node._k, node.data)[0]",
        "    else:",
        "        da, db = op.contribute(g, a.data, b.data, node.data)",
        "        a.grad += da",
        "        b.grad += db",
    ]
    return "\n".join(indent + line for line in lines)


_WALK = '''\
def {name}(root):
    """{doc}"""
    ready = [root]  # a stack, as in `_backward_order`: the same order
    pop, push = ready.pop, ready.append{start}
    while ready:
        node = pop(){place}
        a = node._a
        if a is None:  # a leaf: no rule
            continue
        b = node._b
        g = node.grad
        op = node._op
{dispatch}
        users = a._users - 1
        a._users = users
        if users == 0:
            push(a)
        if b is not None:
            users = b._users - 1
            b._users = users
            if users == 0:
                push(b){end}
'''

_ALONG = '''\
def _run_rules(nodes):
    """Each node's rule, in the order given: users before the nodes they use."""
    for node in nodes:
        a = node._a
        if a is None:
            continue
        b = node._b
        g = node.grad
        op = node._op
{dispatch}
'''


def _backward_source() -> str:
    dispatch = _dispatch(" " * 8)
    walk = _WALK.format(
        name="_walk_running_rules", dispatch=dispatch, start="", place="", end="",
        doc="Kahn's walk from root (counts already in `_users`), each rule run as its "
            "node is placed.")
    recording = _WALK.format(
        name="_walk_running_rules_recording", dispatch=dispatch,
        start="\n    order = []\n    place = order.append", place="\n        place(node)",
        end="\n    return order",
        doc="The same walk, returning the nodes in the order it placed them.")
    return "\n\n".join([walk, recording, _ALONG.format(dispatch=dispatch)])


BACKWARD_SOURCE = _backward_source()
"""The source of backward's three loops, as compiled from the op table."""


def _compile_loops() -> tuple[Callable[[Value], None], Callable[[Value], list[Value]],
                            Callable[[Iterable[Value]], None]]:
    filename = "<engine.autodiff: backward compiled from engine.ops>"
    linecache.cache[filename] = (len(BACKWARD_SOURCE), None,
                                 BACKWARD_SOURCE.splitlines(True), filename)
    namespace = dict(ops.RULE_NAMES)
    namespace.update((name, op) for op, name in _op_names().items())
    exec(compile(BACKWARD_SOURCE, filename, "exec"), namespace)  # noqa: S102 - our own text
    return (namespace["_walk_running_rules"], namespace["_walk_running_rules_recording"],
            namespace["_run_rules"])


_walk_running_rules, _walk_running_rules_recording, _run_rules = _compile_loops()


def local_gradients(node: Value) -> list[tuple[Value, float]]:
    """node's parents, each with d node / d parent from the op's rule ([] for a leaf)."""
    op, a, b = node._op, node._a, node._b
    if not op or a is None:
        return []
    if b is None:
        return [(a, op.local(a.data, node._k, node.data))]
    da, db = op.local(a.data, b.data, node.data)
    return [(a, da), (b, db)]


def contributions(node: Value) -> list[tuple[Value, float, float]]:
    """node's parents, each with d node / d parent and what its grad receives from
    node.grad (node.grad * local, or 0.0 where the op's rule selects: see `engine.ops`)."""
    op, a, b = node._op, node._a, node._b
    if not op or a is None:
        return []
    g = node.grad
    if b is None:
        local = op.local(a.data, node._k, node.data)
        return [(a, local, op.contribute(g, a.data, node._k, node.data)[0])]
    da, db = op.local(a.data, b.data, node.data)
    ca, cb = op.contribute(g, a.data, b.data, node.data)
    return [(a, da, ca), (b, db, cb)]


def apply_rule(node: Value) -> None:
    """Run one node's rule, as micrograd's `node._backward()` does.

    Each parent's grad += node.grad * d node / d parent.
    """
    for parent, _, contribution in contributions(node):
        parent.grad += contribution


@dataclass(frozen=True, slots=True)
class GradUpdate:
    """What one rule did to one parent's gradient."""

    parent: Value
    local: float  # d node / d parent
    contribution: float  # node.grad * local
    before: float
    after: float


@dataclass(frozen=True, slots=True)
class BackwardStep:
    """One node's rule running during backward, and the gradients it changed."""

    node: Value
    upstream: float  # node.grad when its rule ran
    updates: tuple[GradUpdate, ...]


def backward_steps(root: Value, *, accumulate: bool = True) -> list[BackwardStep]:
    """Run backward from root one rule at a time and record every step, in order.

    With `accumulate=False` the rules assign (`=`) instead of adding (`+=`): the lecture's
    bug, where a node reached twice keeps only the last contribution.
    Grads should start at zero (see `zero_grad`); the root is seeded with 1.0.
    """
    root.grad = 1.0
    steps = []
    for node in _backward_order(root):
        if not node._op:
            continue
        upstream = node.grad
        updates = []
        for parent, local, contribution in contributions(node):
            before = parent.grad
            parent.grad = before + contribution if accumulate else contribution
            updates.append(GradUpdate(parent, local, contribution, before, parent.grad))
        steps.append(BackwardStep(node, upstream, tuple(updates)))
    return steps


def zero_grad(root: Value) -> None:
    """Set the gradient of every node in root's graph to 0.0."""
    for node in _backward_order(root):
        node.grad = 0.0
