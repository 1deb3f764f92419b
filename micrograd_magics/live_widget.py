"""LiveWidget: the --live training view (front end: static/live.js, static/live.css).

It reads only plain JSON state (`live_view.live_state`), never engine objects.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

from micrograd_magics.widget import STATIC


class LiveWidget(anywidget.AnyWidget):
    """The training as it runs. Synced state:

    - `state`: one update (see `live_view.live_state`): status ("running", "done",
      "interrupted", "failed"), steps, loss, curve [[step, loss], ...], layers (per layer
      heatmaps of data and grad, dead rows), lines (plain Values), notes
    - `boundary`: sent once: the 2-D points, their classes and the MLP's ReLU layers; the
      front end evaluates the MLP from the weights in `state` on a grid
    - `log_scale`: the loss axis in log scale (the checkbox sets it; Python may too)
    """

    # the files' text, not their paths (see widget.py: a watched file keeps every widget)
    _esm = (STATIC / "live.js").read_text(encoding="utf-8")
    _css = (STATIC / "live.css").read_text(encoding="utf-8")

    state = traitlets.Dict().tag(sync=True)
    boundary = traitlets.Dict().tag(sync=True)
    log_scale = traitlets.Bool(False).tag(sync=True)

    def close(self) -> None:
        """Close the widget and its Layout widget (a second comm, see widget.py)."""
        layout = self.layout if self.comm is not None else None
        super().close()
        if layout is not None:
            layout.close()


def combined(live: Any, graph: Any) -> Any:
    """The cell's one view: the live widget, with the last step's graph widget below it
    when there is one (an ipywidgets VBox of the two)."""
    if live is None:
        return None
    if graph is None:
        return live
    import ipywidgets

    from micrograd_magics.result import remember_widget

    box = ipywidgets.VBox([live, graph])
    remember_widget(box)
    return box


__all__ = ["LiveWidget", "combined"]
