"""What recording a learner's own Neuron/Layer/MLP calls costs (`%%autograd --engine`,
micrograd_magics/learner_calls.py), and the collapsed drawing of their MLP over 100 points.

    python benchmarks/bench_learner_calls.py [--rounds 7]

1. The lecture's training cell (MLP(3, [4, 4, 1]) on its four examples, 20 steps of
   forward, zero grads, backward, SGD) with their own Value, Neuron, Layer and MLP, run
   through `%%autograd --engine Value` with the call recording and without it (the same
   magic, `learner_calls.recording` swapped for a context that does nothing), alternated
   in one run. Printed: the cell's own run inside the magic (what the recording can slow)
   and the whole magic call, medians, and their ratio. Target: <= 1.05x. The same cell in
   plain Python (no magic) is printed beside them for scale.
2. Their MLP(2, [16, 16, 1]) over 100 moons points, squared-error loss: cell text to
   display payload (run + `_repr_mimebundle_()`), bundle bytes, boxes drawn, expanding one
   neuron. Targets as for the engine's demo (bench_render.py): <= 2 s, <= 1 MB, <= 600
   boxes, expand <= 300 ms.
Figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from test_collapse_learner import LECTURE_NN, TRAINING  # noqa: E402
from test_learner_engine import LECTURE_CLASS  # noqa: E402

from micrograd_magics import learner_calls, pipeline  # noqa: E402

RATIO_TARGET = 1.05
PAYLOAD_TARGET_S, BUNDLE_TARGET_BYTES, BOXES_TARGET, EXPAND_TARGET_S = 2.0, 1_000_000, 600, 0.3
HUNDRED_POINTS = """\
model = MLP(2, [16, 16, 1])
scores = [model(x) for x in X]
loss = sum((s - t)**2 for s, t in zip(scores, Y))"""


def shell_with_their_classes() -> InteractiveShell:
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "micrograd_magics")
    shell.run_cell(LECTURE_CLASS).raise_error()
    shell.run_cell(LECTURE_NN).raise_error()
    return shell


@contextlib.contextmanager
def timed_execute(seconds: list[float]):  # noqa: ANN201
    """Time the cell's own run inside the magic (cells.execute, the wrappers on)."""
    execute = pipeline.cells.execute

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started = time.perf_counter()
        try:
            return execute(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    pipeline.cells.execute = timed
    try:
        yield
    finally:
        pipeline.cells.execute = execute


@contextlib.contextmanager
def recording_off():  # noqa: ANN201
    on = learner_calls.recording
    learner_calls.recording = lambda *args: contextlib.nullcontext()
    try:
        yield
    finally:
        learner_calls.recording = on


def cost_rows(shell: InteractiveShell, rounds: int) -> bool:
    cell_with, cell_without, magic_with, magic_without, plain = [], [], [], [], []
    nodes = 0
    for k in range(rounds + 1):  # round 0 warms up
        for variant in ("with", "without", "plain"):
            random.seed(k)
            started = time.perf_counter()
            if variant == "plain":
                shell.run_cell(TRAINING).raise_error()
                spent = time.perf_counter() - started
                if k:
                    plain.append(spent)
                continue
            inside: list[float] = []
            off = recording_off() if variant == "without" else contextlib.nullcontext()
            with off, timed_execute(inside):
                result = shell.run_cell_magic("autograd", "loss --engine Value", TRAINING)
            spent = time.perf_counter() - started
            if variant == "with":
                nodes = result.graph["node_count"]
            if k:
                (cell_with if variant == "with" else cell_without).append(inside[0])
                (magic_with if variant == "with" else magic_without).append(spent)
    cell_ratio = statistics.median(cell_with) / statistics.median(cell_without)
    magic_ratio = statistics.median(magic_with) / statistics.median(magic_without)
    ms = 1000
    print(f"lecture training cell, MLP(3,[4,4,1]), 4 examples, 20 steps, --engine Value "
          f"(last step's graph: {nodes} nodes); medians of {rounds}")
    print(f"  the cell's run inside the magic: {ms * statistics.median(cell_without):7.1f} ms "
          f"without recording, {ms * statistics.median(cell_with):7.1f} ms with: "
          f"{cell_ratio:.3f}x (target <= {RATIO_TARGET}x: "
          f"{'ok' if cell_ratio <= RATIO_TARGET else 'MISSED'})")
    print(f"  the whole magic call:            {ms * statistics.median(magic_without):7.1f} ms "
          f"without recording, {ms * statistics.median(magic_with):7.1f} ms with: "
          f"{magic_ratio:.3f}x")
    print(f"  the same cell in plain Python (no magic): {ms * statistics.median(plain):.1f} ms")
    spread = sorted(a / b for a, b in zip(cell_with, cell_without))
    print(f"  per-round ratios of the cell's run: {', '.join(f'{r:.3f}' for r in spread)}")
    return cell_ratio <= RATIO_TARGET


def payload_row(shell: InteractiveShell) -> bool:
    from test_engine_nn import make_moons

    X, Y = make_moons(100)
    runs = []
    for k in range(3):
        random.seed(1337 + k)
        shell.user_ns.update(X=X, Y=Y)
        started = time.perf_counter()
        result = shell.run_cell_magic("autograd", "--engine Value", HUNDRED_POINTS)
        bundle = result._repr_mimebundle_()
        runs.append((time.perf_counter() - started, len(json.dumps(bundle).encode()), result))
    seconds = statistics.median(r[0] for r in runs)
    size, result = runs[-1][1], runs[-1][2]
    boxes = result.drawn_graph["collapsed"]["boxes"]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        result.expand("model.layers[1].neurons[3]")
        assert result.svg is not None, result.render_error
        times.append(time.perf_counter() - started)
        result.expand("model.layers[1].neurons[3]")
    expand = statistics.median(times)
    ok = (seconds <= PAYLOAD_TARGET_S and size <= BUNDLE_TARGET_BYTES and boxes <= BOXES_TARGET
          and expand <= EXPAND_TARGET_S)
    print(f"their MLP(2,[16,16,1]) over 100 points, --engine Value "
          f"({result.graph['node_count']:,} nodes, renderer {result.renderer}): cell text to "
          f"payload {seconds:.2f} s (median of 3), bundle {size:,} B, {boxes} boxes, expand "
          f"one neuron {1000 * expand:.0f} ms; targets <= {PAYLOAD_TARGET_S:g} s, <= 1 MB, "
          f"<= {BOXES_TARGET} boxes, <= {1000 * EXPAND_TARGET_S:.0f} ms: "
          f"{'ok' if ok else 'MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    shell = shell_with_their_classes()
    verdicts = [cost_rows(shell, args.rounds), payload_row(shell)]
    print("all targets met" if all(verdicts) else "some targets MISSED")


if __name__ == "__main__":
    main()
