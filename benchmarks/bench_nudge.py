"""Nudge and set on the recorded graph: the Python re-evaluation a widget message pays.

    python benchmarks/bench_nudge.py [--repeat 200]

A 300-node graph (a neuron layer's worth: y = tanh(sum of w_i * x_i + b), repeated) is
made once by %%autograd in a real IPython shell; then `result.nudge("w[0]")` (two forward
passes over the recorded graph) and `result.set(...)` (forward, backward step by step, a
new model) are timed, medians against the 20 ms budget. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

BUDGET_MS = 20.0
CELL = """\
w = [0.1 * (i % 7 - 3) for i in range(75)]
x = [0.05 * (i % 5 - 2) for i in range(75)]
b = 0.2
h = b
for i in range(75):
    h = h + w[i] * x[i]
y = tanh(h) * 2.0 + sigmoid(h)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "micrograd_magics")
    # the lists are literals of numbers in the cell, so their items are leaves w[0], ...
    cell = CELL.replace("[0.1 * (i % 7 - 3) for i in range(75)]",
                        repr([0.1 * (i % 7 - 3) for i in range(75)]))
    cell = cell.replace("[0.05 * (i % 5 - 2) for i in range(75)]",
                        repr([0.05 * (i % 5 - 2) for i in range(75)]))
    result = shell.run_cell_magic("autograd", "y --max-nodes 400", cell)
    nodes = result.graph["node_count"]
    timings: dict[str, list[float]] = {"nudge": [], "set": []}
    for k in range(args.repeat):
        start = time.perf_counter()
        result.nudge("w[0]", 1e-3)
        timings["nudge"].append(time.perf_counter() - start)
        start = time.perf_counter()
        result.set(**{"w[0]": -0.3 + 0.001 * (k % 2)})
        timings["set"].append(time.perf_counter() - start)
    print(f"recorded graph of {nodes} nodes, {args.repeat} runs each, median")
    for name, samples in timings.items():
        ms = statistics.median(samples) * 1000
        print(f"  result.{name:<6} {ms:7.2f} ms   (budget {BUDGET_MS:.0f} ms: "
              f"{'PASS' if ms <= BUDGET_MS else 'FAIL'})")


if __name__ == "__main__":
    main()
