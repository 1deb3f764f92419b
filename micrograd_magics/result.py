"""AutogradResult: what %%autograd returns (so `_` holds it) and how it displays."""

from __future__ import annotations

import html
import json
import weakref
from pathlib import Path
from typing import Any

from engine import Value
from micrograd_magics.errors import SaveError
from micrograd_magics.graph import GraphModel, as_float, format_number, readable

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
BUNDLE_BUDGET = 1_000_000
"""Bytes (as JSON) of the static part of a display: what the notebook file keeps for it."""
LISTED = 60
"""Above --max-nodes the tables list at most this many named nodes (root, leaves, first and
last version of each name), then "… and N more": a 10**6-step loop names 10**6 nodes, and
listing them all made a 44 MB mime bundle. `.values` and `.grads` keep every label."""


# --- widgets released: one per cell, none after its result is gone ------------------------
#
# Every widget holds a comm and a copy of the graph and SVG in the front end's widget
# manager; ipywidgets keeps each one alive until it is closed. The front end replaces a
# cell's output when the cell runs again, so the widgets that output showed are closed
# then (JupyterLab, Notebook 7 and VS Code send the cell's id with each execute request);
# a result that is garbage collected closes its widget too.

_cell_widgets: dict[str, list[weakref.ref]] = {}
_running_cell: list[str | None] = [None]  # the id of the cell being executed, if known


def cell_id_of(info: Any, shell: Any = None) -> str | None:
    """The front end's id of the cell being run: IPython's ExecutionInfo.cell_id, else the
    `cellId` of the execute request's metadata (ipykernel's parent header)."""
    cell_id = getattr(info, "cell_id", None)
    if not cell_id and shell is not None:
        parent = getattr(shell, "parent_header", None) or {}
        cell_id = (parent.get("metadata") or {}).get("cellId") if isinstance(parent, dict) else None
    return str(cell_id) if cell_id else None


def close_cell_widgets(cell_id: str | None) -> int:
    """Close the widgets an earlier run of this cell displayed; how many were open."""
    closed = 0
    for ref in _cell_widgets.pop(cell_id, []) if cell_id else []:
        widget = ref()
        if widget is not None and getattr(widget, "comm", None) is not None:
            widget.close()
            closed += 1
    return closed


def remember_widget(widget: Any) -> None:
    """Note that the running cell shows this widget, so its next run closes it."""
    cell_id = _running_cell[0]
    if cell_id:
        _cell_widgets.setdefault(cell_id, []).append(weakref.ref(widget))


def before_cell(shell: Any) -> Any:
    """The shell's pre_run_cell callback: release the cell's old widgets, note its id."""
    def pre_run_cell(info: Any = None) -> None:
        cell_id = cell_id_of(info, shell)
        _running_cell[0] = cell_id
        close_cell_widgets(cell_id)
    return pre_run_cell


def after_cell(result: Any = None) -> None:
    """The shell's post_run_cell callback: no cell is running."""
    _running_cell[0] = None


def _close_widget(ref: weakref.ref) -> None:
    """A result was garbage collected: close the widget it made, if still open."""
    widget = ref()
    if widget is not None and getattr(widget, "comm", None) is not None:
        widget.close()


class AutogradResult:
    """The outcome of one %%autograd run.

    - `root`: the Value that was differentiated
    - `values`, `grads`: label -> float for every labelled node of the graph
    - `graph`: the plain graph model (see `micrograd_magics.graph`)
    - `torch_grads`, `mismatches`: with --torch (label -> torch's grad; labels that disagree)
    - `warnings`: non-finite data or gradients, by node

    Display (see `_repr_mimebundle_`): the interactive widget plus static `image/svg+xml`,
    `text/html` (graph + tables) and `text/plain` (table). The graph is laid out on first
    use: `svg`, `renderer` ("dot" or "graphviz-pure", None when nothing was drawn),
    `render_error`, `widget()`, `save(path)`.
    """

    def __init__(self, root: Value, model: GraphModel, options: Any,
                 warnings: list[str] | None = None) -> None:
        self.root = root
        self.graph = model
        self.options = options
        self.warnings = warnings or []
        named = [n for n in model["nodes"] if n["label"]]
        self.values: dict[str, float] = {n["label"]: as_float(n["data"]) for n in named}
        self.grads: dict[str, float] = {n["label"]: as_float(n["grad"]) for n in named}
        self.torch_grads: dict[str, float] = {}
        self.numeric_grads: dict[str, float] = {}
        self.mismatches: list[str] = []
        self.learner_steps: list[Any] | None = None  # --engine: their closures, replayed
        self._listed: tuple[list[dict[str, Any]], int] | None = None
        self._rendered: Any = None  # render.Rendered, once laid out
        self._torch_svg: str | None = None
        self._render_error: str | None = None
        self._widget: Any = None  # weakref.ref to the widget, False if none can be made
        self.widget_error: str | None = None
        self._recorded: Any = None  # replay.RecordedGraph of the run, for nudge and set
        self._rebuild: Any = None  # () -> the model from the nodes' current numbers
        self._answers: list[dict[str, Any]] = []  # the quiz answers, as the widget sent them
        self._drawn: GraphModel | None = None

    # --- acting on the recorded graph: nudge, set, the quiz -----------------------------

    def bind_graph(self, record: Any, rebuild: Any, learner: bool = False) -> None:
        """What nudge and set work on (the pipeline gives it): how to make the recorded
        graph's plan (made on first use) and how to rebuild the model once its numbers
        changed."""
        self._record, self._rebuild, self._learner = record, rebuild, learner

    def recorded_graph(self) -> Any:
        """The plan of the recorded graph (`replay.RecordedGraph`), made once."""
        from micrograd_magics.nudge import NudgeError

        if self._recorded is None:
            if getattr(self, "_record", None) is None:
                raise NudgeError("this result has no recorded graph to act on")
            self._recorded = self._record()
        return self._recorded

    def nudge(self, label: str, h: float = 1e-3) -> Any:
        """Re-evaluate the recorded graph with `label` moved by h (nothing is changed): the
        root before and after, the slope (after - before) / h, and label's grad. Prints as
        the lecture's sentence."""
        from micrograd_magics.nudge import nudged

        return nudged(self.recorded_graph(), self.graph, label, h)

    def set(self, **values: float) -> AutogradResult:
        """Give leaves new values (`result.set(a=3.0)`), recompute forward and backward of
        the recorded graph, and update this result and its widget in place. The graph's
        Values (your variables) hold the new numbers. Returns the result."""
        from micrograd_magics.nudge import NudgeError, set_leaves

        graph = self.recorded_graph()
        if getattr(self, "_learner", False):
            raise NudgeError("set() works on the engine's Values: your class's _backward "
                             "closures keep numbers from the forward pass that made them (the "
                             "lecture's tanh keeps t); change the cell and run it again")
        set_leaves(graph, self.graph, values)
        self._replace_model(self._rebuild())
        return self

    def _replace_model(self, model: GraphModel) -> None:
        if "quiz" in self.graph:
            model["quiz"] = self.graph["quiz"]
        if "compare" in self.graph:
            self.warnings.append("set() changed the numbers: the comparison shown is of the "
                                 "values before; run the cell again to check the new ones")
        self.graph = model
        self._drawn = None
        if self.collapsed is not None:
            self.collapsed.then = {}  # the leaves hold the numbers set now
        named = [n for n in model["nodes"] if n["label"]]
        self.values = {n["label"]: as_float(n["data"]) for n in named}
        self.grads = {n["label"]: as_float(n["grad"]) for n in named}
        self._listed = None
        self._rendered = None  # the static SVG shows numbers: laid out again when asked
        self._render_error = None
        widget = self._widget() if isinstance(self._widget, weakref.ref) else None
        if widget is not None:
            widget.model = self.drawn_graph  # the front end rewrites the numbers in place

    def check_answers(self, predictions: dict[str, float]) -> dict[str, Any]:
        """The quiz in plain Python: each predicted gradient (label -> number) checked at
        the display precision; per label an Answer with .ok and .hint (the chain rule)."""
        from micrograd_magics.nudge import check

        return check(self.graph, predictions, self.graph.get("precision", 4))

    @property
    def answers(self) -> dict[str, list[str]]:
        """The quiz answers the learner typed in the widget: label -> what they typed, in
        order."""
        widget = self._widget() if isinstance(self._widget, weakref.ref) else None
        sent = list(getattr(widget, "answers", None) or self._answers)
        answers: dict[str, list[str]] = {}
        for answer in sent:
            answers.setdefault(str(answer.get("label", "")), []).append(
                str(answer.get("typed", "")))
        return answers

    _collapse: Any = None  # () -> collapse.CollapsedView: the pipeline's, made on first use
    _collapsed: Any = None

    def collapse_later(self, make: Any) -> None:
        """Draw the graph collapsed; the view is made when first needed (the display), so
        the cell's own run pays nothing for it."""
        self._collapse, self._collapsed = make, None

    @property
    def collapsed(self) -> Any:
        """The collapse.CollapsedView when the graph is drawn collapsed, else None."""
        if self._collapsed is None and self._collapse is not None:
            self._collapsed, self._collapse = self._collapse(), None
        return self._collapsed

    @property
    def drawn_graph(self) -> GraphModel:
        """The model the drawing shows: the collapsed one (collapse.py) when the graph is
        drawn collapsed, else `graph`."""
        if self.collapsed is None:
            return self.graph
        if self._drawn is None:
            self._drawn = self.collapsed.model()
        return self._drawn

    def expand(self, box: str) -> AutogradResult:
        """Expand a box of the collapsed drawing into its scalar nodes (by its name, e.g.
        "model.layers[0].neurons[3]", or its id), or fold it again; the widget redraws.
        Returns the result."""
        from micrograd_magics.collapse import toggle_box

        toggle_box(self, box)
        return self

    def _on_widget_message(self, widget: Any, content: dict[str, Any]) -> None:
        """The widget's nudge and set controls (see the widget's front end)."""
        from micrograd_magics.nudge import NudgeError

        if content.get("kind") in ("expand", "fold") and self.collapsed is not None:
            from micrograd_magics.collapse import toggle_box

            try:
                toggle_box(self, str(content.get("node")))
            except ValueError as error:
                widget.send({"kind": "error", "text": str(error)})
            return
        names = {r["id"]: r["label"] or r["name"] for r in self.graph["nodes"]}
        try:
            if content.get("kind") == "nudge":
                label = names.get(str(content.get("node")), str(content.get("node")))
                done = self.nudge(label, float(content.get("h", 1e-3)))
                widget.send({"kind": "nudged", "node": content.get("node"), "h": done.h,
                             "before": done.before, "after": done.after, "slope": done.slope,
                             "grad": done.grad, "text": done.text(self.graph["precision"])})
            elif content.get("kind") == "set":
                values = {names.get(k, k): v for k, v in (content.get("values") or {}).items()}
                self.set(**values)
                widget.send({"kind": "set_done", "values": content.get("values")})
        except (NudgeError, TypeError, ValueError) as error:
            widget.send({"kind": "error", "text": str(error)})

    # --- tables ----------------------------------------------------------------------

    def listed_nodes(self) -> tuple[list[dict[str, Any]], int]:
        """The named nodes the tables show, in graph order, and how many are left out: all
        of them when the graph is drawn; above the cap at most LISTED, chosen as the root,
        the leaves, then the first and last version of each name (`y#1` ... `y`)."""
        if self._listed is None:
            self._listed = self._choose_listed()
        return self._listed

    def _choose_listed(self) -> tuple[list[dict[str, Any]], int]:
        named = [n for n in self.graph["nodes"] if n["label"]]
        if not self.graph.get("truncated") or len(named) <= LISTED:
            return named, 0
        position = {id(n): i for i, n in enumerate(named)}
        first: dict[str, dict[str, Any]] = {}
        last: dict[str, dict[str, Any]] = {}
        for node in named:
            base = node["label"].partition("#")[0] or node["label"]
            first.setdefault(base, node)
            last[base] = node
        root = [n for n in named if n["id"] == self.graph.get("root")]
        leaves = [n for n in named if n.get("leaf")]
        chosen: dict[int, dict[str, Any]] = {}
        for node in [*root, *leaves, *(x for b in first for x in (first[b], last[b]))]:
            if len(chosen) >= LISTED:
                break
            chosen.setdefault(id(node), node)
        shown = sorted(chosen.values(), key=lambda n: position[id(n)])
        return shown, len(named) - len(shown)

    def table_rows(self) -> list[tuple[str, str, str]]:
        p = self.graph["precision"]
        grad = (lambda n: "?") if self.graph.get("quiz") else (  # noqa: E731
            lambda n: format_number(n["grad"], p))
        return [(readable(n["label"]), format_number(n["data"], p), grad(n))
                for n in self.listed_nodes()[0]]

    def more_line(self) -> str:
        """ "… and N more named nodes (every one is in .values and .grads)", or ""."""
        more = self.listed_nodes()[1]
        return (f"… and {more} more named nodes (every one is in .values and .grads)"
                if more else "")

    def text_table(self) -> str:
        """label, data, grad per named node; with a check, its column(s) and ✓/✗ too."""
        head = ["label", "data", "grad"]
        rows = [list(r) for r in self.table_rows()]
        compare = self.graph.get("compare") or {}
        columns = [str(c) for c in compare.get("columns") or []]
        if columns and compare.get("rows"):
            p = self.graph["precision"]
            by_label = {r["label"]: r for r in compare["rows"] if r.get("label")}
            head += [*columns, ""]
            for row, node in zip(rows, self.listed_nodes()[0]):
                checked = by_label.get(node["label"])
                for column in columns:
                    value = checked.get(column) if checked else None
                    row.append("—" if value is None else format_number(value, p))
                row.append("" if checked is None else ("✓" if checked.get("ok") else "✗"))
        table = [head, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                           for i, cell in enumerate(r)).rstrip() for r in table]
        lines.insert(1, "-" * max(len(line) for line in lines))
        if self.more_line():
            lines.append(self.more_line())
        return "\n".join(lines)

    def html_table(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{data}</td><td>{grad}</td></tr>"
            for label, data, grad in self.table_rows())
        more = self.more_line()
        if more:
            cells += f"<tr class='autograd-more'><td colspan='3'>{html.escape(more)}</td></tr>"
        return ("<table class='autograd-table autograd-static'><thead><tr><th>label</th>"
                f"<th>data</th><th>grad</th></tr></thead><tbody>{cells}</tbody></table>")

    def summary(self) -> str:
        model = self.graph
        root = next((n for n in model["nodes"] if n["id"] == model["root"]), None)
        name = root["name"] if root else "root"
        lines = [f"%%autograd: {model['node_count']} nodes, root {name}"]
        if self.collapsed is not None:
            boxes = self.drawn_graph["collapsed"]["boxes"]
            lines.append(f"drawn collapsed: {boxes} boxes for {model['node_count']:,} nodes "
                         f"(neurons, sums, loop steps); click a box to expand it, "
                         f"--expand draws every node")
        elif model["truncated"]:
            lines.append(
                f"{model['node_count']} nodes is more than --max-nodes "
                f"{self.options.max_nodes}: no graph drawn, the named nodes are listed. "
                f"Raise the cap with --max-nodes N or "
                f"%config AutogradMagics.max_nodes = N")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{self.summary()}\n{self.text_table()}"

    # --- display: the graph laid out once, shown as widget and as static SVG/HTML/text ---

    def _option(self, name: str, default: Any) -> Any:
        return getattr(self.options, name, default)

    def _layout(self) -> None:
        if self._rendered is not None or self._render_error is not None:
            return
        from micrograd_magics.render import LayoutTimeout, RenderError, render_svg

        if self.graph.get("truncated") and self.collapsed is None:
            self._render_error = ""  # no layout tried; summary() already says why
            return
        try:
            self._rendered = render_svg(self.drawn_graph, rankdir=self._option("rankdir", "LR"),
                                        renderer=self._option("renderer", "auto"))
        except LayoutTimeout as error:
            self._render_error = (f"graph not drawn: {error}; the table lists the named "
                                  f"values (--max-nodes N draws fewer nodes)")
        except (RenderError, ValueError) as error:
            self._render_error = f"graph not drawn: {error}"

    @property
    def svg(self) -> str | None:
        """The graph as SVG (without XML prolog), or None when it was not drawn."""
        self._layout()
        return self._rendered.svg if self._rendered else None

    @property
    def torch_svg(self) -> str | None:
        """torch's own autograd graph as SVG (with --torch-graph), else None."""
        torch_graph = self.graph.get("torch_graph")
        if not torch_graph or not torch_graph.get("nodes"):
            return None
        if self._torch_svg is None:
            from micrograd_magics.render import RenderError, render_torch_graph

            try:
                self._torch_svg = render_torch_graph(
                    torch_graph, rankdir=self._option("rankdir", "LR"),
                    renderer=self._option("renderer", "auto"))
            except (RenderError, ValueError) as error:
                self._torch_svg = ""
                self.warnings.append(f"torch's graph not drawn: {error}")
        return self._torch_svg or None

    @property
    def renderer(self) -> str | None:
        """Which layout program drew the graph: "dot" (the system Graphviz) or
        "graphviz-pure"; None when nothing was drawn (too many nodes, or no program)."""
        self._layout()
        return self._rendered.renderer if self._rendered else None

    @property
    def render_error(self) -> str | None:
        """Why the graph was not drawn (how to install a layout program), else None."""
        self._layout()
        return self._render_error or None

    @property
    def dot_source(self) -> str:
        """The graph as DOT source."""
        from micrograd_magics.render import to_dot

        return self._rendered.dot if self._rendered else to_dot(
            self.drawn_graph, self._option("rankdir", "LR"))

    def widget(self) -> Any:
        """The interactive AutogradWidget (made once), or None when there is no graph to
        show (too many nodes, no layout program) or no widget can be made here."""
        # held weakly: an open widget is kept alive by ipywidgets' registry until it is
        # closed, and a closed one (its cell ran again) should not stay in memory with
        # every result in Out; shown again, the result makes a new one
        widget = self._widget() if isinstance(self._widget, weakref.ref) else self._widget
        if widget is not False and (widget is None or getattr(widget, "comm", None) is None):
            widget = None
            if self.svg is not None:
                widget = self._new_widget()
        return widget or None

    def _new_widget(self) -> Any:
        try:
            from micrograd_magics.widget import AutogradWidget

            widget = AutogradWidget(self.drawn_graph, self.svg, renderer=self.renderer or "",
                                    torch_svg=self.torch_svg or "")
        except Exception as error:  # no comm / widget manager here: static display only
            self._widget = False
            self.widget_error = f"{type(error).__name__}: {error}"
            return None
        # weakly: the widget registry must not keep this result (and its graph) alive
        handler = weakref.WeakMethod(self._on_widget_message)
        if hasattr(widget, "message_handler"):
            widget.message_handler = lambda w, content: (h := handler()) and h(w, content)
        if "answers" in getattr(widget, "trait_names", lambda: [])():
            me = weakref.ref(self)
            widget.observe(lambda change: (r := me()) and setattr(r, "_answers", change.new),
                           names="answers")
        self._widget = weakref.ref(widget)
        return widget

    def _displayed_widget(self) -> Any:
        """The widget for a mime bundle: once shown as this result's output, it is closed
        when the cell runs again or the result is garbage collected (a widget taken with
        `widget()` and kept is the caller's to close)."""
        widget = self.widget()
        if widget is not None and not getattr(widget, "_autograd_shown", False):
            widget._autograd_shown = True
            remember_widget(widget)
            weakref.finalize(self, _close_widget, weakref.ref(widget))
        return widget

    def save(self, path: str | Path) -> Path:
        """Write the graph: "graph.html" (a standalone page with the interactive graph: hover,
        click, step through backward; no network needed), "graph.svg", "graph.png" (through
        the same layout program's -Tpng) or "graph.dot". Returns the path."""
        from micrograd_magics.render import save

        target = Path(path).expanduser()
        if not target.parent.is_dir():
            raise SaveError(f"cannot save {target.name}: the folder {target.parent} does not "
                            f"exist")
        try:
            if target.suffix.lower() in (".html", ".htm"):
                from micrograd_magics.inline import standalone_page

                if self.svg is None:
                    raise ValueError(f"cannot save {target.name!r}: "
                                     f"{self.render_error or 'no graph'}")
                root = next((n for n in self.graph["nodes"] if n["id"] == self.graph["root"]),
                            {})
                target.write_text(standalone_page(self.static_html(interactive=True),
                                                  f"%%autograd: {root.get('name', 'graph')}"),
                                  encoding="utf-8")
                return target
            return save(self.drawn_graph, target, rankdir=self._option("rankdir", "LR"),
                        renderer=self._option("renderer", "auto"), svg=self.svg)
        except OSError as error:  # no permission, a folder of that name, a full disk
            raise SaveError(f"cannot save {target.name}: {error.strerror or error}") from None

    def notes(self) -> list[str]:
        """The summary's lines plus why the graph was not drawn, if it was not."""
        lines = self.summary().splitlines()
        if self.render_error:
            lines.append(self.render_error)
        return [readable(line) for line in lines]

    def compare_html(self) -> str:
        """The "compare" section of the model as a table, failures first ("" if none)."""
        compare = self.graph.get("compare") or {}
        rows = compare.get("rows") or []
        if not rows:
            return ""
        p = self.graph.get("precision", 4)
        columns = [str(c) for c in compare.get("columns") or []]
        number = lambda x: "—" if x is None else html.escape(format_number(x, p))  # noqa: E731
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["label", "engine", *columns,
                                                               "diff", ""])
        body = []
        ordered = sorted(rows, key=lambda r: bool(r.get("ok")))
        if self.graph.get("truncated") and len(ordered) > LISTED:  # failures come first
            more = len(ordered) - LISTED
            ordered = ordered[:LISTED]
        else:
            more = 0
        for row in ordered:
            style = "" if row.get("ok") else " style='color:#d62728;font-weight:bold'"
            cells = [html.escape(readable(str(row.get("label", row.get("id", ""))))),
                     number(row.get("engine")), *(number(row.get(c)) for c in columns),
                     number(row.get("diff")) if "diff" in row else "—",
                     "✓" if row.get("ok") else "✗"]
            body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        if more:
            body.append(f"<tr class='autograd-more'><td colspan='{len(columns) + 4}'>… and "
                        f"{more} more rows (.torch_grads, .mismatches hold them all)</td></tr>")
        return (f"<table class='autograd-compare autograd-static'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def static_html(self, with_graph: bool = True, extra_note: str = "",
                    interactive: bool | None = None) -> str:
        """The graph SVG, the comparison (if any) and the grads table, as one HTML block.

        Unless --static (or `interactive=False`), it also carries the widget's front end
        (see `micrograd_magics.inline`): where scripts run, with no kernel, the static graph
        becomes the interactive one; where they do not, the static graph is what shows."""
        from micrograd_magics import inline

        lines = [*self.notes(), *([extra_note] if extra_note else [])]
        notes = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
        svg = self.svg if with_graph else None
        graph = (f"<div class='autograd-graph autograd-static' style='overflow:auto;"
                 f"max-width:100%;max-height:80vh'>{svg}</div>" if svg else "")
        torch_svg = self.torch_svg
        torch_graph = (f"<div class='autograd-static'><p>torch's autograd graph (each node: "
                       f"the value it computes)</p><div class='autograd-torch-graph' "
                       f"style='overflow:auto;max-width:100%'>{torch_svg}</div></div>"
                       if torch_svg else "")
        if interactive is None:
            interactive = not self._option("static", False)
        host_id = inline.new_host_id()
        live = (inline.interactive_parts(host_id, self.drawn_graph, self.renderer or "")
                if interactive and svg else "")
        page = (f"<div class='autograd-result' id='{host_id}'>{notes}{graph}{torch_graph}"
                f"{self.compare_html()}{self.html_table()}{live}</div>")
        # ASCII with character references (✓ is &#10003;): a str of one byte a character,
        # which matters because IPython 9 keeps every output's bundle in its history
        return page.encode("ascii", "xmlcharrefreplace").decode("ascii")

    def _repr_html_(self) -> str:
        return self.static_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The widget view (unless --static) plus image/svg+xml, text/html and text/plain,
        so JupyterLab, Notebook, VS Code and Colab show the widget and nbconvert, GitHub
        and terminal IPython still show the graph or the table."""
        plain = [*self.notes(), self.text_table()]
        bundle: dict[str, Any] = {"text/plain": "\n".join(plain),
                                  "text/html": self.static_html()}
        svg = self.svg
        if svg is not None:
            # the graph twice (its own SVG and inside the HTML) only while the bundle, which
            # the notebook saves, stays within BUNDLE_BUDGET; then once, in the HTML that
            # the front ends and nbconvert prefer; then not at all, with a note
            cost = len(json.dumps(svg))
            rest = len(json.dumps(bundle)) - cost
            if rest + 2 * cost <= BUNDLE_BUDGET:
                bundle["image/svg+xml"] = svg
            elif rest + cost > BUNDLE_BUDGET:
                note = (f"the graph ({cost // 1000:,} KB of SVG) is left out of the saved "
                        f"output to keep it under {BUNDLE_BUDGET // 1_000_000} MB: the widget "
                        f"draws it, result.save('graph.svg') writes it")
                bundle["text/plain"] = "\n".join([*plain[:-1], note, plain[-1]])
                bundle["text/html"] = self.static_html(with_graph=False, extra_note=note)
        if not self._option("static", False):
            widget = self._displayed_widget()
            if widget is not None:
                bundle[WIDGET_MIME] = {"version_major": 2, "version_minor": 0,
                                       "model_id": widget.model_id}
        return bundle
