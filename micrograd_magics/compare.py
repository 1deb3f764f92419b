"""Checks of the engine's gradients: a PyTorch float64 replay of the cell, and central
finite differences. Each adds a "compare" section to the graph model. torch is imported
only here, and only when a cell asks for it."""

from __future__ import annotations

import contextlib
import copy
import io
import linecache
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import engine
import engine.nn
from engine import Value, ops
from engine.value import constant
from micrograd_magics.cell import CellRecorder
from micrograd_magics.errors import cell_line
from micrograd_magics.graph import GraphModel, as_float, jsonable

TORCH_MISSING = 'torch is not installed: pip install "micrograd-magics[torch]"'


def import_torch() -> Any:
    """torch, or ImportError with the install command."""
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_MISSING) from None
    return torch


# --- the op table's torch twins: used to mirror Values that exist before the cell ------

def _torch_ops(torch: Any) -> dict[str, Callable[..., Any]]:
    return {
        ops.ADD: lambda a, b, k: a + b, ops.SUB: lambda a, b, k: a - b,
        ops.MUL: lambda a, b, k: a * b, ops.DIV: lambda a, b, k: a / b,
        ops.POW: lambda a, b, k: a ** b,
        ops.ADD_K: lambda a, b, k: a + k, ops.SUB_K: lambda a, b, k: a - k,
        ops.RSUB_K: lambda a, b, k: k - a, ops.MUL_K: lambda a, b, k: a * k,
        ops.DIV_K: lambda a, b, k: a / k, ops.RDIV_K: lambda a, b, k: k / a,
        ops.POW_K: lambda a, b, k: a ** k, ops.RPOW_K: lambda a, b, k: k ** a,
        ops.NEG: lambda a, b, k: -a, ops.EXP: lambda a, b, k: torch.exp(a),
        ops.LOG: lambda a, b, k: torch.log(a), ops.TANH: lambda a, b, k: torch.tanh(a),
        ops.RELU: lambda a, b, k: torch.relu(a), ops.SIGMOID: lambda a, b, k: torch.sigmoid(a),
        ops.SQRT: lambda a, b, k: torch.sqrt(a),
    }


@dataclass
class TorchMirror:
    """Engine objects that exist before the cell runs, copied into torch, by id."""

    torch: Any
    tensors: dict[int, Any] = field(default_factory=dict)  # id(Value) -> tensor
    keep: list[Any] = field(default_factory=list)  # the Values, so ids stay unique
    # id(tensor) -> label, for Values labelled before the cell: the engine's recorder does
    # not label them again, so the replay must not either (the i-th labelled pairs up)
    labels: dict[int, str] = field(default_factory=dict)

    def leaf(self, number: float) -> Any:
        return self.torch.tensor(float(number), dtype=self.torch.float64, requires_grad=True)

    def value(self, root: Value) -> Any:
        """root's whole graph rebuilt in torch (leaves require grad, the rest retain it)."""
        table = _torch_ops(self.torch)
        for node in engine.topological_order(root):
            if id(node) in self.tensors:
                continue
            if not node._op:
                tensor = self.leaf(node.data)
            else:
                a = self.tensors[id(node._a)]
                b = self.tensors[id(node._b)] if node._b is not None else None
                tensor = table[node._op](a, b, constant(node))
                tensor.retain_grad()
            self.tensors[id(node)] = tensor
            self.keep.append(node)
            if node.label:
                self.labels[id(tensor)] = node.label
        return self.tensors[id(root)]

    def module(self, module: engine.nn.Module) -> engine.nn.Module:
        """A copy of an engine.nn model whose parameters are torch leaves of the same data
        (micrograd's Neuron/Layer/MLP code runs unchanged on tensors)."""
        twin = copy.deepcopy(module, memo={id(p): self.value(p) for p in module.parameters()})
        return twin

    def anything(self, obj: Any, copies: dict[int, Any] | None = None) -> Any:
        """obj for the replay: Values and models as their torch twins, and lists, tuples,
        dicts and sets copied all the way down, so that what the replay changes in them
        (`history["loss"].append(...)`) changes only the copy. Anything else is shared."""
        if isinstance(obj, Value):
            return self.value(obj)
        if isinstance(obj, engine.nn.Module):
            return self.module(obj)
        kind = type(obj)
        if kind not in (list, tuple, dict, set, frozenset):
            return obj
        copies = {} if copies is None else copies
        if id(obj) in copies:  # shared or self-containing: copied once, shared the same way
            return copies[id(obj)]
        if kind is list or kind is dict:
            twin: Any = kind()
            copies[id(obj)] = twin  # before the items: a list may contain itself
            if kind is list:
                twin.extend(self.anything(x, copies) for x in obj)
            else:
                twin.update((k, self.anything(v, copies)) for k, v in obj.items())
        else:
            twin = kind(self.anything(x, copies) for x in obj)
            copies[id(obj)] = twin
        return twin


class TorchRecorder(CellRecorder):
    """The cell's recorder on torch: leaves are float64 tensors that require grad, and
    labelled intermediates retain their grad so it can be compared."""

    def __init__(self, torch: Any) -> None:
        super().__init__()
        self.torch = torch
        self.labels: dict[int, str] = {}

    def is_value(self, x: Any) -> bool:
        return isinstance(x, self.torch.Tensor) and x.requires_grad

    def new_leaf(self, number: float, label: str) -> Any:
        tensor = self.torch.tensor(float(number), dtype=self.torch.float64, requires_grad=True)
        self.labels[id(tensor)] = label
        return tensor

    def has_label(self, value: Any) -> bool:
        return id(value) in self.labels

    def label_of(self, value: Any) -> str:
        return self.labels.get(id(value), "")

    def set_label(self, value: Any, text: str) -> None:
        if value.grad_fn is not None:
            value.retain_grad()
        self.labels[id(value)] = text


def torch_functions(torch: Any) -> dict[str, Any]:
    """The bare functions of a cell, on tensors; on a plain number the engine's function
    (a constant stays a constant: torch.exp(2) would raise)."""
    from micrograd_magics.cell import bare_functions

    def on_tensors(theirs: Any, ours: Any) -> Any:
        return lambda x: theirs(x) if isinstance(x, torch.Tensor) else ours(x)

    return {name: on_tensors(getattr(torch, name), ours)
            for name, ours in bare_functions().items()}


class ReplayFailed(Exception):
    """The torch replay could not run the cell; the message names the line and the error."""


def grad_of(tensor: Any) -> float | None:
    if tensor is None or tensor.grad is None:
        return None
    return float(tensor.grad)


def close(a: float, b: float, rtol: float, atol: float) -> bool:
    """Equal within tolerance, with nan == nan and inf == inf (same sign)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


NUMERIC_BUDGET = 5_000_000
"""Node evaluations --check numeric may spend (leaves x nodes, twice per leaf on a re-run)."""


def numeric_gradients(root: Value, order: list[Value], leaves: list[Value],
                      step: float = 1e-6) -> dict[int, float]:
    """d root / d leaf by central differences, re-evaluating the recorded graph with the
    op table's forward rules (no re-run of the cell). id(leaf) -> estimate."""
    position = {id(node): i for i, node in enumerate(order)}
    plan = []
    for node in order:
        if node._op:
            b = position[id(node._b)] if node._b is not None else None
            plan.append((node._op, position[id(node._a)], b, constant(node)))
        else:
            plan.append(None)

    def evaluate(data: list[float]) -> float:
        for i, entry in enumerate(plan):
            if entry is None:
                continue
            op, a, b, k = entry
            data[i] = op.forward(data[a], data[b]) if b is not None else op.forward(data[a], k)
        return data[-1]

    base = [node.data for node in order]
    estimates = {}
    for leaf in leaves:
        i = position[id(leaf)]
        h = step * max(1.0, abs(leaf.data))
        up, down = list(base), list(base)
        up[i] += h
        down[i] -= h
        estimates[id(leaf)] = (evaluate(up) - evaluate(down)) / (2 * h)
    return estimates


NUMERIC_RTOL, NUMERIC_ATOL = 1e-5, 1e-6
"""Central differences are good to about 1e-7 relative: float64's 1e-9 would fail them all."""


def add_comparison(model: GraphModel, order: list[Value], *, torch_grads: dict[int, float | None]
                   | None, numeric: dict[int, float] | None, rtol: float, atol: float,
                   notes: list[str]) -> list[str]:
    """Add model["compare"]: one row per labelled node (numeric: per leaf). Returns the
    labels of the rows that fail."""
    columns = [c for c, d in (("torch", torch_grads), ("numeric", numeric)) if d is not None]
    node_of = {f"n{i}": getattr(node, "obj", node) for i, node in enumerate(order)}
    rows, failing = [], []
    for record in model["nodes"]:
        node = node_of.get(record["id"])
        if node is None or not record["label"]:
            continue
        ours = as_float(record["grad"])
        row: dict[str, Any] = {"id": record["id"], "label": record["label"],
                               "data": record["data"], "engine": record["grad"]}
        checks = []
        if torch_grads is not None:
            theirs = torch_grads.get(id(node))
            theirs = 0.0 if theirs is None else theirs  # torch: None = no path to the root
            row["torch"] = jsonable(theirs)
            checks.append((theirs, rtol, atol))
        if numeric is not None:
            estimate = numeric.get(id(node))
            row["numeric"] = None if estimate is None else jsonable(estimate)
            if estimate is not None:
                checks.append((estimate, max(rtol, NUMERIC_RTOL), max(atol, NUMERIC_ATOL)))
        if not checks:
            continue
        reference = checks[0][0]
        row["diff"] = jsonable(abs(ours - reference)) if math.isfinite(ours - reference) else (
            0.0 if close(ours, reference, 0, 0) else "nan")
        row["ok"] = all(close(ours, ref, rt, at) for ref, rt, at in checks)
        rows.append(row)
        if not row["ok"]:
            failing.append(record["label"])
    rows.sort(key=lambda r: r["ok"])  # failures first, graph order kept within each group
    model["compare"] = {"columns": columns, "rows": rows, "rtol": rtol, "atol": atol,
                        "mismatches": [r["id"] for r in rows if not r["ok"]], "notes": notes}
    if not model["accumulate"] and model["reached_twice"]:
        names = {r["id"]: r["name"] for r in model["nodes"]}
        twice = ", ".join(names[i] for i in model["reached_twice"])
        notes.append(f"--overwrite-grads: backward assigned (=) instead of adding (+=); "
                     f"{twice} reached twice, so only the last contribution was kept")
    return failing


@dataclass
class TorchReplay:
    """What the replay needs from before the engine run: torch, a namespace of its own
    with the engine objects the cell reads already mirrored, and the random state."""

    torch: Any
    mirror: TorchMirror
    ns: dict[str, Any]
    random_state: Any


def prepare_torch_replay(ns: dict[str, Any], program: Any) -> TorchReplay | str:
    """Snapshot for the replay, taken before the engine run changes anything; or the
    reason it cannot run (torch missing)."""
    try:
        torch = import_torch()
    except ImportError as error:
        return str(error)
    mirror = TorchMirror(torch)
    replay_ns = dict(ns)
    copies: dict[int, Any] = {}  # one copy of a list however many names hold it
    for name in program.read_names:
        if name in replay_ns:
            replay_ns[name] = mirror.anything(replay_ns[name], copies)
    return TorchReplay(torch, mirror, replay_ns, random.getstate())


def run_torch_replay(replay: TorchReplay, cell: Any, options: Any, recorder: Any,
                     earlier: dict[str, Value]) -> tuple[dict[int, Any], Any, dict[str, Any]]:
    """Run the same compiled cell on float64 tensors. Returns id(engine node) -> its torch
    twin (a tensor whose .grad torch filled in), torch's root, and the labelled tensors by
    label (for Values the cell labelled itself: `Value(2.0, label="a")`)."""
    from micrograd_magics import cell as cells

    torch = replay.torch
    twin = TorchRecorder(torch)
    twin.labels.update(replay.mirror.labels)
    by_label: dict[str, Any] = {}

    def tensor_value(data: float, label: str = "", *args: Any, **kwargs: Any) -> Any:
        tensor = twin.new_leaf(float(data), label)
        if not label:
            del twin.labels[id(tensor)]
        else:
            by_label[label] = tensor
        return tensor

    if replay.ns.get("Value") is Value:  # the lecture's explicit `Value(2.0, label='a')`
        replay.ns["Value"] = tensor_value
    learner_class = getattr(recorder, "cls", None)
    if learner_class is not None:  # the same on their class: Value(data, _children, _op, label)
        def learner_value(data: float, *args: Any, label: str = "", **kwargs: Any) -> Any:
            return tensor_value(data, label if isinstance(label, str) else "")

        for name in [n for n, obj in replay.ns.items() if obj is learner_class]:
            replay.ns[name] = learner_value
    # their Values from earlier cells: torch cannot rebuild the graph behind them
    theirs_before = sorted(n for n in cell.program.read_names if learner_class is not None
                           and isinstance(replay.ns.get(n), learner_class))
    after_engine = random.getstate()
    random.setstate(replay.random_state)  # the same draws: engine.nn weights come out equal
    saved_nn_value = engine.nn.Value
    engine.nn.Value = replay.mirror.leaf  # an MLP built in the cell gets tensor parameters
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            # the cell's prints were shown once, by the engine run
            twin_earlier = cells.execute(cell.code, cell.program, replay.ns, replay.ns, twin,
                                         torch_functions(torch), twin.new_leaf)
        if theirs_before and any(isinstance(replay.ns.get(n), learner_class)
                                 for n in cell.program.assigned):
            read = [n for n in theirs_before if n not in cell.program.assigned] or theirs_before
            raise ReplayFailed(
                f"torch cannot replay {', '.join(read)}: made by your {learner_class.__name__} "
                f"class in an earlier cell (compute them in this cell to compare with torch)")
        if options.root:
            root = replay.ns.get(options.root)
        else:
            root = twin.last_value
        if not isinstance(root, torch.Tensor) or not root.requires_grad:
            raise ReplayFailed("the replay's root is not a tensor that requires grad")
        root.backward()
    except ReplayFailed:
        raise
    except Exception as error:
        line = cell_line(sys.exc_info()[2], cell.filename)
        text = linecache.getline(cell.filename, line).strip() if line else ""
        where = f" at line {line} ({text})" if line else ""
        raise ReplayFailed(f"torch replay failed{where}: {type(error).__name__}: {error}") from None
    finally:
        engine.nn.Value = saved_nn_value
        random.setstate(after_engine)
    twins: dict[int, Any] = dict(replay.mirror.tensors)
    for name, leaf in earlier.items():
        twins[id(leaf)] = twin_earlier.get(name)
    # both runs label nodes in the same order: the i-th labelled Value is the i-th tensor
    for ours, theirs in zip(recorder.labelled, twin.labelled):
        twins[id(ours)] = theirs
    return twins, root, by_label


def compare(result: Any, order: list[Value], cell: Any, options: Any, recorder: Any,
            earlier: dict[str, Value], replay: TorchReplay | str | None,
            snapshot: tuple[dict[str, Any], Any] | None = None) -> None:
    """Add the torch and/or numeric columns to the result and its model."""
    notes: list[str] = []
    torch_grads = None
    if options.torch:
        if isinstance(replay, str):
            notes.append(replay)
        elif replay is not None:
            try:
                twins, torch_root, by_label = run_torch_replay(replay, cell, options, recorder,
                                                               earlier)
                for node in order:  # labelled by the cell itself, not by our recorder
                    key = id(getattr(node, "obj", node))  # their class: the object behind
                    if key not in twins and node.label in by_label:
                        twins[key] = by_label[node.label]
            except ReplayFailed as error:
                notes.append(f"{error}; the engine's result is shown without torch")
            else:
                torch_grads = {node_id: grad_of(t) for node_id, t in twins.items()}
                if options.torch_graph:
                    names = {id(order[int(r["id"][1:])]): r["name"] for r in result.graph["nodes"]}
                    result.graph["torch_graph"] = torch_graph_model(torch_root, twins, names)
    numeric = None
    learner_class = getattr(recorder, "cls", None)
    if options.check == "numeric" and learner_class is not None:
        runs = 2 * len(recorder.leaves)  # the cell runs again per leaf, nudged up and down
        if runs * len(order) > NUMERIC_BUDGET:
            notes.append(f"--check numeric skipped: {len(recorder.leaves)} leaves would run "
                         f"the cell {runs} more times over {len(order)} nodes (--torch "
                         f"compares in one run)")
        else:
            numeric = numeric_by_rerun(cell, options, recorder, snapshot)
    elif options.check == "numeric":
        leaves = [n for n in order if not n._op and n.label]
        if len(order) * len(leaves) > NUMERIC_BUDGET:
            notes.append(f"--check numeric skipped: {len(leaves)} leaves x {len(order)} nodes "
                         f"is too many evaluations")
        else:
            numeric = numeric_gradients(result.root, order, leaves)
    failing = add_comparison(result.graph, order, torch_grads=torch_grads, numeric=numeric,
                             rtol=options.rtol, atol=options.atol, notes=notes)
    rows = result.graph["compare"]["rows"]
    if torch_grads is not None:
        result.torch_grads = {r["label"]: as_float(r["torch"]) for r in rows}
    if numeric is not None:
        result.numeric_grads = {r["label"]: as_float(r["numeric"]) for r in rows
                                if r.get("numeric") is not None}
    result.mismatches = failing
    steps = getattr(result, "learner_steps", None)
    if steps and torch_grads is not None and failing:
        from micrograd_magics.foreign import first_failing_step

        wrong = {id(getattr(order[int(r["id"][1:])], "obj", None)): as_float(r["torch"])
                 for r in rows if not r["ok"]}
        first = first_failing_step(steps, wrong, rtol=options.rtol, atol=options.atol)
        if first:
            result.graph["compare"]["first_failure"] = first
            notes.insert(0, f"first failing step: {first}")
    result.warnings.extend(notes)


def numeric_by_rerun(cell: Any, options: Any, recorder: Any,
                     snapshot: tuple[dict[str, Any], Any] | None,
                     step: float = 1e-6) -> dict[int, float]:
    """d root / d leaf by central differences for a learner's class, whose ops we cannot
    re-evaluate ourselves: the cell runs again (in a copy of the namespace from before the
    run) with one leaf nudged up, then down. id(leaf) -> estimate."""
    from micrograd_magics import cell as cells
    from micrograd_magics.foreign import ForeignRecorder, bare_functions

    if snapshot is None:
        return {}
    state = random.getstate()
    estimates = {}

    def run(target: int, delta: float) -> float:
        class Nudged(ForeignRecorder):
            count = -1

            def leaf(self, number: float, label: str) -> Any:
                Nudged.count += 1
                return super().leaf(number + (delta if Nudged.count == target else 0.0), label)

        twin = Nudged(recorder.cls)
        ns = dict(snapshot[0])
        random.setstate(snapshot[1])
        cells.execute(cell.code, cell.program, ns, ns, twin, bare_functions(recorder.cls),
                      twin.new_leaf)
        root = ns.get(options.root) if options.root else twin.last_value
        return float(root.data)

    try:
        for index, leaf in enumerate(recorder.leaves):
            h = step * max(1.0, abs(float(leaf.data)))
            estimates[id(leaf)] = (run(index, h) - run(index, -h)) / (2 * h)
    finally:
        random.setstate(state)
    return estimates


def torch_graph_model(root: Any, twins: dict[int, Any], names: dict[int, str],
                      limit: int = 400) -> dict[str, Any]:
    """torch's own autograd graph (MulBackward0, AccumulateGrad, ...), each node labelled
    with the name of the engine node it computes, where there is one."""
    maps_to: dict[int, str] = {}
    for node_id, tensor in twins.items():
        if tensor is not None and node_id in names:
            key = tensor.grad_fn if tensor.grad_fn is not None else tensor
            maps_to[id(key)] = names[node_id]
    nodes: list[dict[str, str]] = []
    edges: list[tuple[Any, Any]] = []
    seen: dict[int, str] = {}
    stack = [root.grad_fn]
    while stack and len(nodes) < limit:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = f"t{len(seen)}"
        variable = getattr(fn, "variable", None)  # AccumulateGrad: the leaf it fills
        key = id(variable) if variable is not None else id(fn)
        nodes.append({"id": seen[id(fn)], "name": type(fn).__name__,
                      "maps_to": maps_to.get(key, "")})
        for parent, _ in fn.next_functions:
            if parent is not None:
                stack.append(parent)
                edges.append((parent, fn))
    return {"nodes": nodes, "truncated": bool(stack),
            "edges": [{"source": seen[id(a)], "target": seen[id(b)]} for a, b in edges
                      if id(a) in seen and id(b) in seen]}
