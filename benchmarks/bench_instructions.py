"""Instructions per micrograd demo step on our engine, counted by valgrind's callgrind.

    python benchmarks/bench_instructions.py            # needs valgrind (apt-get install valgrind)

Wall time on a shared machine swings by 2x from one step to the next; the instruction
count of a step does not. It is the measure to compare two versions of the engine by
(run this on each); it does not see cache misses, so check a winner in wall time too
(`bench_engine.py --only demo`). The count is the difference between runs of 3 and 1
steps, halved: start-up and imports cancel out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEPS = """
import gc, random, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {benchmarks!r})
import engine, engine.nn
from bench_engine import demo_step, two_moons
xs, ys = two_moons(100)
random.seed(1337)
model = engine.nn.MLP(2, [16, 16, 1])
gc.collect()
gc.freeze()
for k in range({steps}):
    gc.collect()
    demo_step(engine.Value, model, xs, ys, k)
    gc.collect()
"""


def instructions(steps: int) -> int:
    """Instructions callgrind counts for a process running `steps` demo steps."""
    script = STEPS.format(root=str(ROOT), benchmarks=str(ROOT / "benchmarks"), steps=steps)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", script],
        capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    print(f"Python {sys.version.split()[0]} ({sys.executable}), callgrind")
    one, three = instructions(1), instructions(3)
    print(f"   engine demo step: {(three - one) / 2 / 1e6:.1f} M instructions per step "
          f"(forward + backward + SGD + gc, MLP(2, [16, 16, 1]), 100 points)")


if __name__ == "__main__":
    main()
