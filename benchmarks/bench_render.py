"""From cell text to display payload: %%autograd through a real IPython shell, then the
result's `_repr_mimebundle_()` (DOT, layout, SVG decoration, static HTML, widget).

    python benchmarks/bench_render.py [--repeat 9] [--renderer graphviz-pure|dot|both]

Targets: <= 150 ms for the lecture graphs (under 50 nodes), <= 1.5 s for a 1,000-node
graph with graphviz-pure. Also printed: how much of it is the layout program, and the
payload: the mime bundle (what a notebook saves) and the widget's synced state (what the
comm sends: model + SVG), in bytes per node. Figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the lecture cells the tests check by hand

from cells import LECTURE, NEURON  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from micrograd_magics import render  # noqa: E402

SETUP = """
import random
from engine.nn import MLP
random.seed(1337)
tiny = MLP(2, [3, 1])
big = MLP(4, [16, 16, 1])
"""

CELLS = {
    "lecture (a*b+c)*f": ("", LECTURE),
    "neuron, tanh": ("", NEURON),
    "neuron, tanh from exp": ("", NEURON.replace("o = tanh(n)",
                                                 "e = exp(2*n)\no = (e - 1) / (e + 1)")),
    "MLP(2,[3,1]) one point": ("", """\
x = [2.0, -1.0]
y = tiny(x)
L = (y - 1.0)**2"""),
    "MLP(4,[16,16,1]) one point": ("--max-nodes 2000", """\
x = [2.0, -1.0, 0.5, 1.5]
y = big(x)
L = (y - 1.0)**2"""),
}
LECTURE_TARGET_MS, BIG_TARGET_MS = 150.0, 1500.0


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the layout program): steadier
    than wall time on a shared machine."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(shell: InteractiveShell, line: str, cell: str, repeat: int) -> dict:
    layout_times: list[float] = []
    real_layout = render.layout

    def timed_layout(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real_layout(*args, **kwargs)
        finally:
            layout_times.append(time.perf_counter() - t)

    render.layout = timed_layout
    times, cpu = [], []
    try:
        for _ in range(repeat):
            t, c = time.perf_counter(), cpu_seconds()
            result = shell.run_cell_magic("autograd", line, cell)
            bundle = result._repr_mimebundle_()
            times.append(time.perf_counter() - t)
            cpu.append(cpu_seconds() - c)
    finally:
        render.layout = real_layout
    nodes = result.graph["node_count"]
    bundle_bytes = len(json.dumps(bundle).encode())
    widget = result.widget()
    state = widget.get_state(["model", "svg", "step"]) if widget else {}
    state_bytes = len(json.dumps(state).encode())
    return {"nodes": nodes, "renderer": result.renderer, "first": times[0],
            "median": statistics.median(times[1:] or times), "min": min(times),
            "cpu": statistics.median(cpu[1:] or cpu),
            "layout": statistics.median(layout_times) if layout_times else 0.0,
            "bundle": bundle_bytes, "state": state_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--renderer", default="both", choices=["both", "graphviz-pure", "dot"])
    args = parser.parse_args()
    renderers = ["graphviz-pure", "dot"] if args.renderer == "both" else [args.renderer]
    if "dot" in renderers and shutil.which("dot") is None:
        print("no system dot on PATH: graphviz-pure only")
        renderers.remove("dot")
    shell = InteractiveShell.instance()
    t = time.perf_counter()
    shell.run_line_magic("load_ext", "micrograd_magics")
    print(f"%load_ext micrograd_magics: {1000 * (time.perf_counter() - t):.0f} ms")
    shell.run_cell(SETUP)
    header = (f"{'graph':<28} {'renderer':<14} {'nodes':>5} {'first':>8} {'median':>8} "
              f"{'cpu':>8} {'layout':>8} {'bundle B/node':>14} {'widget B/node':>14}  target")
    print(header)
    print("-" * len(header))
    verdicts = []
    for renderer in renderers:
        shell.run_line_magic("config", f"AutogradMagics.renderer = {renderer!r}")
        for name, (line, cell) in CELLS.items():
            m = measure(shell, line, cell, args.repeat)
            target = LECTURE_TARGET_MS if m["nodes"] < 50 else (
                BIG_TARGET_MS if m["nodes"] >= 500 else None)
            verdict = ""
            if target is not None:
                ok = 1000 * m["median"] <= target
                verdict = f"<= {target:.0f} ms {'ok' if ok else 'MISSED'}"
                verdicts.append(ok)
            print(f"{name:<28} {m['renderer']:<14} {m['nodes']:>5} "
                  f"{1000 * m['first']:>6.0f}ms {1000 * m['median']:>6.1f}ms "
                  f"{1000 * m['cpu']:>6.1f}ms "
                  f"{1000 * m['layout']:>6.1f}ms {m['bundle'] / m['nodes']:>14.0f} "
                  f"{m['state'] / m['nodes']:>14.0f}  {verdict}")
    print("first: the first run (imports anywidget/ipywidgets on the first display); median: "
          f"wall time, median of the other {args.repeat - 1} (the target applies to it); cpu: "
          "CPU time of the kernel and the layout program; layout: the layout program alone "
          "(wall). bundle: the mime bundle as JSON; widget: the synced model + svg + step.")
    print("all targets met" if all(verdicts) else "some targets MISSED")


if __name__ == "__main__":
    main()
