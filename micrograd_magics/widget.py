"""AutogradWidget: the graph's SVG with hover explanations, path highlighting and a
step-by-step replay of the backward pass (front end: static/widget.js, static/widget.css).

It reads only the graph model and the SVG `render.py` made from it. The front end is one
hand-written ES module, loaded from the package files (no JS build step); anywidget runs
it in JupyterLab, Notebook 7, VS Code and Colab, with ipywidgets 7 or 8.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from micrograd_magics.graph import GraphModel

STATIC = Path(__file__).parent / "static"


class AutogradWidget(anywidget.AnyWidget):
    """The interactive graph. Synced state:

    - `model`: the graph model (dict), as `graph.build_model` made it
    - `svg`: the decorated SVG of `render.render_svg`
    - `step`: how many backward steps are applied (0: before the backward pass, every grad
      0; len(model["steps"]): all of them, the final grads). Synced both ways: the slider
      and buttons set it, and Python can read or set it.
    - `selected`: the model id of the node whose paths to the root are highlighted ("" for
      none); set by a click in the browser, or from Python
    - `renderer`: which layout program drew the SVG ("dot" or "graphviz-pure")
    - `torch_svg`: torch's own autograd graph as SVG (with --torch-graph), else ""
    - `answers`: the quiz answers the front end appended (with model["quiz"]), one dict
      per answer: {"node", "label", "step", "typed", "ok", "try"}

    Custom messages from the front end (nudge, set) go to `message_handler(widget,
    content)` when one is set (the result sets it); without one they are ignored.
    """

    # the files' text, not their paths: anywidget turns a path into a watched file whose
    # change signal keeps a reference to every widget ever made, so closed widgets were
    # never freed (100 re-runs of a cell: 100 widgets alive)
    _esm = (STATIC / "widget.js").read_text(encoding="utf-8")
    _css = (STATIC / "widget.css").read_text(encoding="utf-8")

    model = traitlets.Dict().tag(sync=True)
    svg = traitlets.Unicode("").tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    renderer = traitlets.Unicode("").tag(sync=True)
    torch_svg = traitlets.Unicode("").tag(sync=True)
    answers = traitlets.List().tag(sync=True)

    def __init__(self, model: GraphModel, svg: str, *, renderer: str = "",
                 step: int | None = None, **kwargs: Any) -> None:
        steps = len(model.get("steps") or [])
        super().__init__(model=model, svg=svg, renderer=renderer,
                         step=steps if step is None else step, **kwargs)
        self.message_handler: Callable[[AutogradWidget, dict[str, Any]], None] | None = None
        self.on_msg(self._on_message)

    def _on_message(self, widget: AutogradWidget, content: Any, buffers: list[Any]) -> None:
        if self.message_handler is not None and isinstance(content, dict):
            self.message_handler(self, content)

    def close(self) -> None:
        """Close the widget and the Layout widget ipywidgets made for it (a second comm
        that would otherwise stay open)."""
        layout = self.layout if self.comm is not None else None
        super().close()
        if layout is not None:
            layout.close()

    @property
    def step_count(self) -> int:
        """The number of backward steps in the model (the seed `dL/dL = 1` is step 1)."""
        return len(self.model.get("steps") or [])

    @traitlets.validate("step")
    def _clamp_step(self, proposal: dict[str, Any]) -> int:
        return max(0, min(int(proposal["value"]), self.step_count))

    def grads_at(self, step: int | None = None) -> dict[str, float | str]:
        """Node id -> the grad the graph shows after `step` backward steps (default: the
        current step): the replay the front end does, for tests and for Python readers."""
        step = self.step if step is None else step
        grads: dict[str, float | str] = {n["id"]: 0.0 for n in self.model.get("nodes", [])}
        for entry in (self.model.get("steps") or [])[:step]:
            for update in entry.get("updates", []):
                grads[update["target"]] = update["after"]
        return grads

    @classmethod
    def from_model(cls, model: GraphModel, rankdir: str = "LR",
                   renderer: str = "auto") -> AutogradWidget:
        """Lay the model out (see `render.render_svg`) and wrap it in a widget."""
        from micrograd_magics.render import render_svg

        rendered = render_svg(model, rankdir=rankdir, renderer=renderer)
        return cls(model, rendered.svg, renderer=rendered.renderer)


__all__ = ["AutogradWidget"]
