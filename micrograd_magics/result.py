"""AutogradResult: what %%autograd returns (so `_` holds it) and how it displays."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from engine import Value
from micrograd_magics.graph import GraphModel, as_float, format_number

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


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
        self._rendered: Any = None  # render.Rendered, once laid out
        self._torch_svg: str | None = None
        self._render_error: str | None = None
        self._widget: Any = None
        self.widget_error: str | None = None

    # --- tables ----------------------------------------------------------------------

    def table_rows(self) -> list[tuple[str, str, str]]:
        p = self.graph["precision"]
        return [(n["label"], format_number(n["data"], p), format_number(n["grad"], p))
                for n in self.graph["nodes"] if n["label"]]

    def text_table(self) -> str:
        rows = [("label", "data", "grad"), *self.table_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def html_table(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{data}</td><td>{grad}</td></tr>"
            for label, data, grad in self.table_rows())
        return ("<table class='autograd-table autograd-static'><thead><tr><th>label</th>"
                f"<th>data</th><th>grad</th></tr></thead><tbody>{cells}</tbody></table>")

    def summary(self) -> str:
        model = self.graph
        root = next((n for n in model["nodes"] if n["id"] == model["root"]), None)
        name = root["name"] if root else "root"
        lines = [f"%%autograd: {model['node_count']} nodes, root {name}"]
        if model["truncated"]:
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
        from micrograd_magics.render import RenderError, render_svg

        if self.graph.get("truncated"):
            self._render_error = ""  # no layout tried; summary() already says why
            return
        try:
            self._rendered = render_svg(self.graph, rankdir=self._option("rankdir", "LR"),
                                        renderer=self._option("renderer", "auto"))
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
            self.graph, self._option("rankdir", "LR"))

    def widget(self) -> Any:
        """The interactive AutogradWidget (made once), or None when there is no graph to
        show (too many nodes, no layout program) or no widget can be made here."""
        if self._widget is None and self.svg is not None:
            try:
                from micrograd_magics.widget import AutogradWidget

                self._widget = AutogradWidget(self.graph, self.svg, renderer=self.renderer or "",
                                              torch_svg=self.torch_svg or "")
            except Exception as error:  # no comm / widget manager here: static display only
                self._widget = False
                self.widget_error = f"{type(error).__name__}: {error}"
        return self._widget or None

    def save(self, path: str | Path) -> Path:
        """Write the graph: "graph.html" (a standalone page with the interactive graph: hover,
        click, step through backward; no network needed), "graph.svg", "graph.png" (through
        the same layout program's -Tpng) or "graph.dot". Returns the path."""
        from micrograd_magics.render import save

        path = Path(path)
        if path.suffix.lower() in (".html", ".htm"):
            from micrograd_magics.inline import standalone_page

            if self.svg is None:
                raise ValueError(f"cannot save {path.name!r}: {self.render_error or 'no graph'}")
            root = next((n for n in self.graph["nodes"] if n["id"] == self.graph["root"]), {})
            path.write_text(standalone_page(self.static_html(interactive=True),
                                            f"%%autograd: {root.get('name', 'graph')}"),
                            encoding="utf-8")
            return path

        return save(self.graph, path, rankdir=self._option("rankdir", "LR"),
                    renderer=self._option("renderer", "auto"), svg=self.svg)

    def notes(self) -> list[str]:
        """The summary's lines plus why the graph was not drawn, if it was not."""
        lines = self.summary().splitlines()
        if self.render_error:
            lines.append(self.render_error)
        return lines

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
        for row in sorted(rows, key=lambda r: bool(r.get("ok"))):
            style = "" if row.get("ok") else " style='color:#d62728;font-weight:bold'"
            cells = [html.escape(str(row.get("label", row.get("id", "")))),
                     number(row.get("engine")), *(number(row.get(c)) for c in columns),
                     number(row.get("diff")) if "diff" in row else "—",
                     "✓" if row.get("ok") else "✗"]
            body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return (f"<table class='autograd-compare autograd-static'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def static_html(self, interactive: bool | None = None) -> str:
        """The graph SVG, the comparison (if any) and the grads table, as one HTML block.

        Unless --static (or `interactive=False`), it also carries the widget's front end
        (see `micrograd_magics.inline`): where scripts run, with no kernel, the static graph
        becomes the interactive one; where they do not, the static graph is what shows."""
        from micrograd_magics import inline

        notes = "".join(f"<p>{html.escape(line)}</p>" for line in self.notes())
        svg = self.svg
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
        live = (inline.interactive_parts(host_id, self.graph, self.renderer or "")
                if interactive and svg else "")
        return (f"<div class='autograd-result' id='{host_id}'>{notes}{graph}{torch_graph}"
                f"{self.compare_html()}{self.html_table()}{live}</div>")

    def _repr_html_(self) -> str:
        return self.static_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The widget view (unless --static) plus image/svg+xml, text/html and text/plain,
        so JupyterLab, Notebook, VS Code and Colab show the widget and nbconvert, GitHub
        and terminal IPython still show the graph or the table."""
        bundle: dict[str, Any] = {"text/plain": "\n".join([*self.notes(), self.text_table()]),
                                  "text/html": self.static_html()}
        if self.svg is not None:
            bundle["image/svg+xml"] = self.svg
        if not self._option("static", False):
            widget = self.widget()
            if widget is not None:
                bundle[WIDGET_MIME] = {"version_major": 2, "version_minor": 0,
                                       "model_id": widget.model_id}
        return bundle
