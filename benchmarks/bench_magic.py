"""Overhead of %%autograd over the same code run on the engine directly, in one run.

    python benchmarks/bench_magic.py [--repeat 15]

The cell is loop-heavy: an MLP(2, [16, 16, 1]) forward over 100 points and a max-margin
loss, then backward. "direct" runs that code with exec() in a real IPython shell and calls
loss.backward(); "%%autograd" runs it through the magic (AST transform, labelling, zeroing,
backward, result model). Target: %%autograd <= 1.3x direct.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

SETUP = """
import random
from engine import Value
from engine.nn import MLP
random.seed(1337)
model = MLP(2, [16, 16, 1])
rng = random.Random(1)
X = [[rng.uniform(-1, 2), rng.uniform(-1, 1)] for _ in range(100)]
Y = [1 if rng.random() < 0.5 else -1 for _ in range(100)]
"""

CELL = """scores = [model(x) for x in X]
losses = [(1 + -yi * si).relu() for yi, si in zip(Y, scores)]
loss = sum(losses) * (1.0 / len(losses))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "micrograd_magics")
    shell.run_cell(SETUP)
    code = compile(CELL, "<direct>", "exec")

    def direct() -> None:
        exec(code, shell.user_ns)
        model = shell.user_ns["model"]
        model.zero_grad()
        shell.user_ns["loss"].backward()

    def magic() -> None:
        shell.run_cell_magic("autograd", "loss", CELL)

    times: dict[str, list[float]] = {"direct": [], "%%autograd": []}
    for run in (direct, magic):  # warm up
        run()
    gc.collect()
    gc.freeze()
    for _ in range(args.repeat):
        for name, run in (("direct", direct), ("%%autograd", magic)):
            gc.collect()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    result = shell.run_cell_magic("autograd", "loss", CELL)
    nodes = result.graph["node_count"]
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    ratio = ms["%%autograd"] / ms["direct"]
    print(f"MLP(2, [16, 16, 1]) forward over 100 points + backward, {nodes:,} nodes, "
          f"median of {args.repeat}")
    print(f"   direct       {ms['direct']:8.1f} ms")
    print(f"   %%autograd   {ms['%%autograd']:8.1f} ms")
    print(f"   ratio        {ratio:8.2f}x   (target <= 1.3x: {'PASS' if ratio <= 1.3 else 'FAIL'})")


if __name__ == "__main__":
    main()
