"""Engine graph -> the plain, JSON-serialisable graph model that every view reads.

The model is the one contract between the computing half (cell, engine, compare) and the
showing half (render, widget, result tables). It holds no engine objects: only strings,
numbers (non-finite ones as "nan", "inf", "-inf") and lists/dicts of them.

    {
      "version": 1, "root": "n6", "node_count": 7, "truncated": false,
      "precision": 4, "accumulate": true,
      "nodes": [{"id": "n0", "label": "a", "name": "a", "op": "", "symbol": "",
                 "data": 2.0, "grad": 6.0, "parents": [], "leaf": true,
                 "explain": ["dL/da = dL/de * de/da = -2.0000 * -3.0000 = 6.0000"]}, ...],
      "edges": [{"source": "n0", "target": "n4"}, ...],        # parent -> child
      "steps": [{"node": "n6", "seed": true, "updates": [...]},  # backward, in order
                {"node": "n6", "upstream": 1.0, "rule": "...",
                 "updates": [{"target": "n5", "local": -2.0, "contribution": -2.0,
                              "before": 0.0, "after": -2.0, "formula": "..."}]}, ...],
      "reached_twice": ["n0"],        # nodes whose grad got more than one contribution
    }
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from engine import BackwardStep, Value, topological_order
from engine.ops import Op
from engine.value import constant

GraphModel = dict[str, Any]


def jsonable(x: float) -> float | str:
    """x as JSON allows it: finite floats stay, nan/inf become "nan", "inf", "-inf"."""
    if math.isfinite(x):
        return float(x)
    return "nan" if x != x else ("inf" if x > 0 else "-inf")


def as_float(x: float | str) -> float:
    """Undo `jsonable`."""
    return float(x)


def format_number(x: float | str, precision: int = 4) -> str:
    """A number as the graph shows it: fixed point (`6.0000`), scientific when tiny or huge."""
    x = as_float(x)
    if not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    if x != 0.0 and not 1e-3 <= abs(x) < 1e7:
        return f"{x:.{precision}e}"
    return f"{x:.{precision}f}"


def readable(text: str) -> str:
    """text with the characters XML cannot carry (and terminals act on) written out as
    Python escapes: a label `'a\\x07b'` shows as `a\\x07b`. Newlines and tabs are kept;
    an SVG with a raw control character is ill-formed and a browser draws nothing."""
    if text.isprintable():
        return text
    return "".join(_escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    if c in "\n\t" or c.isprintable():
        return c
    if unicodedata.category(c) in ("Cc", "Cs") or c in "\ufffe\uffff":
        return repr(c)[1:-1] if c != "'" else c
    return c


def format_constant(k: float) -> str:
    """A folded constant as it reads in an op node: 2.0 -> "2", 0.5 -> "0.5", inf -> "inf"."""
    if math.isfinite(k) and k == int(k) and abs(k) < 1e15:
        return str(int(k))
    return repr(k)


def op_symbol(op: Op | str, k: float | None) -> str:
    """The text of an op node: "*", "+", "tanh", or with its folded constant "*2"."""
    if isinstance(op, Op):
        if "{k}" in op.symbol:
            return op.symbol.format(k=format_constant(k if k is not None else 0))
        return op.symbol
    return str(op)


# a name that reads as one thing in a formula: `a`, `w[0]`, `y#1`, `#3`,
# `model.layers[0].neurons[3].w[1]`; anything else (`x1*w1`) is parenthesised there
PLAIN_NAME = re.compile(r"(?:[A-Za-z_]\w*|#\d+)(?:\.[A-Za-z_]\w*|\[\d+\])*(?:#\d+)?")
MAX_DERIVED_NAME = 60  # longer made-up names fall back to `#i`
INFIX = {"+": " + ", "-": " - ", "*": "*", "/": "/", "**": "**"}


def is_plain_name(name: str) -> bool:
    return PLAIN_NAME.fullmatch(name) is not None


def in_formula(name: str) -> str:
    """The name as it reads inside a formula: `x1*w1` -> `(x1*w1)`, `a` and `w[0]` as they
    are, so `do/d(x1*w1)` cannot be misread as `do/dx1 * w1`."""
    return name if is_plain_name(name) else f"({name})"


def fill_formula(template: str, values: dict[str, str]) -> str:
    """An op's formula text with the names put in: parenthesised where needed, bare
    where the template already has the brackets (`exp({a})`)."""
    def put(match: re.Match[str]) -> str:
        name = values[match.group(1)]
        start, end = match.span()
        bracketed = template[start - 1:start] == "(" and template[end:end + 1] == ")"
        return name if bracketed or match.group(1) == "k" else in_formula(name)

    return re.sub(r"\{(\w+)\}", put, template)


def derived_name(symbol: str, parents: list[str]) -> str | None:
    """A readable name for an unlabelled node from its op and its parents' names
    (`w[0]*x[0]`, `b + w[0]*x[0]`, `tanh(n)`, `x**2`), or None when there is none."""
    if not symbol or not parents:
        return None
    if len(parents) == 2 and symbol in INFIX:
        a, b = parents
        if symbol == "*":  # a sum inside a product needs its brackets: (a + b)*c
            a, b = (f"({x})" if " " in x else x for x in (a, b))
        elif symbol in ("/", "**"):
            a, b = in_formula(a), in_formula(b)
        elif symbol == "-" and " " in b:
            b = f"({b})"
        return f"{a}{INFIX[symbol]}{b}"
    if len(parents) != 1:
        return None
    (a,) = parents
    if symbol[0].isalpha():  # tanh, exp, ReLU, ...
        return f"{symbol}({a})"
    if symbol == "-":
        return f"-{in_formula(a)}"
    if symbol[0] in "+-*/" and symbol.lstrip("+-*/"):  # a folded constant after: x*2
        return f"{in_formula(a)}{symbol}"
    if symbol[-1] in "+-*/" and symbol.rstrip("+-*/"):  # before: 2-x, 2**x
        return f"{symbol}{in_formula(a)}"
    return None


def labelled_positions(order: list[Any]) -> list[int]:
    """Where the labelled nodes are in order: one pass that the model, the version names
    and the non-finite check share."""
    return [i for i, node in enumerate(order) if node.label]


def build_model(
    root: Value,
    *,
    steps: list[BackwardStep] | None = None,
    order: list[Value] | None = None,
    names: dict[int, str] | None = None,
    precision: int = 4,
    accumulate: bool = True,
    max_nodes: int | None = None,
    labelled: list[int] | None = None,
) -> GraphModel:
    """The model of root's graph.

    `steps` are the recorded backward steps (`engine.backward_steps`), or None when backward
    did not run step by step. `names` maps id(node) -> the label to show where it differs
    from node.label (the cell gives reassigned names a version: `y#1`). Above `max_nodes`
    only the labelled nodes are kept (no edges, no steps) and `truncated` is set; `labelled`
    gives their positions in `order` when the caller has them already.
    """
    order = topological_order(root) if order is None else order
    names = names or {}
    truncated = max_nodes is not None and len(order) > max_nodes
    ids: dict[int, str] = {}
    nodes: list[dict[str, Any]] = []
    by_id: dict[int, dict[str, Any]] = {}
    listed: Iterable[tuple[int, Value]] = enumerate(order)
    if truncated:  # only the labelled nodes are listed
        if labelled is None:
            labelled = labelled_positions(order)
        listed = ((i, order[i]) for i in labelled)
    for i, node in listed:
        label = node.label
        if label and names:
            label = names.get(id(node), label)
        ids[id(node)] = nid = f"n{i}"
        symbol = op_symbol(node._op, constant(node)) if node._op else ""
        name = label
        if not name and not truncated:  # an intermediate built in engine.nn, a helper, ...
            name = derived_name(symbol, [by_id[id(p)]["name"] for p in node._prev])
            if name is None or len(name) > MAX_DERIVED_NAME:
                name = f"#{i}"
        record = {
            "id": nid,
            "label": label,
            "name": readable(name) if name else f"#{i}",  # control characters written out
            "op": str(node._op),
            "symbol": symbol,
            "data": jsonable(node.data),
            "grad": jsonable(node.grad),
            "parents": [],
            "leaf": not node._op,
            "explain": [],
        }
        nodes.append(record)
        by_id[id(node)] = record
    model: GraphModel = {
        "version": 1,
        "root": ids.get(id(root), ""),
        "node_count": len(order),
        "truncated": truncated,
        "precision": precision,
        "accumulate": accumulate,
        "nodes": nodes,
        "edges": [],
        "steps": [],
        "reached_twice": [],
    }
    if truncated:
        return model
    for node in order:
        record = by_id[id(node)]
        record["parents"] = [ids[id(p)] for p in node._prev]
        model["edges"].extend({"source": pid, "target": record["id"]} for pid in record["parents"])
    if steps is not None:
        _add_steps(model, root, steps, by_id, precision, accumulate)
    return model


def _add_steps(model: GraphModel, root: Value, steps: Iterable[BackwardStep],
               by_id: dict[int, dict[str, Any]], precision: int, accumulate: bool) -> None:
    fmt = lambda x: format_number(x, precision)  # noqa: E731
    root_rec = by_id[id(root)]
    top = in_formula(root_rec["name"])
    seed = f"d{top}/d{top} = 1"
    root_rec["explain"].append(seed)
    model["steps"].append({"node": root_rec["id"], "seed": True, "upstream": 1.0, "rule": seed,
                           "updates": [{"target": root_rec["id"], "local": 1.0,
                                        "contribution": 1.0, "before": 0.0, "after": 1.0,
                                        "formula": seed}]})
    contributions: dict[str, int] = {}
    for step in steps:
        node = by_id[id(step.node)]
        parents = [by_id[id(p)] for p in step.node._prev]
        values = {"out": node["name"], "k": format_constant(constant(step.node) or 0.0)}
        for key, parent in zip("ab", parents):
            values[key] = parent["name"]
        here = in_formula(node["name"])
        updates = []
        rules = []
        for i, update in enumerate(step.updates):
            target = by_id[id(update.parent)]
            there = in_formula(target["name"])
            local_text = fill_formula(step.node._op.formulas[i], values) if isinstance(
                step.node._op, Op) else "local"
            rules.append(f"d{here}/d{there} = {local_text}")
            chain = (f"d{top}/d{here} * d{here}/d{there} = "
                     f"{fmt(step.upstream)} * {fmt(update.local)} = {fmt(update.contribution)}")
            if accumulate and update.before != 0.0:
                formula = (f"d{top}/d{there} += {chain}  →  {fmt(update.after)}")
            elif accumulate:
                formula = f"d{top}/d{there} = {chain}"
            else:
                formula = f"d{top}/d{there} = {chain}  (assigned: = not +=)"
            target["explain"].append(formula)
            contributions[target["id"]] = contributions.get(target["id"], 0) + 1
            updates.append({"target": target["id"], "local": jsonable(update.local),
                            "contribution": jsonable(update.contribution),
                            "before": jsonable(update.before), "after": jsonable(update.after),
                            "formula": formula})
        model["steps"].append({"node": node["id"], "upstream": jsonable(step.upstream),
                               "rule": "; ".join(rules), "updates": updates})
    model["reached_twice"] = [nid for nid, n in contributions.items() if n > 1]
