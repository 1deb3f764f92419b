"""The cell's AST transform and run: leaves, labels, root; compiled so errors point at the cell.

What the transform does to a cell (and documents in `%%autograd?`):
- leaves: a module-level `name = <number>` (`a = 2.0`, `f = -2`) becomes a leaf Value
  labelled `name`; `w = [1.0, -2.0]` (a flat list/tuple of numbers) becomes leaves `w[0]`,
  `w[1]`; a name the cell reads that holds a plain number from an earlier cell becomes a
  leaf for this run only (the user's variable is put back afterwards).
- counts stay numbers: a name the cell uses inside `range(...)` or as an index or slice
  (`w[i]`, `xs[:n]`) is never made a leaf; nor is a name used to update a `.data` or
  `.grad` (`lr` in `w.data -= lr * w.grad`): a training step stays plain arithmetic.
- a cell that builds its own Values (`a = Value(2.0, label='a')`, as the lecture writes
  it) lifts nothing: its numbers stay numbers, as they would without the magic.
- a Value stored into `.data` or `.grad` is refused with a one-line message before the
  assignment happens (`.data` holds a plain number).
- labels: every assignment to a name (also inside loops and ifs) labels a still
  unlabelled Value with that name; the intermediate results of module-level statements
  are labelled with their own source text (`x1*w1 + x2*w2`), unless labels="names".
- root candidates: each module-level expression statement's value is recorded, so the
  last Value assigned or evaluated can be the root.
"""

from __future__ import annotations

import ast
import numbers
import types
from dataclasses import dataclass
from typing import Any

from engine import Value
from engine.nn import Module

HELPER = "__autograd_cell__"
"""The one name the transformed code uses to reach us; removed again after the run."""

BARE_FUNCTIONS = ("tanh", "exp", "log", "relu", "sigmoid", "sqrt", "sin", "cos")


def _is_number_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool))


def _count_names_in(node: ast.AST) -> set[str]:
    """The names in a count expression, except the sequence in `len(w)`: its length is the
    count, so `range(len(w))` keeps `w` a list of leaves."""
    inside_len = {id(n) for call in ast.walk(node)
                  if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                  and call.func.id == "len"
                  for arg in call.args for n in ast.walk(arg)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in inside_len}


_SEQUENCES = (ast.List, ast.Tuple, ast.ListComp, ast.Constant)


_NUMBER_SLOTS = ("data", "grad")


def _stores_a_number_slot(node: ast.AST) -> bool:
    """`w.data = ...`, `p.data -= ...`, `x.grad = ...`: an assignment into a Value's number."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    else:
        return False
    return any(isinstance(t, ast.Attribute) and t.attr in _NUMBER_SLOTS for t in targets)


def count_names(tree: ast.AST) -> set[str]:
    """Names used where a count goes: inside range(...), as an index or slice, or as the
    repeat of a sequence (`[0.0] * n`); and names that update a `.data`/`.grad` (`lr` in
    `w.data -= lr * w.grad`), which must stay plain numbers too."""
    counts: set[str] = set()
    for node in ast.walk(tree):
        if _stores_a_number_slot(node) and node.value is not None:  # type: ignore[attr-defined]
            value = node.value  # type: ignore[attr-defined]
            owners = {id(a.value) for a in ast.walk(value) if isinstance(a, ast.Attribute)}
            # `lr` in `lr * w.grad`, not `w`: the Value whose number is read stays one
            counts |= {n.id for n in ast.walk(value)
                       if isinstance(n, ast.Name) and id(n) not in owners}
        func = getattr(node, "func", None)
        if isinstance(node, ast.Call) and isinstance(func, ast.Name) and func.id == "range":
            for arg in node.args:
                counts |= _count_names_in(arg)
        elif isinstance(node, ast.Subscript):
            counts |= _count_names_in(node.slice)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            if isinstance(node.left, _SEQUENCES) and not _is_number_literal(node.left):
                counts |= _count_names_in(node.right)
            elif isinstance(node.right, _SEQUENCES) and not _is_number_literal(node.right):
                counts |= _count_names_in(node.left)
    return counts


def _assigned_names(targets: list[ast.expr]) -> list[str]:
    names = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node.id)
    return names


def _call_helper(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(
        func=ast.Attribute(value=ast.Name(id=HELPER, ctx=ast.Load()), attr=method, ctx=ast.Load()),
        args=list(args), keywords=[])


_NOT_LABELLED = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


LABEL_DEPTH = 100
"""A statement whose expression nests deeper than this (a one-line sum of 400 terms) gets
no source-text labels: the labelling pass recurses, and a wrapped expression nests twice as
deep for the compiler, so a cell that plain Python runs would fail. Its assigned name
still labels the result."""


def nesting_depth(node: ast.AST, stop: int = LABEL_DEPTH + 1) -> int:
    """How deep node's expression tree goes, counted without recursion; stops at `stop`."""
    deepest, todo = 0, [(node, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        if deepest >= stop:
            break
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


class _SourceLabels(ast.NodeTransformer):
    """Wrap each arithmetic subexpression of one statement so its result gets its source text."""

    def __init__(self, source: str) -> None:
        self.source = source

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.expr) and self._too_deep(node):
            return node
        return super().visit(node)

    def _too_deep(self, node: ast.expr) -> bool:
        checked = getattr(self, "_checked", False)
        if checked:  # only the statement's outermost expression is measured
            return False
        self._checked = True
        return nesting_depth(node) > LABEL_DEPTH

    def _wrap(self, node: ast.expr) -> ast.expr:
        text = ast.get_source_segment(self.source, node)
        if not text or "\n" in text:
            return node
        return ast.copy_location(_call_helper("label", node, ast.Constant(text)), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return self._wrap(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return node if _is_number_literal(node) else self._wrap(node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        return self._wrap(node)

    def inside(self, value: ast.expr) -> ast.expr:
        """Label the subexpressions of an assignment's value but not the value itself (the
        assignment names that one)."""
        if isinstance(value, _NOT_LABELLED) or self._too_deep(value):
            return value
        return self.generic_visit(value)  # type: ignore[return-value]

    # code that runs many times or later keeps its speed: no labels inside these
    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        return node

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        return node

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp


@dataclass
class CellProgram:
    """A cell turned into code: what to compile, and what the run needs to know."""

    code: Any  # the compiled code object
    leaf_names: list[str]  # module-level names bound to number literals (made leaves)
    read_names: set[str]  # names the cell reads (candidates for earlier-cell leaves)
    counts: set[str]  # names used as counts: never made leaves
    assigned: list[str]  # names the cell assigns, in order
    lifts_numbers: bool = True  # False when the cell builds its own Values


def builds_values(tree: ast.AST, class_names: set[str]) -> bool:
    """True when the cell calls a Value class itself: `Value(2.0)`, `engine.Value(2.0)`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if name in class_names:
                return True
    return False


class _GuardNumberSlots(ast.NodeTransformer):
    """`w.data -= expr` -> `w.data -= __autograd_cell__.number_for(expr, "w.data")`: a Value
    going into `.data` or `.grad` is refused before the assignment changes anything."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _guard(self, node: ast.stmt) -> ast.stmt:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[attr-defined]
        slot = next((t for t in targets if isinstance(t, ast.Attribute)
                     and t.attr in _NUMBER_SLOTS), None)
        if slot is not None and node.value is not None:  # type: ignore[attr-defined]
            text = ast.get_source_segment(self.source, slot) or slot.attr
            node.value = ast.copy_location(  # type: ignore[attr-defined]
                _call_helper("number_for", node.value, ast.Constant(text)),  # type: ignore[attr-defined]
                node.value)  # type: ignore[attr-defined]
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        return self._guard(node)

    visit_AugAssign = visit_AnnAssign = visit_Assign  # type: ignore[assignment]

    # code that runs later, after the helper is gone (a class's own `self.data = data`)
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.stmt:
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_FunctionDef  # type: ignore[assignment]


def transform(tree: ast.Module, source: str, *, source_labels: bool = True,
              value_classes: set[str] | None = None) -> CellProgram:
    """Rewrite the parsed cell in place (see the module docstring); return the program facts.
    `value_classes`: the names of the Value class in use (a cell calling one lifts nothing)."""
    lifts = not builds_values(tree, value_classes or {"Value"})
    counts = count_names(tree)
    _GuardNumberSlots(source).visit(tree)
    leaf_names: list[str] = []
    assigned: list[str] = []

    def label_statements(names: list[str], like: ast.stmt) -> list[ast.stmt]:
        return [ast.copy_location(ast.Expr(_call_helper(
            "assigned", ast.Name(id=name, ctx=ast.Load()), ast.Constant(name))), like)
            for name in names]

    def rewrite_body(body: list[ast.stmt], top: bool) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                assigned.append(stmt.name)
                out.append(stmt)
                continue
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = _assigned_names(targets)
                assigned.extend(names)
                if top and stmt.value is not None:
                    made = lifts and _make_leaves(stmt, names, counts, leaf_names)
                    if not made and source_labels:
                        stmt.value = _SourceLabels(source).inside(stmt.value)
                out.append(stmt)
                out.extend(label_statements(names, stmt))
                continue
            if isinstance(stmt, ast.Expr) and top:
                value = stmt.value
                if source_labels:
                    value = _SourceLabels(source).visit(value)
                stmt.value = _call_helper("expression", value)
                out.append(stmt)
                continue
            if isinstance(stmt, (ast.For, ast.AsyncFor)):
                assigned.extend(_assigned_names([stmt.target]))
            for name in ("body", "orelse", "finalbody"):
                if isinstance(getattr(stmt, name, None), list):
                    setattr(stmt, name, rewrite_body(getattr(stmt, name), False))
            for handler in getattr(stmt, "handlers", []):
                handler.body = rewrite_body(handler.body, False)
            for case in getattr(stmt, "cases", []):
                case.body = rewrite_body(case.body, False)
            out.append(stmt)
        return out

    tree.body = rewrite_body(tree.body, True)
    ast.fix_missing_locations(tree)
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return CellProgram(code=None, leaf_names=leaf_names, read_names=read - {HELPER},
                       counts=counts, assigned=list(dict.fromkeys(assigned)), lifts_numbers=lifts)


def _make_leaves(stmt: ast.stmt, names: list[str], counts: set[str], leaf_names: list[str]) -> bool:
    """Turn `name = <number>`, `name = [<numbers>]` and `a, b = <number>, <number>` into
    leaves; True if it did."""
    if not isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        return False
    target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
    value = stmt.value
    if (isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(stmt.targets) == 1
            and len(target.elts) == len(value.elts)
            and all(isinstance(t, ast.Name) for t in target.elts)):
        lifted = False
        for i, (t, v) in enumerate(zip(target.elts, value.elts)):
            if _is_number_literal(v) and t.id not in counts:  # type: ignore[attr-defined]
                value.elts[i] = ast.copy_location(
                    _call_helper("leaf", v, ast.Constant(t.id)), v)  # type: ignore[attr-defined]
                leaf_names.append(t.id)  # type: ignore[attr-defined]
                lifted = True
        return lifted
    if len(names) != 1:
        return False
    name = names[0]
    if not isinstance(target, ast.Name) or name in counts:
        return False
    if value is not None and _is_number_literal(value):
        stmt.value = ast.copy_location(_call_helper("leaf", value, ast.Constant(name)), value)
        leaf_names.append(name)
        return True
    if (isinstance(value, (ast.List, ast.Tuple)) and value.elts
            and all(_is_number_literal(e) for e in value.elts)):
        value.elts = [ast.copy_location(_call_helper("leaf", e, ast.Constant(f"{name}[{i}]")), e)
                      for i, e in enumerate(value.elts)]
        leaf_names.append(name)
        return True
    return False


class CellRecorder:
    """The object the transformed code calls (as `__autograd_cell__`) while the cell runs.

    It makes the leaves, labels Values and remembers the last one assigned or evaluated.
    Subclasses run the same cell on other values (torch tensors, a learner's Value class)
    by saying what counts as a value, how a leaf is made and where a label is kept.
    """

    def __init__(self) -> None:
        self.leaves: list[Any] = []  # the leaves made from number literals, in order
        self.by_path: set[int] = set()  # ids of model parameters named by their path
        self.last_value: Any = None  # the last value assigned or evaluated at top level

    # --- what differs between engines --------------------------------------------------

    def is_value(self, x: Any) -> bool:
        return isinstance(x, Value)

    def new_leaf(self, number: float, label: str) -> Any:
        return Value(number, label)

    def has_label(self, value: Any) -> bool:
        return bool(value.label)

    def set_label(self, value: Any, text: str) -> None:
        value.label = text

    def label_of(self, value: Any) -> str:
        return value.label

    # --- what the transformed cell calls ---------------------------------------------

    def leaf(self, number: float, label: str) -> Any:
        value = self.new_leaf(number, label)
        self.leaves.append(value)
        return value

    def label(self, value: Any, text: str) -> Any:
        """An intermediate result: label it with its source text if it has no label yet."""
        if self.is_value(value) and not self.has_label(value):
            self.set_label(value, text)
        return value

    def assigned(self, value: Any, name: str) -> None:
        """`name = value` just ran: name the value (if unnamed, or only named by its path in
        a model); it may be the root."""
        if self.is_value(value):
            if id(value) in self.by_path:  # `w = model.layers[0].neurons[0].w[0]`
                self.by_path.discard(id(value))
                self.set_label(value, name)
            self.label(value, name)
            self.last_value = value
        elif isinstance(value, Module):
            self.parameters(value, name)

    def parameters(self, module: Module, name: str) -> None:
        """Name an engine.nn model's unnamed parameters by their path: `model.layers[0].b`."""
        for path, parameter in module.named_parameters():
            if not self.is_value(parameter):
                continue
            text = f"{name}.{path}"
            if not self.has_label(parameter):
                self.label(parameter, text)
            elif self.label_of(parameter) != text:
                continue  # named by the user: keep it
            self.by_path.add(id(parameter))

    def expression(self, value: Any) -> Any:
        if self.is_value(value):
            self.last_value = value
        return value

    def number_for(self, value: Any, target: str) -> Any:
        """What the cell stores into `target` (`w.data`), unless it is a Value."""
        if self.is_value(value):
            raise TypeError(
                f"{target} would become a Value: .{target.rpartition('.')[2]} holds a plain "
                f"number. Compute the update from numbers (a Value's number is its .data)")
        return value


def plain_number(x: object) -> bool:
    """True for an int or float (numpy scalars too) but not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not isinstance(x, Value)


def bare_functions() -> dict[str, Any]:
    """tanh, exp, ... as the cell sees them: fresh copies each run, so that a cell which binds
    the name itself (`from engine import tanh`) keeps it after the run; ours are removed."""
    import engine

    return {name: _copy_function(getattr(engine, name)) for name in BARE_FUNCTIONS}


def _copy_function(f: types.FunctionType) -> types.FunctionType:
    copy = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                              f.__closure__)
    copy.__qualname__, copy.__doc__, copy.__module__ = f.__qualname__, f.__doc__, f.__module__
    return copy


def execute(code: Any, program: CellProgram, ns: dict[str, Any], global_ns: dict[str, Any],
            recorder: Any, functions: dict[str, Any], make_leaf: Any) -> dict[str, Any]:
    """Run the compiled cell in ns with the recorder, the bare functions and earlier plain
    numbers as leaves bound; put back every name the cell did not rebind. Returns the
    leaves made from earlier numbers, by name."""
    # a bare function never hides a user's own non-function of that name (`log = []`)
    injected: dict[str, Any] = {HELPER: recorder, **{
        name: f for name, f in functions.items() if name not in ns or callable(ns[name])}}
    earlier = {}
    for name in sorted(program.read_names - program.counts):
        if program.lifts_numbers and name in ns and plain_number(ns[name]):
            injected[name] = earlier[name] = make_leaf(ns[name], name)
    for name in sorted(program.read_names):
        if isinstance(ns.get(name), Module):  # a model from an earlier cell
            recorder.parameters(ns[name], name)
    saved = {name: ns[name] for name in injected if name in ns}
    ns.update(injected)
    try:
        exec(code, global_ns, ns)
    finally:
        for name, ours in injected.items():
            if ns.get(name) is ours:  # the cell did not rebind it: put back what was there
                if name in saved:
                    ns[name] = saved[name]
                else:
                    del ns[name]
    return earlier
