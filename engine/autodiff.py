"""Reverse-mode autodiff over Values: topological order, backward, backward as steps, zero_grad.

Nothing here recurses, so a chain of a million nodes is as fine as a chain of ten.
Every local derivative comes from the op's rule in `engine.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.value import Value


def _count_users(root: Value) -> None:
    """Set each node's `_users` to how many times nodes of root's graph use it."""
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        a = node._a
        if a is None:  # a leaf uses nothing
            continue
        if a._users:
            a._users += 1
        else:
            a._users = 1
            push(a)
        b = node._b
        if b is not None:
            if b._users:
                b._users += 1
            else:
                b._users = 1
                push(b)


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
    the nodes' `_users` slot and are all back to 0 when this returns.
    """
    order: list[Value] = []
    try:
        _count_users(root)
        ready = [root]
        pop, push, place = ready.pop, ready.append, order.append
        while ready:
            node = pop()
            place(node)
            a = node._a
            if a is None:
                continue
            a._users -= 1
            if not a._users:
                push(a)
            b = node._b
            if b is not None:
                b._users -= 1
                if not b._users:
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


def backward(root: Value, order: list[Value] | None = None) -> None:
    """Seed root.grad with 1.0 and add each node's contribution into its parents' grads.

    Gradients accumulate (`+=`): a node used twice gets both contributions, and grads
    left from an earlier backward are added to, as in micrograd and torch's leaves.

    `order`: root's graph as `topological_order(root)` gave it, when the caller has it
    already (the magic does): the rules then run along it, with no walk of their own.
    Without it this is `_backward_order` with the rules run as nodes are placed (no order
    list): the demo training step spends about half its time in here.
    """
    if order is not None:
        root.grad = 1.0
        for node in reversed(order):
            a = node._a
            if a is None:
                continue
            b = node._b
            rule = node._op.local
            if b is None:
                a.grad += node.grad * rule(a.data, node._k, node.data)
            else:
                da, db = rule(a.data, b.data, node.data)
                g = node.grad
                a.grad += g * da
                b.grad += g * db
        return
    try:
        _count_users(root)
        root.grad = 1.0
        ready = [root]
        pop, push = ready.pop, ready.append
        while ready:
            node = pop()
            a = node._a
            if a is None:  # a leaf: no rule
                continue
            b = node._b
            rule = node._op.local  # an attribute, not a method: fetched, then called
            if b is None:
                a.grad += node.grad * rule(a.data, node._k, node.data)
                a._users -= 1
                if not a._users:
                    push(a)
            else:
                da, db = rule(a.data, b.data, node.data)
                g = node.grad
                a.grad += g * da
                b.grad += g * db
                a._users -= 1
                if not a._users:
                    push(a)
                b._users -= 1
                if not b._users:
                    push(b)
    except BaseException:
        _reset_users(root)
        raise


def local_gradients(node: Value) -> list[tuple[Value, float]]:
    """node's parents, each with d node / d parent from the op's rule ([] for a leaf)."""
    op, a, b = node._op, node._a, node._b
    if not op or a is None:
        return []
    if b is None:
        return [(a, op.local(a.data, node._k, node.data))]
    da, db = op.local(a.data, b.data, node.data)
    return [(a, da), (b, db)]


def apply_rule(node: Value) -> None:
    """Run one node's rule, as micrograd's `node._backward()` does.

    Each parent's grad += node.grad * d node / d parent.
    """
    for parent, local in local_gradients(node):
        parent.grad += node.grad * local


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
        for parent, local in local_gradients(node):
            before = parent.grad
            contribution = upstream * local
            parent.grad = before + contribution if accumulate else contribution
            updates.append(GradUpdate(parent, local, contribution, before, parent.grad))
        steps.append(BackwardStep(node, upstream, tuple(updates)))
    return steps


def zero_grad(root: Value) -> None:
    """Set the gradient of every node in root's graph to 0.0."""
    for node in _backward_order(root):
        node.grad = 0.0
