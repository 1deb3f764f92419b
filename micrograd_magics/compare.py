"""Checks of the gradients by replaying the recorded graph: PyTorch float64 and central
finite differences. Each adds a "compare" section to the graph model.

Nothing here runs the learner's cell: the graph the engine recorded (or the learner's
nodes traced through `_prev`) is rebuilt from `replay.RecordedGraph`, node by node, and
each node is paired with its own twin by position. torch is imported only here, and only
when a cell asks for it.
"""

from __future__ import annotations

import array
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from engine import ops
from engine.ops import Op
from micrograd_magics.graph import GraphModel, as_float, format_number, jsonable
from micrograd_magics.replay import LEAF, RecordedGraph, evaluate

TORCH_MISSING = 'torch is not installed: pip install "micrograd-magics[torch]"'


class TorchUnavailable(Exception):
    """torch cannot be imported; the message is one line saying why and what to do."""


def import_torch() -> Any:
    """torch, or TorchUnavailable with one line (not installed, or a broken install)."""
    try:
        import torch
    except ImportError as error:
        if getattr(error, "name", None) == "torch":
            raise TorchUnavailable(TORCH_MISSING) from None
        raise TorchUnavailable(f"torch could not be imported ({error})") from None
    except Exception as error:  # OSError from a missing shared library, and the like
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TorchUnavailable(f"torch could not be imported ({type(error).__name__}: "
                               f"{first})") from None
    return torch


def torch_twins(torch: Any) -> dict[Op, Callable[[Any, Any, Any], Any]]:
    """Each engine op as torch computes it: f(a, b, k) on tensors (k: a number, or a tensor
    of constants when a level of nodes is replayed at once)."""
    return {
        ops.ADD: lambda a, b, k: a + b, ops.SUB: lambda a, b, k: a - b,
        ops.MUL: lambda a, b, k: a * b, ops.DIV: lambda a, b, k: a / b,
        ops.POW: lambda a, b, k: torch.pow(a, b),
        ops.ADD_K: lambda a, b, k: a + k, ops.SUB_K: lambda a, b, k: a - k,
        ops.RSUB_K: lambda a, b, k: k - a, ops.MUL_K: lambda a, b, k: a * k,
        ops.DIV_K: lambda a, b, k: a / k, ops.RDIV_K: lambda a, b, k: k / a,
        ops.POW_K: lambda a, b, k: torch.pow(a, k), ops.RPOW_K: lambda a, b, k: torch.pow(k, a),
        ops.NEG: lambda a, b, k: -a, ops.EXP: lambda a, b, k: torch.exp(a),
        ops.LOG: lambda a, b, k: torch.log(a), ops.TANH: lambda a, b, k: torch.tanh(a),
        ops.RELU: lambda a, b, k: torch.relu(a), ops.SIGMOID: lambda a, b, k: torch.sigmoid(a),
        ops.SQRT: lambda a, b, k: torch.sqrt(a), ops.SIN: lambda a, b, k: torch.sin(a),
        ops.COS: lambda a, b, k: torch.cos(a), ops.ABS: lambda a, b, k: torch.abs(a),
    }


# --- torch's replay of the recorded graph ------------------------------------------------

@dataclass
class TorchRun:
    """torch's forward value and d root / d node for every position of the plan."""

    values: list[float]
    grads: list[float]
    tensors: list[Any] | None = None  # per position, when replayed node by node
    root: Any = None
    values_t: Any = None  # the same numbers as float64 vectors, for comparisons in torch
    grads_t: Any = None


def as_vector(torch: Any, numbers: list[float]) -> Any:
    """A float64 vector of Python floats; through an array's buffer, several times faster
    than torch.tensor on a list of 10^5 floats."""
    if not numbers:
        return torch.zeros(0, dtype=torch.float64)
    return torch.frombuffer(array.array("d", numbers), dtype=torch.float64)


def as_index(torch: Any, positions: list[int]) -> Any:
    if not positions:
        return torch.zeros(0, dtype=torch.long)
    return torch.frombuffer(array.array("q", positions), dtype=torch.long)


@contextlib.contextmanager
def one_thread(torch: Any) -> Iterator[None]:
    """torch on one thread while the block runs, as it was set afterwards. The replay's
    vectors (at most one level of a graph) are too short to gain from more: on a 2-core
    box, two threads made the 10^5-node replay 2.6x slower when the other core was busy
    (354 ms against 137 ms)."""
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def replay_in_torch(torch: Any, graph: RecordedGraph, *, node_by_node: bool = False) -> TorchRun:
    """Rebuild the plan in float64 torch from its leaves' values and run torch's backward.

    Wide graphs (a network over many inputs) are replayed a level at a time: every node
    of one op whose parents are ready becomes one element of a vector op, so torch's
    per-op overhead is paid per level, not per node. Deep, narrow graphs (a long chain)
    and `node_by_node` (torch's own grad_fn graph is wanted) go one node at a time.
    """
    levels = _levels(graph)
    depth = max(levels, default=0)
    if node_by_node or len(graph) < 256 or depth * 16 > len(graph):
        return _replay_node_by_node(torch, graph)
    return _replay_by_level(torch, graph, levels, depth)


def _levels(graph: RecordedGraph) -> list[int]:
    """Each node's level: 0 for leaves (and unknown ops), else one more than its parents'."""
    levels = [0] * len(graph)
    for i, (op, a, b) in enumerate(zip(graph.op, graph.a, graph.b)):
        if op is not None:
            above = levels[a]
            if b != LEAF:
                other = levels[b]
                if other > above:  # not max(): a call per node is a third of the time
                    above = other
            levels[i] = above + 1
    return levels


def _replay_node_by_node(torch: Any, graph: RecordedGraph) -> TorchRun:
    twins = torch_twins(torch)
    f64 = torch.float64
    tensors: list[Any] = []
    append = tensors.append
    for i, op in enumerate(graph.op):
        if op is None:  # a leaf, or an unknown op standing in as a constant of its value
            append(torch.tensor(graph.data[i], dtype=f64, requires_grad=True))
            continue
        b = graph.b[i]
        append(twins[op](tensors[graph.a[i]], tensors[b] if b != LEAF else None, graph.k[i]))
    root = tensors[-1]
    # every node's gradient in one call (retain_grad on each would hook every tensor), and
    # the graph kept for --torch-graph
    grads = torch.autograd.grad(root, tensors, allow_unused=True, retain_graph=True)
    # .item() per tensor: torch.stack of 10^5 0-d tensors took 4x as long
    values = [t.item() for t in tensors]
    grad_list = [0.0 if g is None else g.item() for g in grads]
    return TorchRun(values, grad_list, tensors, root, as_vector(torch, values),
                    as_vector(torch, grad_list))


def _replay_by_level(torch: Any, graph: RecordedGraph, levels: list[int], depth: int) -> TorchRun:
    """Level by level: the nodes of one level, sorted by op, are one tensor; each op group
    gathers its parents from the level tensors they live in. The bookkeeping is done with
    index tensors too, so nothing here loops over the nodes in Python."""
    twins = torch_twins(torch)
    long = torch.long
    n = len(graph)
    table = [op for op in dict.fromkeys(graph.op) if op is not None]
    code = {op: c + 1 for c, op in enumerate(table)}  # 0: a leaf
    width = len(table) + 1
    level_t = as_index(torch, levels)
    code[None] = 0
    key = level_t * width + as_index(torch, list(map(code.__getitem__, graph.op)))
    order = torch.argsort(key, stable=True)  # sorted index -> position
    rank = torch.empty(n, dtype=long)
    rank[order] = torch.arange(n)  # position -> sorted index
    group_keys, group_sizes = torch.unique_consecutive(key[order], return_counts=True)
    level_sizes = torch.bincount(level_t, minlength=depth + 1)
    level_start = torch.cumsum(level_sizes, 0) - level_sizes
    offset = rank - level_start[level_t]  # position -> place in its level's tensor
    a_t, b_t = as_index(torch, graph.a), as_index(torch, graph.b)
    k_t = as_vector(torch, [math.nan if k is None else k for k in graph.k])
    data_t = as_vector(torch, graph.data)

    tensors: list[Any] = []

    def gather(parents: Any) -> Any:
        """The parents' values (positions), from the level tensors they live in."""
        parent_levels = level_t[parents]
        by_level = torch.argsort(parent_levels, stable=True)
        sources, counts = torch.unique_consecutive(parent_levels[by_level], return_counts=True)
        offsets = offset[parents[by_level]]
        if len(sources) == 1:
            return tensors[int(sources[0])][offsets]
        pieces, start = [], 0
        for source, count in zip(sources.tolist(), counts.tolist()):
            pieces.append(tensors[source][offsets[start:start + count]])
            start += count
        return torch.cat(pieces)[torch.argsort(by_level)]

    # Most groups read each parent from one level tensor (a neuron's sum, the loss's sum:
    # one node a level): found for every group at once, those take one index op, not
    # the eight of `gather`.
    group_of = torch.repeat_interleave(torch.arange(len(group_sizes)), group_sizes)

    def spans(parents_t: Any) -> tuple[Any, Any, list[int], list[bool]]:
        """For one parent column: the positions, each node's parent's place in its level
        tensor (sorted order), and per group its parents' lowest level and whether they
        all sit in that one level."""
        parents = parents_t[order].clamp(min=0)  # in sorted order; a missing one reads 0
        parent_levels = level_t[parents]
        lowest = torch.full((len(group_sizes),), depth + 1, dtype=long).scatter_reduce(
            0, group_of, parent_levels, "amin")
        highest = torch.zeros(len(group_sizes), dtype=long).scatter_reduce(
            0, group_of, parent_levels, "amax")
        return parents_t, offset[parents], lowest.tolist(), (lowest == highest).tolist()

    a_spans, b_spans = spans(a_t), spans(b_t)

    def parents_of(column: tuple[Any, Any, list[int], list[bool]], g: int, start: int,
                   size: int, positions: Any) -> Any:
        parents_t, offsets, lowest, one_level = column
        if one_level[g]:
            return tensors[lowest[g]][offsets[start:start + size]]
        return gather(parents_t[positions])

    groups = list(zip(group_keys.tolist(), group_sizes.tolist()))
    start = 0
    outs: list[Any] = []
    current = 0
    for g, (group_key, size) in enumerate(groups + [(None, 0)]):
        level = group_key // width if group_key is not None else None
        if level != current:  # the level is complete: one tensor
            tensor = torch.cat(outs) if len(outs) > 1 else outs[0]
            if current == 0:
                tensor = tensor.detach().requires_grad_(True)
            else:
                tensor.retain_grad()
            tensors.append(tensor)
            outs, current = [], level
            if group_key is None:
                break
        positions = order[start:start + size]
        if group_key % width == 0:  # leaves (and unknown ops, as constants)
            outs.append(data_t[positions])
            start += size
            continue
        op = table[group_key % width - 1]
        a = parents_of(a_spans, g, start, size, positions)
        b = parents_of(b_spans, g, start, size, positions) if op.arity == 2 else None
        k = k_t[positions] if "{k}" in op.symbol else None
        start += size
        outs.append(twins[op](a, b, k))
    root = tensors[levels[n - 1]][int(offset[n - 1])]
    root.backward()
    values = torch.cat([t.detach() for t in tensors])[rank]
    grads = torch.cat([t.grad if t.grad is not None else torch.zeros_like(t)
                       for t in tensors])[rank]
    return TorchRun(values.tolist(), grads.tolist(), None, root, values, grads)


# --- finite differences on the recorded graph --------------------------------------------

NUMERIC_BUDGET = 5_000_000
"""Node evaluations --check numeric may spend (two per node per leaf)."""

NUMERIC_RTOL, NUMERIC_ATOL = 1e-5, 1e-6
"""Central differences are good to about 1e-7 relative: float64's 1e-9 would fail them all."""


def numeric_gradients(graph: RecordedGraph, leaves: list[int],
                      step: float = 1e-6) -> dict[int, float]:
    """d root / d leaf by central differences, re-evaluating the recorded graph with each
    leaf nudged up and down (the op table's forward; never the cell). position -> estimate."""
    estimates = {}
    for i in leaves:
        h = step * max(1.0, abs(graph.data[i]))
        up, down = list(graph.data), list(graph.data)
        up[i] += h
        down[i] -= h
        estimates[i] = (evaluate(graph, up)[-1] - evaluate(graph, down)[-1]) / (2 * h)
    return estimates


# --- the comparison ------------------------------------------------------------------------

def close(a: float, b: float, rtol: float, atol: float) -> bool:
    """Equal within tolerance, with nan == nan and inf == inf (same sign)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


UNNAMED_ROWS = 20
"""Failing unnamed nodes listed as rows; the rest are counted in a note."""


@dataclass
class Checks:
    """What the checks found per position; None where a check did not run."""

    torch: TorchRun | None = None
    numeric: dict[int, float] | None = None
    not_checkable: frozenset[int] = frozenset()


def compare(result: Any, graph: RecordedGraph, options: Any, *, learner: bool = False,
            steps: list[Any] | None = None) -> None:
    """Add the torch and/or numeric columns to the result and its model."""
    notes: list[str] = []
    model = result.graph
    if not options.backward:
        notes.append("--no-backward: no gradients were computed, so there is nothing to "
                     "compare")
        model["compare"] = {"columns": [], "rows": [], "rtol": options.rtol,
                            "atol": options.atol, "mismatches": [], "notes": notes}
        result.warnings.extend(notes)
        return
    checks = Checks(not_checkable=frozenset(graph.behind_unknown()))
    if graph.unknown:  # one line: the first unknown op is named
        name = graph.unknown[min(graph.unknown)]
        behind = len(checks.not_checkable)
        notes.append(f"your op {name!r} has no torch twin: the gradients of the "
                     f"{behind} node{'s' * (behind != 1)} behind it are not checked")
    torch = None
    if options.torch:
        try:
            torch = import_torch()
            with one_thread(torch):
                checks.torch = replay_in_torch(torch, graph, node_by_node=options.torch_graph)
        except TorchUnavailable as error:
            notes.append(str(error))
    if options.check == "numeric":
        leaves = [i for i in graph.leaves() if graph.nodes[i].label]
        if 2 * len(graph) * len(leaves) > NUMERIC_BUDGET:
            notes.append(f"--check numeric skipped: {len(leaves)} leaves x {len(graph)} nodes "
                         f"is too many evaluations (--torch compares in one pass)")
        else:
            checks.numeric = numeric_gradients(graph, leaves)
    failing = add_comparison(model, graph, checks, rtol=options.rtol, atol=options.atol,
                             notes=notes)
    rows = model["compare"]["rows"]
    if checks.torch is not None:
        result.torch_grads = {r["label"]: as_float(r["torch"]) for r in rows if r["label"]}
        if options.torch_graph and checks.torch.tensors is not None:
            names = {int(r["id"][1:]): r["name"] for r in model["nodes"]}
            model["torch_graph"] = torch_graph_model(checks.torch, names)
    if checks.numeric is not None:
        result.numeric_grads = {r["label"]: as_float(r["numeric"]) for r in rows
                                if r.get("numeric") is not None and r["label"]}
    result.mismatches = failing
    if failing and torch is not None:
        names = {int(r["id"][1:]): r["name"] for r in model["nodes"]}
        first = first_wrong_rule(torch, graph, names, steps=steps, learner=learner,
                                 rtol=options.rtol, atol=options.atol)
        if first:
            model["compare"]["first_failure"] = first
            notes.insert(0, f"first wrong rule: {first}")
    result.warnings.extend(notes)


def add_comparison(model: GraphModel, graph: RecordedGraph, checks: Checks, *, rtol: float,
                   atol: float, notes: list[str]) -> list[str]:
    """Compare every node; add model["compare"] with one row per labelled node (numeric: per
    labelled leaf) plus the failing unnamed ones. Returns the names of the failing rows."""
    torch_run, numeric = checks.torch, checks.numeric
    columns = [c for c, d in (("torch", torch_run), ("numeric", numeric)) if d is not None]
    listed = {int(r["id"][1:]): r for r in model["nodes"]}
    grads = [float(node.grad) for node in graph.nodes]
    # every node is compared; rows are made for the named ones and for those a quick scan
    # cannot clear (a nan or inf fails the quick test and gets the exact one below)
    candidates = {i for i, r in listed.items() if r["label"]}
    if torch_run is not None:
        candidates.update(_suspects(torch_run, grads, graph.data, rtol, atol))
    if numeric is not None:
        candidates.update(numeric)
    rows: list[dict[str, Any]] = []
    unnamed_failing = 0
    for i in sorted(candidates):
        record = listed.get(i)
        label = record["label"] if record else ""
        checkable = i not in checks.not_checkable
        row: dict[str, Any] = {"id": f"n{i}", "label": label,
                               "name": record["name"] if record else f"#{i}",
                               "data": jsonable(graph.data[i]), "engine": jsonable(grads[i])}
        references = []
        if torch_run is not None:
            row["torch"] = jsonable(torch_run.grads[i])
            row["torch_data"] = jsonable(torch_run.values[i])
            row["forward_ok"] = close(graph.data[i], torch_run.values[i], rtol, atol)
            if checkable:
                references.append((torch_run.grads[i], rtol, atol))
        if numeric is not None:
            row["numeric"] = jsonable(numeric[i]) if i in numeric else None
        if numeric is not None and i in numeric:
            references.append((numeric[i], max(rtol, NUMERIC_RTOL), max(atol, NUMERIC_ATOL)))
        if not references and row.get("forward_ok", True):
            if label and torch_run is not None:  # named but behind an unknown op
                row["diff"], row["ok"], row["checked"] = "nan", True, False
                rows.append(row)
            continue
        ok = row.get("forward_ok", True) and all(close(grads[i], ref, rt, at)
                                                 for ref, rt, at in references)
        if references:
            difference = grads[i] - references[0][0]
            row["diff"] = jsonable(abs(difference)) if math.isfinite(difference) else (
                0.0 if close(grads[i], references[0][0], 0, 0) else "nan")
        row["ok"] = ok
        if not label:
            if ok:
                continue
            unnamed_failing += 1
            if unnamed_failing > UNNAMED_ROWS:
                continue
        if label and numeric is not None and torch_run is None and i not in numeric:
            continue  # --check numeric alone: the named leaves
        rows.append(row)
    if unnamed_failing > UNNAMED_ROWS:
        notes.append(f"{unnamed_failing} unnamed nodes differ ({UNNAMED_ROWS} are listed)")
    rows.sort(key=lambda r: r["ok"])  # failures first, graph order kept within each group
    failing = [r["label"] or r["name"] for r in rows if not r["ok"]]
    model["compare"] = {"columns": columns, "rows": rows, "rtol": rtol, "atol": atol,
                        "mismatches": [r["id"] for r in rows if not r["ok"]], "notes": notes}
    if not model["accumulate"] and model["reached_twice"]:
        names = {r["id"]: r["name"] for r in model["nodes"]}
        twice = ", ".join(names[i] for i in model["reached_twice"])
        notes.append(f"--overwrite-grads: backward assigned (=) instead of adding (+=); "
                     f"{twice} reached twice, so only the last contribution was kept")
    return failing


def _suspects(run: TorchRun, grads: list[float], data: list[float], rtol: float,
              atol: float) -> list[int]:
    """Positions where our grad or forward value and torch's are not plainly within
    tolerance (nan and inf included: every comparison with nan is False). One vector
    comparison in torch: a scan in Python cost ~30 ms per 10^5 nodes."""
    torch = import_torch()
    suspect = None
    for ours, theirs in ((grads, run.grads_t), (data, run.values_t)):
        ours_t = as_vector(torch, ours)
        bad = ~((ours_t - theirs).abs() <= atol + rtol * theirs.abs())
        suspect = bad if suspect is None else suspect | bad
    return torch.nonzero(suspect).flatten().tolist()


# --- the first wrong rule ------------------------------------------------------------------

RULE_CHECK_SECONDS = 2.0
"""How long the search for the first wrong rule may take on a big graph."""


def first_wrong_rule(torch: Any, graph: RecordedGraph, names: dict[int, str], *,
                     steps: list[Any] | None, learner: bool, rtol: float,
                     atol: float) -> str | None:
    """The first node, in backward order, whose rule disagrees with torch's on the same op
    at the same values: its forward value, a local derivative, or `=` where `+=` belongs.
    Each node is checked on its own (its parents' recorded values), so one wrong rule is
    not blamed on the nodes around it."""
    twins = torch_twins(torch)
    by_node = {id(step.node): step for step in steps or ()}
    position_of = {id(node): i for i, node in enumerate(graph.nodes)}
    rtol_local, atol_local = max(rtol, 1e-9), max(atol, 1e-12)
    started = time.perf_counter()
    name = lambda i: names.get(i) or getattr(graph.nodes[i], "label", "") or f"#{i}"  # noqa: E731
    whose = "your" if learner else "the engine's"
    for i in reversed(range(len(graph))):
        op = graph.op[i]
        if op is None:
            continue
        if time.perf_counter() - started > RULE_CHECK_SECONDS:
            return None
        distinct = list(dict.fromkeys(graph.parents(i)))
        tensors = {p: torch.tensor(graph.data[p], dtype=torch.float64, requires_grad=True)
                   for p in distinct}
        b = graph.b[i]
        out = twins[op](tensors[graph.a[i]], tensors[b] if b != LEAF else None, graph.k[i])
        expected = out.item()
        what = _op_text(graph, i, name)
        if not close(graph.data[i], expected, rtol_local, atol_local):
            return (f"{whose} forward of `{what}` at node `{name(i)}` gives "
                    f"{graph.data[i]!r}; torch says {expected!r}" + _ours(learner))
        torch_locals = torch.autograd.grad(out, [tensors[p] for p in distinct],
                                           allow_unused=True)
        torch_local = {p: 0.0 if g is None else float(g) for p, g in zip(distinct, torch_locals)}
        if learner:
            step = by_node.get(id(graph.nodes[i]))
            if step is None:
                continue
            found = _learner_rule_error(step, torch_local, position_of, graph, i, name, what,
                                        rtol_local, atol_local)
            if found:
                return found
            continue
        for p, theirs in _engine_locals(graph, i).items():
            if not close(theirs, torch_local[p], rtol_local, atol_local):
                return (f"the engine's rule of `{what}` at node `{name(i)}`: d out/d "
                        f"{name(p)} = {theirs!r}; torch says {torch_local[p]!r}"
                        + _ours(learner))
    return None


def _ours(learner: bool) -> str:
    return "" if learner else " (a bug in micrograd-magics: please report it)"


def _engine_locals(graph: RecordedGraph, i: int) -> dict[int, float]:
    """Our op's local derivative per distinct parent (summed where a parent is both)."""
    op, a, b = graph.op[i], graph.a[i], graph.b[i]
    assert op is not None
    if b == LEAF:
        return {a: float(op.local(graph.data[a], graph.k[i], graph.data[i]))}  # type: ignore[arg-type]
    da, db = op.local(graph.data[a], graph.data[b], graph.data[i])  # type: ignore[misc]
    if a == b:
        return {a: da + db}
    return {a: da, b: db}


def _learner_rule_error(step: Any, torch_local: dict[int, float], position_of: dict[int, int],
                        graph: RecordedGraph, i: int, name: Callable[[int], str], what: str,
                        rtol: float, atol: float) -> str | None:
    g = step.upstream
    if not g or not math.isfinite(g):
        return None  # nothing flowed through this node: its rule cannot be seen
    twice = graph.a[i] == graph.b[i] and graph.b[i] != LEAF
    for update in step.updates:
        p = position_of.get(id(update.parent))
        if p is None or p not in torch_local:
            continue
        want = torch_local[p]
        if close(update.local, want, rtol, atol):
            continue
        parent = name(p)
        if twice and close(update.contribution, g * want / 2, rtol, atol):
            return (f"`=` where `+=` belongs in the rule of `{what}` at node `{name(i)}`: "
                    f"{parent} is both operands, so it gets two contributions of "
                    f"{_fmt(g * want / 2)}; your rule kept one ({parent}.grad = "
                    f"{_fmt(update.after)}, torch says {_fmt(update.before + g * want)})")
        if update.before != 0.0 and close(update.after, g * want, rtol, atol):
            return (f"`=` where `+=` belongs in the rule of `{what}` at node `{name(i)}`: it "
                    f"set {parent}.grad to {_fmt(update.after)}, dropping the "
                    f"{_fmt(update.before)} it already had (torch: "
                    f"{_fmt(update.before + g * want)})")
        return (f"the rule of `{graph.op[i]}` at node `{name(i)}`: d out/d {parent} = "
                f"{_fmt(update.local)}; torch says {_fmt(want)}"
                f"{_formula(graph, i, p, name)}")
    return None


def _fmt(x: float) -> str:
    return format_number(x, 4)


def _op_text(graph: RecordedGraph, i: int, name: Callable[[int], str]) -> str:
    """`a*b`, `tanh(n)`, `x**2`: the node's op over its parents' names."""
    op = graph.op[i]
    assert op is not None
    a, b = graph.a[i], graph.b[i]
    if b != LEAF:
        return f"{name(a)}{op.symbol}{name(b)}"
    symbol = op.symbol.format(k=_constant_text(graph.k[i])) if "{k}" in op.symbol else op.symbol
    if op.symbol.startswith("{k}"):
        return f"{symbol}{name(a)}"
    if symbol.isalpha():
        return f"{symbol}({name(a)})"
    return f"-{name(a)}" if op is ops.NEG else f"{name(a)}{symbol}"


def _constant_text(k: float | None) -> str:
    if k is None:
        return "?"
    return str(int(k)) if math.isfinite(k) and k == int(k) else repr(k)


def _formula(graph: RecordedGraph, i: int, p: int, name: Callable[[int], str]) -> str:
    """` (1/x)`: the derivative as the op table writes it, for the parent at position p."""
    op = graph.op[i]
    if op is None:
        return ""
    which = 0 if graph.a[i] == p else 1
    values = {"a": name(graph.a[i]), "b": name(graph.b[i]) if graph.b[i] != LEAF else "",
              "k": _constant_text(graph.k[i]), "out": name(i)}
    try:
        return f" ({op.formulas[which].format(**values)})"
    except (IndexError, KeyError):
        return ""


def torch_graph_model(run: TorchRun, names: dict[int, str], limit: int = 400) -> dict[str, Any]:
    """torch's own autograd graph (MulBackward0, AccumulateGrad, ...), each node labelled
    with the name of the engine node it computes, where there is one."""
    maps_to: dict[int, str] = {}
    for i, tensor in enumerate(run.tensors or ()):
        if i in names:
            key = tensor.grad_fn if tensor.grad_fn is not None else tensor
            maps_to[id(key)] = names[i]
    nodes: list[dict[str, str]] = []
    edges: list[tuple[Any, Any]] = []
    seen: dict[int, str] = {}
    stack = [run.root.grad_fn]
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
