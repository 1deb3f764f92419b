"""A learner's own Value class (`%%autograd --engine NAME`): run, trace, backward, steps.

The class needs micrograd's shape: `Value(data)`, arithmetic operators, `.data`, `.grad`,
parents in `._prev`, the op in `._op`, and `backward()` or per-node `._backward` closures.
Everything here distrusts it: graphs are traced without recursion and with a node cap,
numbers are checked, and each misbehaviour becomes one line naming what to fix.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import itertools
import math
import re
import types
import weakref
from collections.abc import Iterator
from typing import Any

from engine import BackwardStep, GradUpdate
from micrograd_magics.cell import BARE_FUNCTIONS, CellRecorder


class LearnerEngineError(Exception):
    """The learner's class did something the magic cannot work with; the message says what."""


def resolve(name: str, ns: dict[str, Any], cell: str = "") -> type:
    """The class NAME names: a name in the notebook, or a dotted import path. A cell that
    defines the class itself (`class Value:` at its top) gets a stand-in until it has."""
    obj = ns.get(name)
    if obj is None and re.search(rf"^class\s+{re.escape(name)}\b", cell, re.M):
        return type(name, (), {"__doc__": "stands in until the cell defines the class"})
    if obj is None and "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise LearnerEngineError(f"--engine {name}: cannot import it ({error})") from None
    if obj is None:
        raise LearnerEngineError(
            f"--engine {name}: no such name; define your Value class in an earlier cell or "
            f"give a dotted path such as micrograd.engine.Value")
    if not isinstance(obj, type):
        raise LearnerEngineError(f"--engine {name}: {name} is a {type(obj).__name__}, not a class")
    return obj


class ForeignRecorder(CellRecorder):
    """The cell's recorder on the learner's class; labels go on `.label` where the class
    accepts one, else they are kept here."""

    def __init__(self, cls: type, ns: dict[str, Any] | None = None,
                 name: str | None = None) -> None:
        super().__init__()
        self.cls = cls
        self.ns, self.name = ns, name  # where the class lives: the cell may define it anew
        # labels their objects do not take (`__slots__` without one) are kept here by id,
        # each with a weak reference that tells whether the id is still that object's; an
        # object with none is kept alive instead, so its id stays its own
        self.labels: dict[int, str] = {}
        self.refs: dict[int, Any] = {}
        self.keep: list[Any] = []
        self.watch: Any = None  # learner_calls.Recording.watch while the cell runs

    def assigned(self, value: Any, name: str) -> None:
        super().assigned(value, name)
        if self.watch is not None and not self.is_value(value):
            self.watch(value)  # a model the cell built: its class is recorded from now on

    def is_value(self, x: Any) -> bool:
        if isinstance(x, self.cls):
            return True
        current = self.ns.get(self.name) if self.ns is not None and self.name else None
        if isinstance(current, type) and current is not self.cls and isinstance(x, current):
            self.cls = current  # the cell redefined their class (`class Value: ...`): follow it
            return True
        return False

    def new_leaf(self, number: float, label: str) -> Any:
        try:
            value = self.cls(number)
        except Exception as error:
            raise LearnerEngineError(
                f"{self.cls.__name__}({number!r}) raised {type(error).__name__}: {error}") from None
        if not hasattr(value, "data") or not hasattr(value, "grad"):
            raise LearnerEngineError(
                f"{self.cls.__name__}({number!r}) has no .data/.grad: micrograd's Value keeps "
                f"its number in .data and its gradient in .grad")
        self.set_label(value, label)
        return value

    def has_label(self, value: Any) -> bool:
        # a label of their own (`Value(2.0, label='a')`, or an earlier cell's) stays, as on
        # our engine
        return bool(self._kept_label(value) or own_label(value))

    def label_of(self, value: Any) -> str:
        return self._kept_label(value) or own_label(value)

    def _kept_label(self, value: Any) -> str:
        ref = self.refs.get(id(value))
        return "" if ref is not None and ref() is not value else self.labels.get(id(value), "")

    def live_labels(self) -> dict[int, str]:
        """id -> label of the labelled objects still alive (the graph holds only those)."""
        return {i: text for i, text in self.labels.items()
                if i not in self.refs or self.refs[i]() is not None}

    def set_label(self, value: Any, text: str) -> None:
        try:
            value.label = text
        except Exception:  # __slots__ without label, or a property: keep it on our side
            pass
        if own_label(value) == text:
            return  # on their object: a training loop's old steps can go
        self.labels[id(value)] = text
        try:
            self.refs[id(value)] = weakref.ref(value)
        except TypeError:
            self.refs.pop(id(value), None)
            self.keep.append(value)


def own_label(obj: Any) -> str:
    """The object's own `.label`, if it has a non-empty string there."""
    try:
        label = getattr(obj, "label", "")
    except Exception:  # a property of theirs that raises
        return ""
    return label if isinstance(label, str) else ""


def not_a_value(cls: type, method: str, result: Any) -> LearnerEngineError:
    name = cls.__name__
    parents = "(self,)" if method in ("__neg__", "tanh", "exp", "log", "relu", "sigmoid",
                                      "sqrt") else "(self, other)"
    shown = repr(result)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return LearnerEngineError(
        f"your {name}.{method}{'()' if not method.startswith('__') else ''} returned a "
        f"{type(result).__name__} ({shown}), not a {name}: return a new {name} so the graph "
        f"goes on, e.g. out = {name}(data, {parents}, op)")


_OPERATORS = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__")


@contextlib.contextmanager
def checked_operators(cls: type) -> Iterator[None]:
    """While the cell runs, each arithmetic operator of their class must return one of its
    Values (or NotImplemented): one that returns a float would end the graph there and the
    cell would go on with plain numbers, dropping the leaves behind it without a word.
    The class is put back as it was afterwards (unless the cell redefined the method)."""
    patched: dict[str, tuple[Any, Any]] = {}
    for name in _OPERATORS:
        raw = inspect.getattr_static(cls, name, None)
        if not isinstance(raw, types.FunctionType):
            continue
        own = cls.__dict__.get(name)
        checked = _checked(cls, name, raw)
        try:
            setattr(cls, name, checked)
        except (TypeError, AttributeError):  # a built-in or otherwise closed class
            continue
        patched[name] = (own, checked)
    try:
        yield
    finally:
        for name, (own, checked) in patched.items():
            if cls.__dict__.get(name) is not checked:
                continue
            if own is None:
                delattr(cls, name)
            else:
                setattr(cls, name, own)


def _checked(cls: type, name: str, method: Any) -> Any:
    @functools.wraps(method)
    def checked(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        if result is not NotImplemented and not isinstance(result, cls):
            raise not_a_value(cls, name, result)
        return result
    return checked


def bare_functions(cls: type) -> dict[str, Any]:
    """tanh, exp, ... that call the learner's method, or say which one is missing."""
    def make(name: str) -> Any:
        def function(x: Any) -> Any:
            if isinstance(x, cls):
                method = getattr(x, name, None)
                if not callable(method):
                    hint = " (tanh can be written with exp: (exp(2*x) - 1) / (exp(2*x) + 1))" \
                        if name == "tanh" else ""
                    raise LearnerEngineError(f"your {cls.__name__} class has no {name}() "
                                             f"method: add one{hint}")
                result = method()
                if not isinstance(result, cls):
                    raise not_a_value(cls, name, result)
                return result
            import engine

            return getattr(engine, name)(x)
        function.__name__ = name
        return function
    return {name: make(name) for name in BARE_FUNCTIONS}


class ForeignNode:
    """A learner's Value seen through the attributes the graph model reads."""

    __slots__ = ("obj", "label", "_op", "_k", "_prev")

    def __init__(self, obj: Any, label: str) -> None:
        self.obj = obj
        self.label = label
        op = getattr(obj, "_op", "")
        self._op = op if isinstance(op, str) else str(op)
        self._k = None
        self._prev: tuple[ForeignNode, ...] = ()

    @property
    def data(self) -> float:
        return number_of(self.obj, "data", self.label)

    @property
    def grad(self) -> float:
        return number_of(self.obj, "grad", self.label)


def number_of(obj: Any, attr: str, name: str) -> float:
    """obj.<attr> as a float, or a one-line error saying what it is instead."""
    value = getattr(obj, attr, None)
    try:
        if isinstance(value, (str, bytes)):  # float('1.0') would pass a string off as a number
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise LearnerEngineError(
            f"{name or 'a node'}.{attr} is {value!r} ({type(value).__name__}), not a number"
        ) from None


LEAVES_WALKED = 2_000_000
"""Nodes leaves_of walks at most (a graph bigger than that is not snapshot)."""


def leaves_of(root: Any) -> list[tuple[Any, float]]:
    """(leaf, its number) for the nodes of root's graph without parents, through `_prev`;
    nothing when their graph cannot be walked (no `_prev`, a `_prev` that raises, more
    than LEAVES_WALKED nodes). Cheap: no checks, as a backward() of theirs starts."""
    found, seen, todo = [], set(), [root]
    try:
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            parents = node._prev
            if parents:
                todo.extend(parents)
                if len(seen) > LEAVES_WALKED:
                    return []
            else:
                data = node.data
                if isinstance(data, (int, float)):
                    found.append((node, data))
    except Exception:  # their graph, not ours to judge here: the trace says what is wrong
        return []
    return found


def parameters_of(modules: list[Any]) -> list[tuple[Any, float]]:
    """(parameter, its number) for what the modules' parameters() give, each once; a
    parameters() that raises gives nothing."""
    found, seen = [], set()
    for module in modules:
        try:
            params = list(module.parameters())
        except Exception:
            continue
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                data = getattr(p, "data", None)
                if isinstance(data, (int, float)):
                    found.append((p, data))
    return found


def trace(root: Any, cls: type, labels: dict[int, str], cap: int) -> list[ForeignNode]:
    """The learner's graph behind root through `_prev`, parents before children; no recursion,
    at most `cap` nodes (a cycle in `_prev` would otherwise never end)."""
    nodes: dict[int, ForeignNode] = {
        id(root): ForeignNode(root, labels.get(id(root)) or own_label(root))}
    stack = [root]
    while stack:
        obj = stack.pop()
        node = nodes[id(obj)]
        try:  # read at most `cap` parents: an endless _prev must not eat the memory
            prev = list(itertools.islice(getattr(obj, "_prev", ()), cap + 1))
        except TypeError:
            raise LearnerEngineError(f"{node.label or 'a node'}._prev is not iterable") from None
        if len(prev) > cap:
            raise LearnerEngineError(
                f"{node.label or 'a node'}._prev gives more than {cap:,} items: it should hold "
                f"the Values the op was computed from (one or two)")
        parents = []
        for parent in prev:
            if not isinstance(parent, cls):
                raise LearnerEngineError(
                    f"{node.label or 'a node'}._prev holds a {type(parent).__name__}: _prev "
                    f"should hold the {cls.__name__}s the op was computed from")
            if id(parent) not in nodes:
                if len(nodes) >= cap:
                    raise LearnerEngineError(
                        f"more than {cap:,} nodes behind the root: the graph is traced up to "
                        f"100 x --max-nodes; raise it (--max-nodes {cap // 10:,}) to trace a "
                        f"bigger graph")
                # a Value of an earlier cell keeps the label it got there
                nodes[id(parent)] = ForeignNode(parent, labels.get(id(parent)) or own_label(parent))
                stack.append(parent)
            parents.append(nodes[id(parent)])
        node._prev = tuple(parents)
    return _parents_first(nodes[id(root)], list(nodes.values()))


def _parents_first(root: ForeignNode, nodes: list[ForeignNode]) -> list[ForeignNode]:
    users = {id(n): 0 for n in nodes}
    for node in nodes:
        for parent in set(map(id, node._prev)):
            users[parent] += 1
    ready, order = [root], []
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in {id(p): p for p in node._prev}.values():
            users[id(parent)] -= 1
            if users[id(parent)] == 0:
                ready.append(parent)
    if len(order) != len(nodes):
        raise LearnerEngineError("_prev forms a cycle: a node is its own ancestor")
    order.reverse()
    return order


def set_grads(order: list[ForeignNode], grads: list[float]) -> None:
    for node, grad in zip(order, grads, strict=True):
        try:
            node.obj.grad = grad
        except Exception as error:
            raise LearnerEngineError(f"cannot set {node.label or 'a node'}.grad: {error}") from None


def run_backward(root: ForeignNode, order: list[ForeignNode], *,
                 record_steps: bool) -> tuple[list[BackwardStep] | None, list[str]]:
    """Zero the grads, run the learner's backward; with record_steps, also replay their
    `_backward` closures one node at a time and record what each call changed. Returns the
    steps (None when not recorded) and notes. The grads left are those of their backward()."""
    notes: list[str] = []
    obj = root.obj
    has_backward = callable(getattr(obj, "backward", None))
    has_closures = all(callable(getattr(n.obj, "_backward", None)) for n in order)
    if not has_backward and not has_closures:
        raise LearnerEngineError(f"your {type(obj).__name__} class has neither backward() nor "
                                 f"per-node _backward closures")
    final = None
    if has_backward:
        set_grads(order, [0.0] * len(order))
        try:
            obj.backward()
        except RecursionError:
            raise LearnerEngineError(
                f"your backward() hit Python's recursion limit on a graph of {len(order):,} "
                f"nodes: a recursive build_topo calls itself once per node; walk the graph "
                f"with an explicit stack instead") from None
        final = [n.grad for n in order]
    steps = None
    if has_closures and (record_steps or not has_backward):
        steps = _replay_closures(root, order)
        replayed = [n.grad for n in order]
        if final is not None and any(not _same(a, b) for a, b in zip(final, replayed)):
            notes.append("your backward() gives other gradients than your _backward closures "
                         "run in topological order: check how backward() orders the nodes")
    if final is not None:
        set_grads(order, final)
    return steps, notes


def _agrees(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return _same(a, b)
    return abs(a - b) <= atol + rtol * abs(b)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _replay_closures(root: ForeignNode, order: list[ForeignNode]) -> list[BackwardStep]:
    set_grads(order, [0.0] * len(order))
    try:
        root.obj.grad = 1.0
    except Exception as error:
        raise LearnerEngineError(f"cannot set the root's grad: {error}") from None
    steps = []
    for node in reversed(order):
        if not node._prev:
            continue
        upstream = node.grad
        parents = list({id(p): p for p in node._prev}.values())
        before = [p.grad for p in parents]
        node.obj._backward()
        updates = []
        for parent, old in zip(parents, before):
            new = parent.grad
            contribution = new - old
            local = contribution / upstream if upstream else math.nan
            updates.append(GradUpdate(parent, local, contribution, old, new))  # type: ignore[arg-type]
        steps.append(BackwardStep(node, upstream, tuple(updates)))  # type: ignore[arg-type]
    return steps


def describe(node: ForeignNode) -> str:
    """`e = a*b`, `o = tanh(n)`: a node as the learner would write it."""
    names = [p.label or "?" for p in node._prev]
    op = node._op or "?"
    if len(names) == 2:
        expression = f"{names[0]}{op}{names[1]}"
    elif len(names) == 1 and op in ("+", "-", "*", "/"):  # a set of parents hides a + a
        expression = f"{names[0]}{op}{names[0]}"
    elif len(names) == 1:
        expression = f"{op}({names[0]})" if op.isalpha() else f"{names[0]}{op}"
    else:
        expression = op
    return f"{node.label} = {expression}" if node.label else expression
