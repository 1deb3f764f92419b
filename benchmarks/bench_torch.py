"""What `--torch` adds to a %%autograd cell, once torch is imported: the lecture cell run
with and without `--torch`, side by side in one real IPython shell, many repetitions,
medians compared against the budget of 50 ms; then two cells of about 10^5 nodes (an MLP
over many points, and a chain), where the time `--torch` adds is compared with the
engine's own time for the cell (budget 1.5x).

    python benchmarks/bench_torch.py
    python benchmarks/bench_torch.py --repeat 500 --big-repeat 5

`--torch` replays the recorded graph (never the cell): wide graphs a level at a time (one
vector op per op and level), deep ones node by node. The big cells are timed twice: with
the collector running (a full collection, which walks every live Value, lands in
whichever run crosses its threshold) and paused (the work itself). For the chain, torch's
own time for the same graph written directly in torch is printed too: no replay through
torch's autograd can add less than that.

The two variants alternate (plain, torch, plain, torch, ...) so drift in the machine hits
both alike. Each cell runs the shell's way (`run_cell`, silent: no display, no history),
so the figure includes parsing the magic line, the engine run, the torch replay and the
comparison table. The first `--torch` cell of the process also imports torch; that one-off
cost is printed separately and is not part of the budget. Nothing here asserts: the test
suite never checks timings.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the lecture cells the tests check by hand

from cells import LECTURE  # noqa: E402

BUDGET_MS = 50.0
BIG_BUDGET = 1.5  # what --torch adds, over the plain cell's own time

BIG_SETUP = """
import random
from engine.nn import MLP
random.seed(1337)
model = MLP(2, [16, 16, 1])
rng = random.Random(1)
X = [[rng.uniform(-1, 2), rng.uniform(-1, 1)] for _ in range(150)]
Y = [1 if rng.random() < 0.5 else -1 for _ in range(150)]
"""
BIG_CELLS = {
    "MLP(2,[16,16,1]) over 150 points": (
        "scores = [model(x) for x in X]\n"
        "losses = [(1 + -yi * si).relu() for yi, si in zip(Y, scores)]\n"
        "loss = sum(losses) * (1.0 / len(losses))"),
    "chain y = y*w + c, 50,000 steps": (
        "w = 0.999\nc = 0.001\ny = 1.0\nfor i in range(50000):\n    y = y * w + c"),
}


def shell():
    """A real IPython shell with the extension loaded."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "micrograd_magics")
    return ip


def run_once(ip, line: str) -> float:
    """Seconds for one `%%autograd <line>` lecture cell."""
    source = f"%%autograd {line}".rstrip() + "\n" + LECTURE
    start = time.perf_counter()
    outcome = ip.run_cell(source, silent=True)
    elapsed = time.perf_counter() - start
    outcome.raise_error()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300, help="runs of each variant")
    parser.add_argument("--big-repeat", type=int, default=3, help="runs of each big cell")
    args = parser.parse_args()

    ip = shell()
    started = "torch" in sys.modules
    first = run_once(ip, "--torch")  # imports torch (unless something already did)
    try:
        import torch
    except ImportError:
        print('torch is not installed: pip install "micrograd-magics[torch]"')
        return 1
    for _ in range(20):  # warm up both paths
        run_once(ip, "")
        run_once(ip, "--torch")

    # no gc.collect() per run: with torch imported one costs ~0.4 s; the collector runs
    # as it would in a notebook, and each variant pays for the garbage it makes
    gc.collect()
    plain, with_torch = [], []
    for _ in range(args.repeat):
        plain.append(run_once(ip, ""))
        with_torch.append(run_once(ip, "--torch"))

    ms = lambda seconds: seconds * 1000.0  # noqa: E731
    p, t = ms(statistics.median(plain)), ms(statistics.median(with_torch))
    diff = t - p
    print(f"lecture cell, {args.repeat} runs each, median (torch {torch.__version__}, "
          f"Python {sys.version.split()[0]})")
    print(f"  %%autograd            {p:8.3f} ms")
    print(f"  %%autograd --torch    {t:8.3f} ms")
    print(f"  --torch adds          {diff:8.3f} ms   (budget {BUDGET_MS:.0f} ms: "
          f"{'PASS' if diff <= BUDGET_MS else 'FAIL'})")
    print(f"  spread (p10-p90) with --torch: {ms(quantile(with_torch, 0.1)):.3f}-"
          f"{ms(quantile(with_torch, 0.9)):.3f} ms")
    note = "torch was already imported" if started else "includes importing torch"
    print(f"  first --torch cell of the process: {ms(first):.1f} ms ({note}; not budgeted)")
    big_cells(ip, args.big_repeat)
    return 0


def run_big(ip, line: str, cell: str) -> float:
    start = time.perf_counter()
    outcome = ip.run_cell(f"%%autograd {line}".rstrip() + "\n" + cell, silent=True)
    elapsed = time.perf_counter() - start
    outcome.raise_error()
    return elapsed


def big_cells(ip, repeat: int) -> None:
    ip.run_cell(BIG_SETUP).raise_error()
    for name, cell in BIG_CELLS.items():
        run_big(ip, "", cell)
        result = ip.run_cell_magic("autograd", "--torch", cell)
        nodes, mismatches = result.graph["node_count"], len(result.mismatches)
        del result
        print(f"{name}: {nodes:,} nodes, {repeat} runs each, median; {mismatches} mismatches")
        # With the collector running, a full collection (it walks every live Value: this
        # cell's graph and the ones the notebook still holds) lands in whichever run
        # crosses its threshold; paused, the figures are the work itself.
        for collector in ("running", "paused"):
            plain, with_torch = [], []
            for _ in range(repeat):
                for line, samples in (("", plain), ("--torch", with_torch)):
                    gc.collect()
                    if collector == "paused":
                        gc.disable()
                    try:
                        samples.append(run_big(ip, line, cell))
                    finally:
                        gc.enable()
            p, t = statistics.median(plain), statistics.median(with_torch)
            ratio = (t - p) / p
            print(f"  gc {collector:7}  %%autograd {p * 1000:7.1f} ms, --torch {t * 1000:7.1f} ms: "
                  f"--torch adds {ratio:.2f}x the cell's own time (budget {BIG_BUDGET}x: "
                  f"{'PASS' if ratio <= BIG_BUDGET else 'FAIL'})")
        if name.startswith("chain"):
            floor = statistics.median(torch_chain_seconds() for _ in range(repeat))
            print(f"  torch's own floor: the same chain written in torch (0-d float64 tensors, "
                  f"forward + backward, gc paused) takes {floor * 1000:.0f} ms = "
                  f"{floor / p:.1f}x the plain cell: a replay that runs torch's autograd on "
                  f"this graph cannot add less")


def torch_chain_seconds(steps: int = 50_000) -> float:
    """The chain cell written directly in torch, as a learner cross-checking by hand would."""
    import torch

    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        w = torch.tensor(0.999, dtype=torch.float64, requires_grad=True)
        c = torch.tensor(0.001, dtype=torch.float64, requires_grad=True)
        y = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        out = y
        for _ in range(steps):
            out = out * w + c
        out.backward()
        return time.perf_counter() - start
    finally:
        gc.enable()


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    sys.exit(main())
