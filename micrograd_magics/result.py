"""AutogradResult: what %%autograd returns (so `_` holds it) and how it displays."""

from __future__ import annotations

import html
from typing import Any

from engine import Value
from micrograd_magics.graph import GraphModel, as_float, format_number


class AutogradResult:
    """The outcome of one %%autograd run.

    - `root`: the Value that was differentiated
    - `values`, `grads`: label -> float for every labelled node of the graph
    - `graph`: the plain graph model (see `micrograd_magics.graph`)
    - `torch_grads`, `mismatches`: with --torch (label -> torch's grad; labels that disagree)
    - `warnings`: non-finite data or gradients, by node
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
        self.renderer: str | None = None

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
        return ("<table class='autograd-table'><thead><tr><th>label</th><th>data</th>"
                f"<th>grad</th></tr></thead><tbody>{cells}</tbody></table>")

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

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary().splitlines())
        return f"<div class='autograd-result'>{notes}{self.html_table()}</div>"
