"""--live's view: the state the live widget is sent, the static loss curve and table, the
result with its history, and the one display that is updated in place while the cell runs.

The pipeline calls `LiveRun` at a few points (start, watch, Ctrl-C, root, result, show);
everything about the view lives here and in `live_widget.py`.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from IPython.core.error import UsageError

from engine import Value
from micrograd_magics.graph import format_number
from micrograd_magics.live import LiveError, LiveRecorder, LiveStep, parse_data_names, row_of
from micrograd_magics.result import WIDGET_MIME, AutogradResult, remember_widget

MAX_CURVE = 300
"""Loss points sent per update: every step up to this many, then evenly thinned (the last
step always kept), so an update stays the same size however long the loop runs."""
BOUNDARY_EVERY = 5
"""The view redraws the decision boundary every this many steps (and at the end)."""
DIGITS = 5
"""Significant digits of the numbers sent to the view."""

NO_BACKWARD = ("--live: the cell never called .backward() on a Value, so there was no "
               "training step to record (call loss.backward() in your loop)")


def rounded(x: float) -> float | None:
    """x to DIGITS significant digits for the view; None (JSON null) when not finite."""
    return float(f"{x:.{DIGITS}g}") if math.isfinite(x) else None


def thinned(history: list[LiveStep], limit: int = MAX_CURVE) -> list[list[float | None]]:
    """[[step, loss], ...]: all of them, or `limit` evenly spaced ones ending at the last."""
    n = len(history)
    stride = max(1, math.ceil(n / limit))
    picked = list(range(n - 1, -1, -stride))[::-1]
    return [[history[i].step, rounded(history[i].loss)] for i in picked]


def layer_tables(recorder: LiveRecorder) -> list[dict[str, Any]]:
    """Per group (a layer) its heatmaps: rows (neurons) x columns (w[0].., b), of the data
    and of the gradients the last recorded backward left, and its dead rows."""
    params = recorder.params
    if params is None or not params.is_model:
        return []
    data, grads = recorder.snapshot
    dead = set(recorder.history[-1].dead) if recorder.history else set()
    tables = []
    for group, start, end in params.groups:
        rows: dict[str, int] = {}
        cols: dict[str, int] = {}
        cells = []
        for i in range(start, end):
            path = params.paths[i]
            row = row_of(path)
            r = rows.setdefault(row, len(rows))
            c = cols.setdefault(path[len(row) + 1 if row else 0:], len(cols))
            cells.append((r, c, i))
        grid_data: list[list[float | None]] = [[None] * len(cols) for _ in rows]
        grid_grad: list[list[float | None]] = [[None] * len(cols) for _ in rows]
        for r, c, i in cells:
            grid_data[r][c] = rounded(data[i])
            grid_grad[r][c] = rounded(grads[i])
        prefix = len(group) + 1 if group else 0
        tables.append({"name": group or params.name, "rows": [r[prefix:] for r in rows],
                       "cols": list(cols), "data": grid_data, "grad": grid_grad,
                       "dead": [rows[r] for r in rows if r in dead]})
    return tables


def value_lines(recorder: LiveRecorder) -> dict[str, Any]:
    """Plain Values: each named leaf's data per step (thinned like the loss curve)."""
    params = recorder.params
    if params is None or params.is_model or not recorder.series:
        return {}
    n = len(recorder.series[0])
    stride = max(1, math.ceil(n / MAX_CURVE))
    picked = list(range(n - 1, -1, -stride))[::-1]
    steps = [recorder.history[i].step for i in picked] if len(recorder.history) == n else picked
    return {"labels": params.paths, "steps": steps,
            "series": [[rounded(s[i]) for i in picked] for s in recorder.series]}


def live_state(recorder: LiveRecorder, status: str = "running") -> dict[str, Any]:
    """Everything one update sends: plain JSON, its size bounded by MAX_CURVE and the model."""
    history = recorder.history
    params = recorder.params
    return {
        "status": status,
        "steps": len(history),
        "loss": rounded(history[-1].loss) if history else None,
        "curve": thinned(history),
        "kind": "model" if params is not None and params.is_model else "values",
        "model": params.name if params is not None else "",
        "layers": layer_tables(recorder),
        "lines": value_lines(recorder),
        "notes": list(recorder.notes) + ([recorder.interrupted] if recorder.interrupted else []),
    }


def boundary_state(recorder: LiveRecorder) -> dict[str, Any]:
    """What the view needs once to draw the decision boundary itself (it evaluates the
    engine.nn MLP on a grid from the weights each update carries): the points, their
    classes and which layers have ReLU."""
    params = recorder.params
    if not recorder.points or params is None or params.mlp is None:
        return {}
    return {"points": [[rounded(x0), rounded(x1), 1 if label > 0 else 0]
                       for (x0, x1), label in zip(recorder.points, recorder.labels)],
            "nonlin": [layer.neurons[0].nonlin for layer in params.mlp.layers],
            "every": BOUNDARY_EVERY}


# --- static: the loss curve as SVG -----------------------------------------------------

def loss_svg(history: list[LiveStep], width: int = 480, height: int = 200) -> str:
    """The loss per step as a small standalone SVG (no script, no external font)."""
    points = [(s.step, s.loss) for s in history if math.isfinite(s.loss)]
    left, right, top, bottom = 56, 12, 22, 30
    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='autograd-live-curve' "
             f"width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
             f"font-family='sans-serif' font-size='11'>",
             f"<rect x='0' y='0' width='{width}' height='{height}' fill='white'/>",
             f"<text x='{left}' y='14' fill='#333'>loss per backward() step "
             f"({len(history)} steps)</text>"]
    if points:
        lo = min(y for _, y in points)
        hi = max(y for _, y in points)
        span = hi - lo or abs(hi) or 1.0
        first, last = points[0][0], points[-1][0]
        steps = (last - first) or 1
        xy = " ".join(f"{left + (x - first) / steps * inner_w:.1f},"
                      f"{top + (hi - y) / span * inner_h:.1f}" for x, y in points)
        parts += [
            f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + inner_h}' stroke='#999'/>",
            f"<line x1='{left}' y1='{top + inner_h}' x2='{left + inner_w}' "
            f"y2='{top + inner_h}' stroke='#999'/>",
            f"<text x='{left - 4}' y='{top + 4}' text-anchor='end' fill='#333'>"
            f"{format_number(hi, 3)}</text>",
            f"<text x='{left - 4}' y='{top + inner_h}' text-anchor='end' fill='#333'>"
            f"{format_number(lo, 3)}</text>",
            f"<text x='{left}' y='{height - 10}' fill='#333'>{first}</text>",
            f"<text x='{left + inner_w}' y='{height - 10}' text-anchor='end' fill='#333'>"
            f"step {last}</text>",
            f"<polyline points='{xy}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>"]
    parts.append("</svg>")
    return "".join(parts)


# --- the result -------------------------------------------------------------------------

class LiveResult(AutogradResult):
    """An AutogradResult of a --live cell: the last step's graph and grads, plus

    - `history`: one LiveStep per backward() the cell called (`.loss` is the root's value
      then, `.grad_norms` the parameters' gradient norms by layer and "total", `.dead` the
      ReLU neurons that were 0 for every input of that step)
    - `losses`: the losses alone, in order
    - `update_sizes`: bytes (as JSON) of each update the view was sent, the final one last
    """

    history: list[LiveStep]
    live_widget: Any = None
    update_sizes: list[int] = []
    _live_notes: list[str] = []
    _shown_in_cell = False

    @property
    def losses(self) -> list[float]:
        return [s.loss for s in self.history]

    def live_summary(self) -> str:
        h = self.history
        if not h:
            return "%%autograd --live: no backward() recorded"
        p = self.graph.get("precision", 4)
        return (f"%%autograd --live: {len(h)} backward() step{'s' if len(h) != 1 else ''}, "
                f"loss {format_number(h[0].loss, p)} -> {format_number(h[-1].loss, p)}")

    def live_bundle(self) -> dict[str, Any]:
        """The cell's one output: the live view (with the last step's graph below it when
        it is drawn) and, for nbconvert, GitHub and terminals, the final loss curve as SVG,
        the notes and the final table."""
        from micrograd_magics import live_widget

        static = self._repr_mimebundle_()
        graph_view = self.widget() if static.pop(WIDGET_MIME, None) else None
        svg = loss_svg(self.history)
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.live_notes())
        bundle = {
            "text/plain": "\n".join([self.live_summary(), *self.live_notes(),
                                     static["text/plain"]]),
            "text/html": (f"<div class='autograd-live-static'><p>{html.escape(self.live_summary())}"
                          f"</p>{notes}{svg}</div>{static['text/html']}"),
            "image/svg+xml": svg,
        }
        view = live_widget.combined(self.live_widget, graph_view)
        if view is not None:
            bundle[WIDGET_MIME] = {"version_major": 2, "version_minor": 0,
                                   "model_id": view.model_id}
        return bundle

    def live_notes(self) -> list[str]:
        """The view's notes: no decision boundary and why, Ctrl-C, the graph not drawn."""
        return list(self._live_notes)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self._shown_in_cell:  # the cell's output already is the live view: no copy
            self._shown_in_cell = False
            return
        display(self.live_bundle(), raw=True)


def last_step_view_note(result: AutogradResult, max_nodes: int) -> str:
    """Why the view shows no graph of the last step, or "".

    The graph below the view is whatever `result.widget()` gives (see
    `AutogradResult.live_bundle`): the normal view when the graph fits under
    --max-nodes, the collapsed view (collapse.py) above it; the note is for a graph
    neither can draw (above collapse.COLLAPSE_MAX, or --expand)."""
    model = result.graph
    if not model.get("truncated") or result.widget() is not None:
        return ""
    return (f"the last step's graph has {model['node_count']:,} nodes, more than --max-nodes "
            f"{max_nodes}: not drawn (its named values are in the table and in .grads)")


# --- what the pipeline calls -------------------------------------------------------------

class LiveRun:
    """One --live cell: the recorder, the view shown when the cell starts and updated in
    place, and how the run ends (normally, by Ctrl-C, or without any backward)."""

    def __init__(self, ns: dict[str, Any], options: Any, assigned: list[str]) -> None:
        try:
            names = parse_data_names(options.live_data)
        except LiveError as error:
            raise UsageError(str(error)) from None
        missing = [n for n in names or () if n not in ns and n not in assigned]
        if missing:
            raise UsageError(f"--live-data {options.live_data}: {' and '.join(missing)} "
                             f"{'is' if len(missing) == 1 else 'are'} not defined in the "
                             f"notebook nor assigned by the cell")
        self.view = LiveView(static=options.static)
        self.recorder = LiveRecorder(ns, options.root, names, on_update=self.view.update)

    def watching(self) -> Any:
        return self.recorder.watching()

    def stopped(self, error: BaseException, where: str) -> bool:
        """Ctrl-C in the loop after at least one recorded step: keep what was recorded
        and end the cell normally (True); anything else is the cell's own failure."""
        if not isinstance(error, KeyboardInterrupt) or not self.recorder.history:
            if self.recorder.history:  # the cell's error follows; the view says it stopped
                self.view.update(self.recorder, "error")
            return False
        self.recorder.interrupted = (f"stopped by Ctrl-C ({where.rstrip(': ') or 'in the cell'})"
                                     f" after {len(self.recorder.history)} recorded steps")
        return True

    def root(self) -> Value:
        if self.recorder.root is None:
            self.view.fail(NO_BACKWARD)
            raise UsageError(NO_BACKWARD if self.recorder.root_name is None else
                             f"--live {self.recorder.root_name}: no backward() was called on "
                             f"{self.recorder.root_name} (name the loss the loop calls "
                             f"backward() on, or leave the name out)")
        return self.recorder.root

    def result(self, root: Value, ns: dict[str, Any], options: Any
               ) -> tuple[LiveResult, list[Value]]:
        return recorded_result(self.recorder, root, ns, options)

    def show(self, result: LiveResult, max_nodes: int) -> None:
        """The final update, then the cell's output replaced by the final bundle. Asked
        here, once the pipeline has said whether the graph is drawn collapsed."""
        note = last_step_view_note(result, max_nodes)
        if note:  # for the widget; the static summary says it already
            self.recorder.notes.append(note)
        self.view.finish(self.recorder, result)


def recorded_result(recorder: LiveRecorder, root: Value, ns: dict[str, Any],
                    options: Any) -> tuple[LiveResult, list[Value]]:
    """The result of the last recorded backward, from the order it walked (no second
    backward: its grads are the ones the cell's backward produced). A graph small enough
    to draw also gets its backward steps for the step-through, replayed on the recorded
    graph with every grad put back afterwards."""
    import engine
    from micrograd_magics.graph import build_model, labelled_positions
    from micrograd_magics.pipeline import non_finite_warnings, version_names

    assert recorder.order is not None
    order = recorder.order[::-1]  # leaves first, as the model lists them
    with recorder.grads_as_recorded():
        small = len(order) <= options.max_nodes
        steps = None
        if small:
            recorded = [node.grad for node in order]
            engine.zero_grad(root)
            steps = engine.backward_steps(root)
            for node, grad in zip(order, recorded):
                node.grad = grad
        labelled = labelled_positions(order)
        names = version_names((order[i] for i in labelled), ns)
        model = build_model(root, steps=steps, order=order, names=names,
                            precision=options.precision, max_nodes=options.max_nodes,
                            labelled=labelled)
        checked = order if small else [order[i] for i in labelled] + [root]
        warnings = non_finite_warnings(checked, names)
    result = LiveResult(root=root, model=model, options=options, warnings=warnings)
    result.history = recorder.history
    result._live_notes = live_state(recorder)["notes"]
    return result, order


class LiveView:
    """The live widget, displayed once when the cell starts (unless --static), its state
    replaced at each throttled update; at the end the output holds the final bundle."""

    def __init__(self, static: bool = False) -> None:
        self.widget: Any = None
        self.handle: Any = None
        self.payloads: list[int] = []  # bytes (as JSON) of each update's state
        self.error = ""
        if static:
            return
        try:
            from micrograd_magics.live_widget import LiveWidget

            self.widget = LiveWidget()
        except Exception as error:  # no comm here: the static bundle at the end only
            self.error = f"{type(error).__name__}: {error}"
            return
        from IPython.display import display

        remember_widget(self.widget)
        self.handle = display({WIDGET_MIME: {"version_major": 2, "version_minor": 0,
                                             "model_id": self.widget.model_id},
                               "text/plain": "%%autograd --live: training..."},
                              raw=True, display_id=True)

    def update(self, recorder: LiveRecorder, status: str = "running") -> None:
        if self.widget is None:
            return
        if not self.widget.boundary and recorder.points:
            self.widget.boundary = boundary_state(recorder)
        state = live_state(recorder, status)
        self.payloads.append(len(json.dumps(state)))
        self.widget.state = state

    def fail(self, text: str) -> None:
        if self.widget is not None:
            self.widget.state = {"status": "failed", "steps": 0, "curve": [], "layers": [],
                                 "lines": {}, "notes": [text]}

    def finish(self, recorder: LiveRecorder, result: LiveResult) -> None:
        status = "interrupted" if recorder.interrupted else "done"
        result.live_widget = self.widget
        self.update(recorder, status)
        result.update_sizes = self.payloads
        if self.handle is not None:
            self.handle.update(result.live_bundle(), raw=True)
            result._shown_in_cell = True


__all__ = ["LiveResult", "LiveRun", "live_state", "loss_svg"]
