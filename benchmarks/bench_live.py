"""What `--live` costs a training loop: example 04's loop (MLP(2, [16, 16, 1]) on 100
two-moons points, hinge loss + L2, forward, backward and update per step) run plainly and
with `%%autograd --live`, side by side in one real IPython shell, then the size of one
update the live view is sent.

    python benchmarks/bench_live.py
    python benchmarks/bench_live.py --steps 40 --repeat 5

The variants alternate (plain, --live, %%autograd, plain, --live, ...) so drift in the
machine hits them alike; each run starts after a gc.collect() and pays for its own garbage.
Times are the process's CPU time (two cores shared with other work move wall time by 30 %).
`%%autograd` without --live is printed for reference (what the magic costs a loop anyway).
Targets: --live at most 1.10x the plain loop's time; one update at most 20 KB. Nothing
here asserts: the test suite never checks timings.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATIO_TARGET = 1.10
PAYLOAD_TARGET = 20_000


def example_cells() -> tuple[str, str]:
    """Example 04's data cell (without its plot) and its training loop (without the
    %%autograd line), from the notebook itself."""
    notebook = json.loads((ROOT / "examples" / "04_training_an_mlp.ipynb").read_text())
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    data = code[1].split("plt.figure")[0]
    loop = next(c for c in code if "model = MLP" in c)
    loop = "\n".join(line for line in loop.splitlines() if not line.startswith("%%"))
    return data, loop


def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "micrograd_magics")
    ip.run_cell("import math, random\nfrom engine import Value\nfrom engine.nn import MLP\n"
                ).raise_error()
    return ip


def timed(ip, source: str) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one run of the cell."""
    gc.collect()
    start, wall = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the magic's table, not timed twice
        outcome = ip.run_cell(source, silent=True)
    elapsed = time.process_time() - start, time.perf_counter() - wall
    outcome.raise_error()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    args = parser.parse_args()
    ip = shell()
    data, loop = example_cells()
    ip.run_cell(data).raise_error()
    loop = loop.replace("range(40)", f"range({args.steps})").replace("print(", "str(")
    variants = {"plain loop": loop, "%%autograd --live": "%%autograd --live\n" + loop,
                "%%autograd (no --live)": "%%autograd\n" + loop}
    for source in variants.values():  # warm up every path once
        timed(ip, source.replace(f"range({args.steps})", "range(1)"))
    times: dict[str, list[float]] = {name: [] for name in variants}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, source in variants.items():
            cpu, wall = timed(ip, source)
            times[name].append(cpu)
            walls[name].append(wall)
    plain = statistics.median(times["plain loop"])
    print(f"example 04's loop, MLP(2, [16, 16, 1]), 100 points, {args.steps} steps, "
          f"{args.repeat} runs each (interleaved), median CPU time of this process (wall "
          f"time in brackets: other processes on the machine move it), Python "
          f"{sys.version.split()[0]}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<24} {median * 1000:9.1f} ms  {median / plain:5.3f}x the plain loop "
              f"(runs: {', '.join(f'{s * 1000:.0f}' for s in samples)} ms; wall "
              f"{statistics.median(walls[name]) * 1000:.0f} ms)")
    ratio = statistics.median(times["%%autograd --live"]) / plain
    print(f"  --live / plain: {ratio:.3f}x (target <= {RATIO_TARGET:.2f}x: "
          f"{'PASS' if ratio <= RATIO_TARGET else 'FAIL'})")

    with contextlib.redirect_stdout(io.StringIO()):
        result = ip.run_cell_magic("autograd", "--live", loop)
    sizes = result.update_sizes
    print(f"one update of the view: {len(sizes)} sent in that run, largest "
          f"{max(sizes):,} bytes of JSON, last {sizes[-1]:,} (target <= {PAYLOAD_TARGET:,}: "
          f"{'PASS' if max(sizes) <= PAYLOAD_TARGET else 'FAIL'}); "
          f"points sent once for the decision boundary: "
          f"{len(json.dumps(result.live_widget.boundary)):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
