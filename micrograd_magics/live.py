"""%%autograd --live: record a training loop's backward() calls as the cell runs.

The cell runs once, unchanged. `engine.observing_backward` tells us each backward (its
root, the loss, and the order backward walked anyway) and `engine.nn.observing_calls`
each Neuron call (so a ReLU neuron whose output is 0 for every input of a step is dead
for that step). Per backward this costs a few list reads over the parameters, never a
walk of the graph; the view is refreshed at most `UPDATE_INTERVAL` seconds apart.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import engine
from engine import Value
from engine.nn import MLP, Neuron, observing_calls

UPDATE_INTERVAL = 0.1
"""Seconds between two updates of the view (about 10 a second), plus always a final one."""
MAX_LINES = 12
"""Plain Values: at most this many named leaves are drawn as lines."""
MAX_POINTS = 500
"""2-D training points sent to the view for the decision boundary (evenly sampled)."""
DATA_NAMES = (("X", "y"), ("xs", "ys"), ("x", "y"), ("inputs", "targets"),
              ("points", "labels"))
"""Names the training points are looked for under when --live-data is not given."""


class LiveError(Exception):
    """A --live problem to show as one line (the pipeline turns it into a UsageError)."""


@dataclass(slots=True)
class LiveStep:
    """One backward() call of the cell: its root's value and the gradients it produced."""

    step: int
    loss: float
    grad_norms: dict[str, float]  # group ("layers[0]", a leaf's name, ...) -> L2 norm; "total"
    dead: list[str] = field(default_factory=list)  # ReLU neurons dead in this step, by path

    def __repr__(self) -> str:
        return f"LiveStep(step={self.step}, loss={self.loss:.6g}, total grad norm=" \
               f"{self.grad_norms.get('total', 0.0):.4g}, dead={len(self.dead)})"


@dataclass
class Parameters:
    """What the view shows besides the loss: a model's parameters by path, or named leaves."""

    name: str  # the model's name in the notebook, "" for plain Values
    paths: list[str]
    values: list[Value]
    groups: list[tuple[str, int, int]]  # (group path, start, end) into paths/values
    neurons: dict[int, str] = field(default_factory=dict)  # id(engine.nn Neuron) -> row path
    mlp: Any = None  # the engine.nn MLP, when the view can evaluate it itself
    rows: dict[str, int] = field(default_factory=dict)  # row path -> its place, in order

    @property
    def is_model(self) -> bool:
        return bool(self.name)


def row_of(path: str) -> str:
    """`layers[0].neurons[3].w[1]` -> `layers[0].neurons[3]` (the neuron), `b` -> ``."""
    return path.rpartition(".")[0]


def group_of(row: str) -> str:
    """`layers[0].neurons[3]` -> `layers[0]` (the layer), `neurons[3]` -> ``."""
    return row.rpartition(".")[0] if "." in row else ""


def named_parameters_of(obj: Any) -> list[tuple[str, Value]]:
    """(path, Value) of a model: its own named_parameters() (engine.nn), else the paths its
    attributes give (`layers[0].neurons[1].w[0]`) for a learner's class built on Value."""
    named = getattr(obj, "named_parameters", None)
    if callable(named):
        pairs = list(named())
        if pairs and all(isinstance(p, Value) for _, p in pairs):
            return pairs
    found: list[tuple[str, Value]] = []
    seen: set[int] = set()

    def walk(x: Any, path: str, depth: int) -> None:
        if isinstance(x, Value):
            if id(x) not in seen:
                seen.add(id(x))
                found.append((path, x))
            return
        if depth > 6 or id(x) in seen or isinstance(x, (str, bytes, int, float, type)):
            return
        seen.add(id(x))
        if isinstance(x, (list, tuple)):
            for i, item in enumerate(x):
                walk(item, f"{path}[{i}]", depth + 1)
        elif hasattr(x, "__dict__"):
            for name, item in vars(x).items():
                if not name.startswith("_"):
                    walk(item, f"{path}.{name}" if path else name, depth + 1)

    walk(obj, "", 0)
    listed = parameters_of(obj)
    if listed and {id(p) for _, p in found} != {id(p) for p in listed}:
        return [(f"p[{i}]", p) for i, p in enumerate(listed)]
    return found


def parameters_of(obj: Any) -> list[Value]:
    """obj.parameters() when it is a list of Values, else []."""
    method = getattr(type(obj), "parameters", None)
    if method is None or isinstance(obj, type):
        return []
    try:
        params = list(obj.parameters())
    except Exception:  # noqa: BLE001 - not a model after all: it is just not shown
        return []
    return params if params and all(isinstance(p, Value) for p in params) else []


def find_parameters(ns: dict[str, Any], order: list[Value]) -> Parameters:
    """The model whose parameters the first backward reached (the largest, when several
    share them: `model` rather than `neuron = model.layers[0].neurons[0]`), else the named
    leaves of the graph."""
    leaves = {id(node) for node in order if node._a is None}
    best: tuple[int, str, Any] | None = None
    for name, obj in list(ns.items()):
        if name.startswith("_") or isinstance(obj, (Value, type, list, dict, tuple)):
            continue
        params = parameters_of(obj)
        reached = sum(id(p) in leaves for p in params)
        if reached and (best is None or len(params) > best[0]):
            best = (len(params), name, obj)
    if best is not None:
        _, name, model = best
        pairs = named_parameters_of(model)
        return _grouped(name, pairs, model)
    named = [node for node in order if node._a is None and node.label][::-1][:MAX_LINES]
    pairs = [(node.label, node) for node in named]
    return Parameters("", [p for p, _ in pairs], [v for _, v in pairs],
                      [(p, i, i + 1) for i, (p, _) in enumerate(pairs)])


def _grouped(name: str, pairs: list[tuple[str, Value]], model: Any) -> Parameters:
    """Parameters in groups (a layer each), each group's rows (its neurons) kept together."""
    order: dict[str, list[tuple[str, Value]]] = {}
    for path, value in pairs:
        order.setdefault(group_of(row_of(path)), []).append((path, value))
    paths: list[str] = []
    values: list[Value] = []
    groups = []
    for group, members in order.items():
        start = len(paths)
        paths += [p for p, _ in members]
        values += [v for _, v in members]
        groups.append((group, start, len(paths)))
    neurons = {}
    for row in dict.fromkeys(row_of(p) for p in paths):
        target = resolve(model, row)
        if isinstance(target, Neuron) and target.nonlin:
            neurons[id(target)] = row
    mlp = model if isinstance(model, MLP) else None
    return Parameters(name, paths, values, groups, neurons, mlp)


def resolve(obj: Any, path: str) -> Any:
    """The object at `layers[0].neurons[3]` inside obj (None if the path does not lead)."""
    for part in filter(None, re.split(r"\.|(?=\[)", path)):
        try:
            obj = obj[int(part[1:-1])] if part.startswith("[") else getattr(obj, part)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            return None
    return obj


def training_points(ns: dict[str, Any], names: tuple[str, str] | None
                    ) -> tuple[list[tuple[float, float]], list[float]]:
    """The 2-D points and their labels (X, y) the cell trains on: the names given, else the
    first of DATA_NAMES that holds n points of 2 numbers and n labels. LiveError when names
    were given and do not hold that; ([], []) when nothing was found."""
    candidates = [names] if names else list(DATA_NAMES)
    for xs_name, ys_name in candidates:
        if xs_name not in ns or ys_name not in ns:
            if names:
                missing = [n for n in names if n not in ns]
                raise LiveError(f"--live-data {','.join(names)}: no {' or '.join(missing)} "
                                f"when the cell called backward()")
            continue
        problem, points, labels = _points(ns[xs_name], ns[ys_name])
        if problem and names:
            raise LiveError(f"--live-data {','.join(names)}: {problem}")
        if not problem:
            return points, labels
    return [], []


def _number(x: Any) -> float:
    x = x.data if isinstance(x, Value) else x
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(type(x).__name__)
    return float(x)


def _points(xs: Any, ys: Any) -> tuple[str, list[tuple[float, float]], list[float]]:
    try:
        n = len(xs)
        if n < 2 or len(ys) != n:
            return f"needs as many labels as points (X has {n}, y {len(ys)})", [], []
        points = []
        for p in xs:
            if len(p) != 2:
                return f"X needs points of 2 numbers, not {len(p)}", [], []
            points.append((_number(p[0]), _number(p[1])))
        labels = [_number(v) for v in ys]
    except TypeError as error:
        return f"X must be a list of [x0, x1] points and y a list of numbers ({error})", [], []
    return "", points, labels


# --- the recorder -----------------------------------------------------------------------

class LiveRecorder:
    """The observer of the cell's backward() and Neuron calls; keeps the history.

    `on_update(recorder)` is called after a backward at most every `interval` seconds and
    by `finish()`; the view reads `history`, `snapshot` and `dead` from here.
    """

    def __init__(self, ns: dict[str, Any], root_name: str | None = None,
                 data_names: tuple[str, str] | None = None,
                 on_update: Callable[[LiveRecorder], None] | None = None,
                 interval: float = UPDATE_INTERVAL) -> None:
        self.ns = ns
        self.root_name = root_name
        self.data_names = data_names
        self.on_update = on_update
        self.interval = interval
        self.history: list[LiveStep] = []
        self.params: Parameters | None = None
        self.points: list[tuple[float, float]] = []
        self.labels: list[float] = []
        self.notes: list[str] = []
        self.root: Value | None = None
        self.order: list[Value] | None = None  # the last backward's, root first
        self.snapshot: tuple[list[float], list[float]] = ([], [])  # params' data, grad then
        self.series: list[list[float]] = []  # plain Values: each leaf's data per step
        self._zero: set[Any] = set()
        self._fired: set[Any] = set()
        self._sent = 0.0
        self.updates = 0
        self.interrupted = ""
        self.broken = False  # recording failed once: the loop goes on unobserved

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Observe backward() calls (and engine.nn Neuron calls) inside the block."""
        zero, fired = self._zero.add, self._fired.add

        def on_call(module: Any, x: Any, out: Any, _value: type = Value) -> None:
            # a Neuron's (and a one-neuron Layer's) output; only Neurons are looked up later
            if out.__class__ is _value:
                (fired if out.data else zero)(module)

        with engine.observing_backward(self), observing_calls(on_call):
            yield

    def __call__(self, root: Value, order: list[Value]) -> None:
        if self.broken or (self.root_name is not None and self.ns.get(self.root_name)
                           is not root):
            return
        try:
            self._record(root, order)
        except Exception as error:  # noqa: BLE001 - the view must never stop their loop
            self.broken = True
            self.notes.append(f"the live view stopped recording at step {len(self.history)}: "
                              f"{type(error).__name__}: {error}")

    def _record(self, root: Value, order: list[Value]) -> None:
        if self.params is None:
            self._first(order)
        params = self.params
        assert params is not None
        values = params.values
        data = [p.data for p in values]
        grads = [p.grad for p in values]
        norms = {group: math.sqrt(sum(g * g for g in grads[start:end]))
                 for group, start, end in params.groups}
        norms["total"] = math.sqrt(sum(g * g for g in grads))
        dead = []
        if params.neurons:
            neurons = params.neurons
            dead = [neurons[id(n)] for n in self._zero - self._fired if id(n) in neurons]
            dead.sort(key=params.rows.__getitem__)
        self._zero.clear()
        self._fired.clear()
        self.history.append(LiveStep(len(self.history), root.data, norms, dead))
        self.root, self.order, self.snapshot = root, order, (data, grads)
        if not params.is_model:
            for series, x in zip(self.series, data):
                series.append(x)
        now = time.monotonic()
        if self.on_update is not None and now - self._sent >= self.interval:
            self._sent = now
            self.updates += 1
            self.on_update(self)

    def _first(self, order: list[Value]) -> None:
        params = find_parameters(self.ns, order)
        for path in params.paths:
            params.rows.setdefault(row_of(path), len(params.rows))
        self.params = params
        self.series = [[] for _ in params.values] if not params.is_model else []
        try:
            points, labels = training_points(self.ns, self.data_names)
        except LiveError as error:
            self.notes.append(str(error))
            points, labels = [], []
        if points and params.mlp is not None and _two_inputs(params.mlp):
            step = max(1, math.ceil(len(points) / MAX_POINTS))
            self.points, self.labels = points[::step], labels[::step]
        elif points and (params.is_model or self.data_names):  # plain Values: no model
            self.notes.append("decision boundary: drawn for an engine.nn MLP with 2 inputs "
                              "and 1 output; this model is not evaluated again (your code "
                              "runs once)")

    @contextlib.contextmanager
    def grads_as_recorded(self) -> Iterator[None]:
        """While the block runs, the parameters hold the gradients the last recorded
        backward gave them (a loop may zero them after its update step)."""
        if self.params is None:
            yield
            return
        values = self.params.values
        now = [p.grad for p in values]
        for p, g in zip(values, self.snapshot[1]):
            p.grad = g
        try:
            yield
        finally:
            for p, g in zip(values, now):
                p.grad = g


def _two_inputs(mlp: MLP) -> bool:
    layers = mlp.layers
    return bool(layers) and len(layers[0].neurons[0].w) == 2 and len(layers[-1].neurons) == 1


def parse_data_names(text: str | None) -> tuple[str, str] | None:
    """`X,y` -> ("X", "y"); LiveError for anything else."""
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(","))
    if len(names) != 2 or not all(n.isidentifier() for n in names):
        raise LiveError(f"--live-data takes two names, the points and the labels: "
                        f"--live-data X,y (not {text!r})")
    return names  # type: ignore[return-value]


__all__ = ["LiveError", "LiveRecorder", "LiveStep", "find_parameters", "training_points"]
