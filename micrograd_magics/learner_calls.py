"""The collapsed drawing for a learner's own classes (`--engine`): which of their
Neuron-like objects made which nodes, and the graph as engine Values collapse.py reads.

While the cell runs, `recording` wraps `__call__` of the learner's module-like classes
(a Python `__call__` and a `parameters`, defined in the notebook or next to their Value
class): each call appends (module, x, out) to a `collapse.CallLog`, and nothing else;
the wrapper returns what their `__call__` returned and is taken off again afterwards,
whatever happened. After the run, the modules that hold no other module and returned one
Value are the neurons (a Layer holds its Neurons, an MLP its Layers).
Their `backward` is wrapped too, only to drop the calls of steps before the last-but-one
(as `CallLog` does for the engine): each call holds its output, and so its whole graph.

After the run, `view_of` mirrors the traced graph (foreign.ForeignNode, parents first) as
engine Values: the learner's numbers (data and grads from their backward), their ops read
from `_op` (`+`, `*`, `**2`, `tanh`, `ReLU`, ...). collapse.py groups the mirror as it
groups the engine's graph; the paths (`n.layers[0].neurons[3]`) come from the learner's own
attribute names. An op it cannot read still shows, with its number; the shares through it
are nan and its box says why.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import re
import types
from collections.abc import Iterator
from typing import Any

from engine import ops
from engine.nn import Neuron
from engine.value import Value
from micrograd_magics import collapse
from micrograd_magics.foreign import ForeignNode, ForeignRecorder, LearnerEngineError
from micrograd_magics.graph import GraphModel

NOT_THEIRS = frozenset({"engine", "micrograd_magics", "builtins"})
"""Top-level packages whose classes are never wrapped (ours, Python's)."""
LIST_SCAN = 64
"""Items of a list attribute looked at for module-like objects while the cell runs."""
WALK_DEPTH = 8
"""Attribute levels followed from a model to its neurons (`n.layers[0].neurons[3]`)."""


# --- while the cell runs ---------------------------------------------------------------------

class Recording:
    """The wrappers of one cell run; see the module docstring."""

    def __init__(self, recorder: ForeignRecorder, ns: dict[str, Any],
                 log: collapse.CallLog, on_backward: Any = None) -> None:
        self.recorder, self.ns, self.log = recorder, ns, log
        self.on_backward = on_backward  # (root, the step's calls) as a backward() starts
        self.home = _package(getattr(recorder.cls, "__module__", "") or "")
        self.seen: set[type] = set()  # classes looked at, wrapped or not
        self.modules: set[type] = set()  # the module-like ones
        self.walked: set[type] = set()  # module classes with one object looked into
        self.patched: list[tuple[type, str, Any, Any]] = []  # (owner, name, own, wrapper)
        self.backward_of: set[type] = set()

    def __enter__(self) -> Recording:
        self.recorder.watch = self.watch
        self._watch_backward(self.recorder.cls)
        for value in list(self.ns.values()):
            if isinstance(value, type):
                self._consider(value)
            else:
                self.watch(value)
        return self

    def __exit__(self, *exc: object) -> None:
        self.recorder.watch = None
        for owner, name, own, wrapper in reversed(self.patched):
            if owner.__dict__.get(name) is wrapper:  # else the cell put its own there: leave it
                setattr(owner, name, own)
        self.patched.clear()

    def watch(self, obj: Any) -> None:
        """A non-Value the cell has (a model it built): wrap its class and its parts'."""
        # the cell may define its Value class itself: the recorder follows it at its first
        # Value, the backward() to watch is the one the name holds now
        named = self.ns.get(self.recorder.name or "")
        self._watch_backward(named if isinstance(named, type) else self.recorder.cls)
        if type(obj) not in self.walked:
            self._walk(obj, WALK_DEPTH)

    def _walk(self, obj: Any, depth: int) -> None:
        """Wrap the classes of obj and of the modules it holds (a Layer's Neurons); one
        object of each class is looked into."""
        cls = type(obj)
        if depth <= 0 or cls in self.walked or not self._consider(cls):
            return
        self.walked.add(cls)
        for value in list(attributes(obj).values()):
            items = value[:LIST_SCAN] if isinstance(value, (list, tuple)) else (value,)
            for item in items:
                self._walk(item, depth - 1)

    def _consider(self, cls: type) -> bool:
        """Wrap cls's `__call__` if cls is a learner's module-like class; True if it is."""
        if cls in self.seen:
            return cls in self.modules
        self.seen.add(cls)
        if not self._theirs(cls) or not callable(getattr(cls, "parameters", None)):
            return False
        owner = next((k for k in cls.__mro__ if "__call__" in vars(k)), None)
        own = vars(owner).get("__call__") if owner is not None else None
        if not isinstance(own, types.FunctionType) or not self._theirs(owner):  # type: ignore[arg-type]
            return False
        self.modules.add(cls)
        if getattr(own, "__wrapped_by_autograd__", None) is self:
            return True  # a base class already wrapped
        self._patch(owner, "__call__", own, self._wrapped_call(own))  # type: ignore[arg-type]
        return True

    def _theirs(self, cls: type) -> bool:
        package = _package(getattr(cls, "__module__", "") or "")
        return package not in NOT_THEIRS and package in ("__main__", self.home)

    def _patch(self, owner: type, name: str, own: Any, wrapper: Any) -> None:
        try:
            setattr(owner, name, wrapper)
        except (TypeError, AttributeError):  # a closed class: not recorded, nothing changed
            return
        self.patched.append((owner, name, own, wrapper))

    def _wrapped_call(self, own: Any) -> Any:
        # all a call of theirs pays: one call more and one append (which of them are the
        # neurons is decided after the run, from what each module holds). `(self, x)`, the
        # lecture's and micrograd's signature, gets a wrapper of the same signature: 190 ns
        # a call against 510 ns through *args and **kwargs
        append = self.log.current.append  # the same deque throughout (CallLog.backward_seen)
        code = own.__code__
        if (code.co_argcount == 2 and code.co_varnames[1] == "x" and not own.__defaults__
                and not code.co_kwonlyargcount and not code.co_flags & _VARIADIC):
            def __call__(self: Any, x: Any) -> Any:
                out = own(self, x)
                append((self, x, out))
                return out
        else:
            def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                out = own(self, *args, **kwargs)
                append((self, args[0] if args else kwargs, out))
                return out

        functools.update_wrapper(__call__, own)
        __call__.__wrapped_by_autograd__ = self  # type: ignore[attr-defined]
        return __call__

    def _watch_backward(self, cls: type) -> None:
        if cls in self.backward_of:
            return
        self.backward_of.add(cls)
        owner = next((k for k in cls.__mro__ if "backward" in vars(k)), None)
        own = vars(owner).get("backward") if owner is not None else None
        if not isinstance(own, types.FunctionType):
            return
        log, running, seen = self.log, [], self.on_backward

        @functools.wraps(own)
        def backward(value: Any, *args: Any, **kwargs: Any) -> Any:
            if not running:  # a backward() that calls backward() on its parents: once
                if seen is not None:
                    seen(value, log.current)
                log.backward_seen()
            running.append(value)
            try:
                return own(value, *args, **kwargs)
            finally:
                running.pop()

        self._patch(owner, "backward", own, backward)  # type: ignore[arg-type]


_VARIADIC = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def attributes(obj: Any) -> dict[str, Any]:
    """obj's instance attributes, or none (slots, or a __getattr__ of theirs that raises)."""
    try:
        found = vars(obj)
    except Exception:
        return {}
    return found if isinstance(found, dict) else {}


def _package(module: str) -> str:
    return module.partition(".")[0]


@contextlib.contextmanager
def recording(recorder: ForeignRecorder, ns: dict[str, Any], log: collapse.CallLog,
              on_backward: Any = None) -> Iterator[Recording]:
    """Record the learner's module calls into log while the block runs (the cell), and
    call on_backward(root, the calls since the last one) as each backward() of theirs
    starts; every class is put back as it was afterwards, also when the cell raises."""
    with Recording(recorder, ns, log, on_backward) as calls:
        yield calls


# --- after the run: the mirror ---------------------------------------------------------------

_BINARY = {"+": ops.ADD, "*": ops.MUL, "-": ops.SUB, "/": ops.DIV, "**": ops.POW}
_UNARY = {"tanh": ops.TANH, "exp": ops.EXP, "log": ops.LOG, "relu": ops.RELU,
          "sigmoid": ops.SIGMOID, "sqrt": ops.SQRT, "sin": ops.SIN, "cos": ops.COS,
          "abs": ops.ABS, "neg": ops.NEG, "-": ops.NEG}
_POWER = re.compile(r"\s*(?:\*\*|\^)\s*\(?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*\)?\s*")
_UNKNOWN: dict[tuple[str, int], ops.Op] = {}


def unknown_op(text: str, arity: int) -> ops.Op:
    """An op of theirs this view cannot read: drawn with their text, its shares nan."""
    key = (text, arity)
    if key not in _UNKNOWN:
        _UNKNOWN[key] = ops.Op(text or "?", arity=arity, forward=lambda *_: math.nan,
                               rule=("float('nan')",) * arity, symbol=text or "?",
                               formulas=("?",) * arity)
    return _UNKNOWN[key]


def _constant(node: Value) -> bool:
    """An unnamed leaf: the Value their op made of a plain number."""
    return not node._op and not node.label


def _close(x: float, y: float) -> bool:
    return x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) or (x != x and y != y)


def mirror_op(text: str, parents: list[Value], out: float, chain: dict[int, int]
              ) -> tuple[ops.Op, Value | None, Value | None, float | None, bool]:
    """(op, a, b, k, known) for a node of theirs with op text and these parents (mirrored).
    Two parents kept in a set come in any order: the order whose result is out wins, and
    of a `+` the running sum (the longer chain) goes first, as collapse.py reads a Σ."""
    name = text.strip()
    if len(parents) == 2:
        a, b = parents
        op = _BINARY.get(name)
        if op is None:
            return unknown_op(name, 2), a, b, None, False
        if op is ops.ADD and chain.get(id(a), 0) != chain.get(id(b), 0):
            if chain.get(id(b), 0) > chain.get(id(a), 0):
                a, b = b, a
        elif op is ops.ADD or op is ops.MUL:  # their constant (`Value(-1)` of `-x`) second
            if _constant(a) and not _constant(b):
                a, b = b, a
        elif not _close(op.forward(a.data, b.data), out) and _close(
                op.forward(b.data, a.data), out):
            a, b = b, a
        return op, a, b, None, True
    if len(parents) == 1:
        (a,) = parents
        power = _POWER.fullmatch(name)
        if power:
            return ops.POW_K, a, None, float(power.group(1)), True
        if name in ("+", "*", "/") or (name == "-" and not _close(-a.data, out)):
            return _one_parent(name, a, out)
        op = _UNARY.get(name) or _UNARY.get(name.lower())
        if op is not None:
            return op, a, None, None, True
        return unknown_op(name, 1), a, None, None, False
    return unknown_op(name, 1), None, None, None, False


def _one_parent(name: str, a: Value, out: float
                ) -> tuple[ops.Op, Value | None, Value | None, float | None, bool]:
    """`+ - * /` with one parent: `a + a` kept in a set (out is 2a), or a number of theirs
    folded into the op as ours folds it (`a * 3`: out / a is the 3)."""
    op = _BINARY[name]
    if _close(op.forward(a.data, a.data), out):
        return op, a, a, None, True
    folded = {"+": (ops.ADD_K, out - a.data), "-": (ops.SUB_K, a.data - out),
              "*": (ops.MUL_K, out / a.data if a.data else math.nan),
              "/": (ops.DIV_K, a.data / out if out else math.nan)}
    op, k = folded[name]
    if math.isfinite(k) and _close(op.forward(a.data, k), out):
        return op, a, None, k, True
    return unknown_op(name, 1), a, None, None, False


class Mirror:
    """The traced graph of theirs as engine Values with their numbers (see the module doc)."""

    def __init__(self, order: list[ForeignNode]) -> None:
        self.order: list[Value] = []
        self.of: dict[int, Value] = {}  # id(their object) -> its mirror
        self.unknown: dict[int, str] = {}  # position -> their op text, where not read
        chain: dict[int, int] = {}  # id(mirror +) -> length of the unnamed + chain it ends
        by_node: dict[int, Value] = {}
        add, mul = ops.ADD, ops.MUL
        for i, node in enumerate(order):
            obj, prev, text, label = node.obj, node._prev, node._op, node.label
            data, grad = obj.data, obj.grad
            if type(data) is not float:  # an int or a numpy float of theirs: as a float
                data = node.data
            if type(grad) is not float:
                grad = node.grad
            if len(prev) == 2 and (text == "+" or text == "*"):  # nearly every node: inline
                a, b = by_node[id(prev[0])], by_node[id(prev[1])]
                la, lb = chain.get(id(a), 0), chain.get(id(b), 0)
                if text == "+" and la != lb:  # the running sum (the longer chain) first
                    swap = lb > la
                else:  # their constant (`Value(-1)` of `-x`) second
                    swap = not a._op and not a.label and bool(b._op or b.label)
                if swap:  # two parents kept in a set come in any order
                    a, b, la, lb = b, a, lb, la
                value = Value(data, label, add if text == "+" else mul, a, b)
                if text == "+" and not label:
                    chain[id(value)] = 1 + la
            elif not prev:
                value = Value(data, label)
            else:
                if len(prev) > 2:
                    raise LearnerEngineError(f"a node has {len(prev)} parents")
                parents = [by_node[id(p)] for p in prev]
                op, a, b, k, known = mirror_op(text, parents, data, chain)
                if not known:
                    self.unknown[i] = text or "?"
                value = Value(data, label, op, a, b, k)
                if op is add and not label:
                    chain[id(value)] = 1 + max(chain.get(id(a), 0), chain.get(id(b), 0))
            value.grad = grad
            self.order.append(value)
            by_node[id(node)] = value
            self.of[id(obj)] = value


@contextlib.contextmanager
def no_collections() -> Iterator[None]:
    """The garbage collector paused: the mirror allocates one object per node and makes no
    cycle, and each collection it set off would scan their whole graph (the lecture's
    `_backward` closures make every node a cycle) for nothing: half of the mirror's time."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --- after the run: calls -> groups ------------------------------------------------------------

class LearnerNeuron(Neuron):
    """One of their neurons as collapse.Grouping reads a Neuron: its parameters (mirrored)
    with the names their attributes give (`w[0]`, `b`)."""

    def __init__(self, named: list[tuple[str, Value]]) -> None:  # not Neuron's: no weights
        self.named = named

    def parameters(self) -> list[Value]:
        return [p for _, p in self.named]

    def named_parameters(self) -> list[tuple[str, Value]]:
        return list(self.named)

    def __repr__(self) -> str:
        return f"LearnerNeuron({len(self.named)} parameters)"


def named_parameters(module: Any, mirror: Mirror) -> list[tuple[str, Value]]:
    """Their module's parameters in the graph, named by the attribute holding each."""
    names: dict[int, str] = {}
    for attr, value in list(attributes(module).items()):
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                names.setdefault(id(item), f"{attr}[{i}]")
        else:
            names.setdefault(id(value), attr)
    try:
        params = list(module.parameters())
    except Exception:  # their parameters() failed: what their attributes hold
        params = []
    if not params:
        return [(names[i], mirror.of[i]) for i in names if i in mirror.of]
    return [(names.get(id(p), f"parameters()[{k}]"), mirror.of[id(p)])
            for k, p in enumerate(params) if id(p) in mirror.of]


def module_paths(ns: dict[str, Any], modules: set[type], outer: list[Any]
                 ) -> tuple[dict[int, str], dict[int, str]]:
    """id(module) -> its path through their names (`n.layers[0].neurons[3]`), and id ->
    the path of the module whose list holds it (the layer, for the column). The named
    object holding the most modules names them first (an MLP's path beats its Layer's);
    modules called but not named get paths from the outermost calls (`layers[0]...`)."""
    def is_module(obj: Any) -> bool:
        return isinstance(obj, tuple(modules))

    def walk(obj: Any, path: str) -> list[tuple[int, str, str]]:
        found: list[tuple[int, str, str]] = []
        todo = [(obj, path, "", WALK_DEPTH)]
        seen: set[int] = set()
        while todo:
            item, at, layer, depth = todo.pop()
            if id(item) in seen or depth <= 0:
                continue
            seen.add(id(item))
            found.append((id(item), at, layer))
            for attr, value in list(attributes(item).items()):
                if attr.startswith("_"):
                    continue
                step = f"{at}.{attr}" if at else attr
                if isinstance(value, (list, tuple)):
                    todo.extend((v, f"{step}[{i}]", at or attr, depth - 1)
                                for i, v in reversed(list(enumerate(value))) if is_module(v))
                elif is_module(value):
                    todo.append((value, step, "", depth - 1))
        return found

    named = [walk(v, k) for k, v in list(ns.items()) if not k.startswith("_") and is_module(v)]
    named += [walk(m, "") for m in outer]
    named.sort(key=lambda found: (not found[0][1], -len(found)))  # named first, biggest first
    paths: dict[int, str] = {}
    layers: dict[int, str] = {}
    for found in named:
        for key, path, layer in found:
            if path:
                paths.setdefault(key, path)
                layers.setdefault(key, layer)
    return paths, layers


def holds_modules(obj: Any, is_module: Any) -> bool:
    """Whether obj keeps other modules of theirs (a Layer its Neurons): those that keep
    none are the neurons."""
    for value in attributes(obj).values():
        items = value[:LIST_SCAN] if isinstance(value, (list, tuple)) else (value,)
        if any(is_module(item) for item in items):
            return True
    return False


def neuron_calls(log: collapse.CallLog, mirror: Mirror, is_value: Any
                 ) -> tuple[list[tuple[LearnerNeuron, list, Value]], dict[int, Any], list[Any]]:
    """Their neurons' calls that made a Value of the graph, as (neuron, x, out) on the
    mirror; their neurons by id(adapter); the other modules called, the last first."""
    calls_made = log.calls
    classes = tuple({type(module) for module, _, _ in calls_made})

    def is_module(obj: Any) -> bool:
        return isinstance(obj, classes)

    adapters: dict[int, LearnerNeuron] = {}
    theirs: dict[int, Any] = {}
    kind: dict[int, bool] = {}  # id(module) -> it is a neuron
    calls, outer = [], {}
    for module, x, out in calls_made:
        neuron_like = kind.get(id(module))
        if neuron_like is None:
            neuron_like = kind[id(module)] = not holds_modules(module, is_module)
        if not neuron_like:
            outer[id(module)] = module
            continue
        if not is_value(out) or id(out) not in mirror.of:
            continue
        neuron = adapters.get(id(module))
        if neuron is None:
            neuron = adapters[id(module)] = LearnerNeuron(named_parameters(module, mirror))
            theirs[id(neuron)] = module
        if isinstance(x, dict):  # called with keywords: the first one
            x = next(iter(x.values()), ())
        items = [x] if is_value(x) else list(x) if isinstance(x, (list, tuple)) else []
        # a Value of theirs outside the graph reads as its number: a position, nothing more
        shown = [mirror.of.get(id(v), v) if not is_value(v) or id(v) in mirror.of
                 else _number(v) for v in items]
        calls.append((neuron, shown, mirror.of[id(out)]))
    return calls, theirs, list(reversed(outer.values()))


def _number(value: Any) -> float:
    try:
        return float(value.data)
    except Exception:
        return math.nan


def name_float_inputs(view: collapse.CollapsedView) -> None:
    """`x[0]`, `x[1]` on the leaves a neuron made from the plain numbers it was called on
    (their `wi*xi` wraps each `xi` in a Value), as the engine's inputs are named."""
    names = view.grouping.names
    shown = view.shown_names  # a name to read, not a label: it cannot be nudged by it
    for group in view.groups:
        if group.kind != "neuron" or not group.calls:
            continue
        x, _, made = group.calls[0]
        leaves = [n for n in made if not n._op and not n.label and id(n) not in names
                  and id(n) not in shown]
        for i, number in enumerate(x):
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                leaf = next((n for n in leaves if n.data == number), None)
                if leaf is not None:
                    leaves.remove(leaf)
                    shown[id(leaf)] = f"x[{i}]"


def orient_neuron_ops(view: collapse.CollapsedView) -> None:
    """Inside a neuron's calls, `w[0]*x[0]` and `b + w[0]*x[0] + ...` as their code reads
    (and engine.nn's drawing): a `_prev` kept in a set lost the order, and both ops commute,
    so the grads and the shares stay the same."""
    for group in view.groups:
        if group.kind not in ("neuron", "layer"):
            continue
        params = {id(p) for _, p in group.params}
        for _, _, made in group.calls:
            for node in made:
                a, b = node._a, node._b
                if b is None:
                    continue
                if node._op is ops.MUL:
                    first = id(b) in params and id(a) not in params
                elif node._op is ops.ADD:  # the running sum, or the bias it starts from
                    first = (id(b) in params or b._op is ops.ADD) and not (
                        id(a) in params or a._op is ops.ADD)
                else:
                    continue
                if first:
                    node._a, node._b = b, a


def view_of(model: GraphModel, order: list[ForeignNode], log: collapse.CallLog,
            ns: dict[str, Any], recorder: ForeignRecorder, options: Any
            ) -> collapse.CollapsedView | None:
    """The pipeline's hook under --engine: the collapsed view of their traced graph, or
    None (the table, as before) when the graph cannot be mirrored."""
    with no_collections():
        try:
            mirror = Mirror(order)
        except LearnerEngineError:
            return None
        return _view(model, mirror, log, ns, recorder, options)


def _view(model: GraphModel, mirror: Mirror, log: collapse.CallLog, ns: dict[str, Any],
          recorder: ForeignRecorder, options: Any) -> collapse.CollapsedView:
    names = {id(mirror.order[int(n["id"][1:])]): n["name"] for n in model["nodes"] if n["label"]}
    calls, theirs, outer = neuron_calls(log, mirror, recorder.is_value)
    modules = {type(m) for m in theirs.values()} | {type(m) for m in outer}
    paths, layers = module_paths(ns, modules, outer)
    by_adapter = ({a: paths[id(m)] for a, m in theirs.items() if id(m) in paths},
                  {a: layers[id(m)] for a, m in theirs.items() if layers.get(id(m))})
    view = collapse.collapsed_view(mirror.order[-1], mirror.order, names,
                                   calls, {}, precision=options.precision,
                                   max_nodes=options.max_nodes, paths=by_adapter)
    view.engine = recorder.cls.__name__
    name_float_inputs(view)
    orient_neuron_ops(view)
    unknown: dict[str, list[str]] = {}  # drawn id -> their op texts it holds
    for i, text in mirror.unknown.items():
        group = view.grouping.owner.get(id(mirror.order[i]))
        unknown.setdefault(f"n{i}", []).append(text)
        if group is not None:
            unknown.setdefault(group.gid, []).append(text)
    for box, texts in unknown.items():
        shown = ", ".join(repr(t) for t in sorted(set(texts))[:3])
        view.notes[box] = [f"holds an op of yours not read here ({shown}): the shares through "
                           f"it are not shown (nan); the grads are your backward()'s"]
    return view


__all__ = ["Mirror", "Recording", "recording", "view_of"]
