"""One %%autograd run: cell text -> engine forward/backward -> graph model -> result."""

from __future__ import annotations

import ast
import contextlib
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from IPython.core.error import UsageError

import engine
from engine import Value
from micrograd_magics import cell as cells
from micrograd_magics import collapse, foreign, learner_calls, live_view, replay
from micrograd_magics import compare as checks
from micrograd_magics.errors import CellFailed, cell_line, rethrow_as_cell_failure, their_frames
from micrograd_magics.graph import build_model, labelled_positions
from micrograd_magics.nudge import quiz_tolerance
from micrograd_magics.result import AutogradResult


@dataclass
class Options:
    """What a %%autograd run was asked to do (options and config merged)."""

    root: str | None = None
    backward: bool = True
    accumulate: bool = True
    labels: str = "all"
    max_nodes: int = 300
    precision: int = 4
    rankdir: str = "LR"
    static: bool = False
    renderer: str = "auto"
    torch: bool = False
    torch_graph: bool = False
    check: str | None = None
    rtol: float = 1e-9
    atol: float = 1e-12
    engine: str | None = None
    quiz: bool = False
    collapse: str = "auto"  # "collapse" (--collapse), "expand" (--expand), or by --max-nodes
    live: bool = False
    live_data: str | None = None


NOTHING_TO_DIFFERENTIATE = (
    "nothing to differentiate: the cell made no Value. Leaves are names bound to number "
    "literals (a = 2.0), lists of numbers (w = [1.0, -2.0]) or plain numbers from earlier "
    "cells; compute something from them (L = a * b).")


@dataclass
class CompiledCell:
    """The cell as code, with what the transform learnt about it."""

    code: Any
    program: cells.CellProgram
    filename: str


def compile_cell(shell: Any, body: str, header: str, options: Options) -> CompiledCell:
    """Parse, transform and compile; line numbers are the ones the user sees in the cell."""
    filename = shell.compile.cache(f"{header}\n{body}" if header else body, shell.execution_count)
    offset = "\n" * (header.count("\n") + 1) if header else ""
    transformed = shell.transform_cell(body)
    # IPython drops the cell's leading blank lines; put them back so line numbers match
    # the cell as the learner sees it
    dropped = _leading_blank_lines(body) - _leading_blank_lines(transformed)
    source = offset + "\n" * max(dropped, 0) + transformed
    try:
        tree = ast.parse(source, filename)
        value_classes = {"Value", *([options.engine.rpartition(".")[2]] if options.engine else [])}
        program = cells.transform(tree, source, source_labels=options.labels == "all",
                                  value_classes=value_classes)
        code = compile(tree, filename, "exec", flags=shell.compile.flags, dont_inherit=True)
    except SyntaxError:
        raise rethrow_as_cell_failure(filename) from None
    return CompiledCell(code, program, filename)


def run_cell(shell: Any, body: str, header: str, options: Options) -> AutogradResult:
    """Run the cell on the engine (or the learner's class) in the user's namespace and build
    the result."""
    ns = shell.user_ns
    try:
        learner_class = foreign.resolve(options.engine, ns, body) if options.engine else None
    except foreign.LearnerEngineError as error:
        raise UsageError(str(error)) from None
    cell = compile_cell(shell, body, header, options)
    if learner_class is None:
        recorder, functions = cells.CellRecorder(), cells.bare_functions()
    else:
        recorder = foreign.ForeignRecorder(learner_class, ns, options.engine)
        functions = foreign.bare_functions(learner_class)
    guard = foreign.checked_operators(learner_class) if learner_class else contextlib.nullcontext()
    backward_calls = LastBackward()
    live_run = live_view.LiveRun(ns, options, cell.program.assigned) if options.live else None
    watching = live_run.watching() if live_run else contextlib.nullcontext()
    watch = engine.observing_backward(backward_calls) if learner_class is None else (
        contextlib.nullcontext())
    calls = collapse.CallLog()  # which Neuron made which nodes, for the collapsed drawing
    observe = contextlib.ExitStack()
    if learner_class is None:
        observe.enter_context(engine.nn.observing_calls(calls))
        observe.enter_context(engine.observing_backward(calls.backward_seen))
    # their Neuron-like classes' calls, the same way; entered by the `with`, so that every
    # class is put back whatever happens
    their_calls = (learner_calls.recording(recorder, ns, calls, backward_calls.theirs)
                   if learner_class is not None else contextlib.nullcontext())
    try:
        with guard, watch, watching, observe, their_calls:
            cells.execute(cell.code, cell.program, ns, shell.user_global_ns, recorder,
                          functions, recorder.new_leaf)
    except foreign.LearnerEngineError as error:
        raise UsageError(f"{at_line(cell.filename)}{error}") from None
    except (Exception, KeyboardInterrupt) as error:  # Ctrl-C: the cell's line, no more
        if not (live_run and live_run.stopped(error, at_line(cell.filename))):
            raise rethrow_as_cell_failure(cell.filename) from None
    root = live_run.root() if live_run else pick_root(ns, recorder, cell.program, options)
    # a training step after the root's backward (w.data -= lr * w.grad) changed its leaves:
    # the graph is shown, differentiated and checked with the values it was computed from
    with backward_calls.leaves_as_computed(root) as changed:
        try:
            if live_run:  # the last step as the cell's own backward() left it
                result, order = live_run.result(root, ns, options)
            elif learner_class is None:
                result, order = differentiate(root, ns, options)
            else:
                result, order = differentiate_learner_class(root, recorder, ns, options)
        except foreign.LearnerEngineError as error:
            raise UsageError(str(error)) from None
        except (Exception, KeyboardInterrupt):  # their backward() that never returns, too
            raise their_failure() from None
        if changed and not live_run:
            result.warnings.append(changed_leaves_note(changed, root))
        if collapse.wanted(len(order), options):
            model, then = result.graph, list(changed)  # not `result`: no cycle through it
            if learner_class is None:
                result.collapse_later(lambda: collapse.view_of(model, root, order, calls, ns,
                                                               then, options))
            else:
                result.collapse_later(lambda: learner_calls.view_of(model, order, calls, ns,
                                                                    recorder, options))
        record = replay.from_engine if learner_class is None else replay.from_learner
        result.bind_graph(lambda: record(order), lambda: rebuilt_model(root, order, ns, options),
                          learner=learner_class is not None)
        if options.quiz:
            result.graph["quiz"] = {"tolerance": quiz_tolerance(options.precision)}
        if options.torch or options.check:  # on the recorded graph: the cell ran once
            checks.compare(result, result.recorded_graph(), options,
                           learner=learner_class is not None, steps=result.learner_steps)
    if live_run:
        live_run.show(result, options.max_nodes)
    return result


def rebuilt_model(root: Value, order: list[Value], ns: dict[str, Any], options: Options) -> Any:
    """The model of root's graph after its numbers changed (result.set): backward again,
    the same node ids and names."""
    from micrograd_magics.nudge import rerun_backward

    small = len(order) <= options.max_nodes
    if small:
        steps = rerun_backward(root)
    else:
        engine.zeroed_backward(root)
        steps = None
    labelled = labelled_positions(order)
    names = version_names((order[i] for i in labelled), ns)
    return build_model(root, steps=steps, order=order, names=names,
                       precision=options.precision, accumulate=True,
                       max_nodes=options.max_nodes, labelled=labelled)


class LastBackward:
    """Observes the cell's `backward()` calls (engine.observing_backward) and keeps, for
    the latest one, its root and the values its leaves had then."""

    def __init__(self) -> None:
        self.root: Any = None
        self.leaves: list[tuple[Value, float]] = []
        self._parameters: dict[frozenset[int], tuple[list[Any], list[Any]]] = {}  # theirs

    def __call__(self, root: Value, order: list[Value]) -> None:
        self.root = root
        self.leaves = [(node, node.data) for node in order if node._a is None]

    def theirs(self, root: Any, calls: Iterable[tuple[Any, Any, Any]]) -> None:
        """The same for the learner's class (--engine), as their backward() starts: the
        parameters of their modules called since the last one (what a training step
        changes; a few µs), else root's leaves found through `_prev`. Without it the
        magic's own backward on their graph would run with the numbers their update
        changed, and leave other grads in their parameters than their loop did."""
        modules = {id(module): module for module, _, _ in calls}
        self.root = root
        if not modules:
            self.leaves = foreign.leaves_of(root)
            return
        # a training loop calls the same modules each step, and their parameters stay
        # theirs: found once, then only their numbers are read (the modules are held, so
        # the ids stay theirs)
        key = frozenset(modules)
        known = self._parameters.get(key)
        if known is None:
            known = self._parameters[key] = (list(modules.values()), [
                p for p, _ in foreign.parameters_of(list(modules.values()))])
        self.leaves = [(p, p.data) for p in known[1]]

    @contextlib.contextmanager
    def leaves_as_computed(self, root: Any) -> Iterator[list[tuple[Value, float]]]:
        """While the block runs, the leaves of root's graph hold the values they had at its
        last backward(), if they changed since; the block gets the changed ones."""
        if root is not self.root:
            yield []
            return
        changed = [(leaf, then) for leaf, then in self.leaves
                   if leaf.data != then and not (leaf.data != leaf.data and then != then)]
        now = [leaf.data for leaf, _ in changed]
        for leaf, then in changed:
            leaf.data = then
        try:
            yield changed
        finally:
            for (leaf, _), value in zip(changed, now):
                leaf.data = value


def changed_leaves_note(changed: list[tuple[Value, float]], root: Any) -> str:
    names = [foreign.own_label(leaf) for leaf, _ in changed if foreign.own_label(leaf)]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    root_name = foreign.own_label(root) or "the root"
    return (f"{len(changed)} lea{'ves' if len(changed) != 1 else 'f'} changed after "
            f"{root_name}.backward() ({shown or 'unnamed'}: a training step?): the graph shows "
            f"the values {root_name} was computed from; your variables keep their new values")


def their_failure() -> BaseException:
    """An error raised in the learner's backward() or _backward closures (which we called),
    shown with their frames only; an error of ours keeps its whole traceback."""
    etype, error, tb = sys.exc_info()
    assert etype is not None and error is not None
    frames = their_frames(tb)
    if frames is None and isinstance(error, KeyboardInterrupt):
        return CellFailed((etype, error, None))  # stopped in our own work: just say so
    if frames is None:
        return error
    return CellFailed((etype, error, frames))


def at_line(filename: str) -> str:
    """"line 4: " for the deepest frame of the cell in the exception being handled."""
    line = cell_line(sys.exc_info()[2], filename)
    return f"line {line}: " if line else ""


def _leading_blank_lines(text: str) -> int:
    lines = text.splitlines()
    blank = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    return blank if blank < len(lines) else 0  # an all-blank cell is left as it is


def pick_root(ns: dict[str, Any], recorder: cells.CellRecorder, program: cells.CellProgram,
              options: Options) -> Value:
    """The root: the name given, else the last Value the cell assigned or evaluated."""
    if options.root:
        if options.root not in ns:
            assigned = ", ".join(program.assigned) or "none"
            raise UsageError(
                f"root {options.root!r} is not defined (the cell assigned: {assigned})")
        root = ns[options.root]
        if isinstance(root, (list, tuple)):
            raise UsageError(
                f"root {options.root!r} is a {type(root).__name__} of {len(root)} items; the root "
                f"must be one Value: sum them (L = sum({options.root})) or pick one")
        if not recorder.is_value(root):
            raise UsageError(
                f"root {options.root!r} is a {type(root).__name__}, not a Value: compute it from "
                f"leaves (numbers bound to names)")
        return root
    if recorder.last_value is None:
        raise UsageError(NOTHING_TO_DIFFERENTIATE)
    return recorder.last_value


def version_names(labelled: Iterable[Any], ns: dict[str, Any]) -> dict[int, str]:
    """Distinct labels: where several of the labelled nodes carry the same label (a name
    reassigned in a loop), the one the name holds now keeps it and the others become `y#1`,
    `y#2`, ..."""
    by_label: dict[str, list[Value]] = {}
    for node in labelled:
        by_label.setdefault(node.label, []).append(node)
    names: dict[int, str] = {}
    for label, nodes in by_label.items():
        if len(nodes) < 2:
            continue
        current = ns.get(label)
        keeper = next((n for n in nodes if getattr(n, "obj", n) is current), nodes[-1])
        version = 0
        for node in nodes:
            if node is not keeper:
                version += 1
                names[id(node)] = f"{label}#{version}"
    return names


def differentiate(root: Value, ns: dict[str, Any],
                  options: Options) -> tuple[AutogradResult, list[Value]]:
    """Zero every grad, run backward (step by step when the graph is small), build the model."""
    steps = None
    if options.backward and options.accumulate:
        order = engine.zeroed_backward(root)  # one walk, as the cell's own backward() would
        order.reverse()
        if len(order) <= options.max_nodes:  # small: run again, step by step, for the widget
            engine.zero_grad(root)
            steps = engine.backward_steps(root)
    else:
        order = engine.topological_order(root)
        for node in order:
            node.grad = 0.0
        if options.backward:  # the lecture's `=` bug: only the steps can show it
            steps = engine.backward_steps(root, accumulate=False)
    small = len(order) <= options.max_nodes
    labelled = labelled_positions(order)
    names = version_names((order[i] for i in labelled), ns)
    model = build_model(root, steps=steps if small else None, order=order, names=names,
                        precision=options.precision, accumulate=options.accumulate,
                        max_nodes=options.max_nodes, labelled=labelled)
    # above the cap only the named nodes and the root are checked: a nan or inf reaches
    # them (data flows to the root, gradients to the leaves), and the scan stays cheap
    checked = order if small else [order[i] for i in labelled]
    if not small and not root.label:
        checked.append(root)
    warnings = non_finite_warnings(checked, names)
    return AutogradResult(root=root, model=model, options=options, warnings=warnings), order


def differentiate_learner_class(root: Any, recorder: foreign.ForeignRecorder, ns: dict[str, Any],
                                options: Options) -> tuple[AutogradResult, list[Any]]:
    """The same as `differentiate`, with the learner's backward and closures."""
    cap = max(options.max_nodes * 100, 100_000)
    order = foreign.trace(root, recorder.cls, recorder.live_labels(), cap)
    root_node = order[-1]
    small = len(order) <= options.max_nodes
    steps, notes = None, []
    if options.backward:
        # the first-wrong-rule check of --torch reads the steps of their closures
        steps, notes = foreign.run_backward(root_node, order,
                                            record_steps=small or options.torch)
    else:
        foreign.set_grads(order, [0.0] * len(order))
    if not options.accumulate:
        notes.append("--overwrite-grads has no effect with --engine: your own rules run")
    labelled = labelled_positions(order)
    names = version_names((order[i] for i in labelled), ns)
    model = build_model(root_node, steps=steps if small else None, order=order,  # type: ignore[arg-type]
                        names=names, precision=options.precision, max_nodes=options.max_nodes,
                        labelled=labelled)
    model["engine"] = recorder.cls.__name__
    warnings = non_finite_warnings(order, names) + notes
    result = AutogradResult(root=root, model=model, options=options, warnings=warnings)
    result.learner_steps = steps
    return result, order


def non_finite_warnings(order: list[Value], names: dict[int, str]) -> list[str]:
    """One line per kind of non-finite number, naming the nodes."""
    # a nan or inf anywhere makes the sum non-finite: one C-speed pass in the usual case
    if math.isfinite(sum(map(attrgetter("data"), order))) and math.isfinite(
            sum(map(attrgetter("grad"), order))):
        return []
    bad_data, bad_grad = [], []
    for i, node in enumerate(order):
        name = names.get(id(node), node.label) or f"#{i}"
        if not math.isfinite(node.data):
            bad_data.append(f"{name} = {node.data}")
        if not math.isfinite(node.grad):
            bad_grad.append(f"{name} = {node.grad}")
    lines = []
    for what, bad in (("data", bad_data), ("gradient", bad_grad)):
        if bad:
            shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
            lines.append(f"non-finite {what}: {shown}")
    return lines


__all__ = ["CellFailed", "Options", "run_cell"]
