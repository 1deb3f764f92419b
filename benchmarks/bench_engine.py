"""Engine speed and memory, as ratios against the anchors, measured side by side in one run.

    python benchmarks/bench_engine.py            # all three parts
    python benchmarks/bench_engine.py --steps 20

1. micrograd's demo step (MLP(2, [16, 16, 1]), 100 two-moons points, max-margin loss +
   1e-4 L2, forward + backward + SGD) on our engine, on micrograd 0.1.0 and on 0-d float64
   torch tensors, all from the same weights. Each step is bracketed by gc.collect() inside
   its timing, so each implementation pays for its own garbage.
2. forward + backward per node on chains of 10^4, 10^5, 10^6 nodes.
3. bytes per node of a built-and-differentiated graph (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402
import engine.nn  # noqa: E402


def two_moons(n: int, noise: float = 0.1, seed: int = 1) -> tuple[list[list[float]], list[int]]:
    """sklearn-style two interleaving half circles, labels -1 / +1."""
    rng = random.Random(seed)
    xs, ys = [], []
    for i in range(n):
        t = math.pi * rng.random()
        if i % 2:
            xs.append([math.cos(t) + rng.gauss(0, noise), math.sin(t) + rng.gauss(0, noise)])
            ys.append(-1)
        else:
            xs.append([1 - math.cos(t) + rng.gauss(0, noise),
                       0.5 - math.sin(t) + rng.gauss(0, noise)])
            ys.append(1)
    return xs, ys


def demo_step(value_cls, model, xs, ys, k: int) -> float:
    """micrograd's demo.ipynb training step, verbatim apart from the Value class."""
    inputs = [list(map(value_cls, xrow)) for xrow in xs]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    total_loss = data_loss + reg_loss
    model.zero_grad()
    total_loss.backward()
    learning_rate = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= learning_rate * p.grad
    return total_loss.data


class TorchScalarMLP:
    """The same MLP from 0-d float64 tensors, one tensor per weight, as micrograd builds it."""

    def __init__(self, torch, weights: list[list[list[float]]], biases: list[list[float]]):
        self.torch = torch
        t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
        self.layers = [[([t(w) for w in ws], t(b)) for ws, b in zip(lw, lb)]
                       for lw, lb in zip(weights, biases)]

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            out = []
            for ws, b in layer:
                act = sum((wi * xi for wi, xi in zip(ws, x)), b)
                out.append(act if last else self.torch.relu(act))
            x = out[0] if len(out) == 1 else out
        return x

    def parameters(self):
        return [p for layer in self.layers for ws, b in layer for p in ws + [b]]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None


def torch_demo_step(torch, model, xs, ys, k: int) -> float:
    inputs = [[torch.tensor(v, dtype=torch.float64) for v in xrow] for xrow in xs]
    scores = list(map(model, inputs))
    losses = [torch.relu(1 + -yi * scorei) for yi, scorei in zip(ys, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum((p * p for p in model.parameters()))
    total_loss = data_loss + reg_loss
    model.zero_grad()
    total_loss.backward()
    learning_rate = 1.0 - 0.9 * k / 100
    with torch.no_grad():
        for p in model.parameters():
            p -= learning_rate * p.grad
    return total_loss.item()


def weights_of(model) -> tuple[list, list]:
    weights = [[[w.data for w in n.w] for n in layer.neurons] for layer in model.layers]
    biases = [[n.b.data for n in layer.neurons] for layer in model.layers]
    return weights, biases


def load_weights(model, weights, biases) -> None:
    for layer, lw, lb in zip(model.layers, weights, biases):
        for n, ws, b in zip(layer.neurons, lw, lb):
            for p, w in zip(n.w, ws):
                p.data = w
            n.b.data = b


def timed(step) -> tuple[float, float]:
    gc.collect()
    start = time.perf_counter()
    loss = step()
    gc.collect()
    return time.perf_counter() - start, loss


def bench_demo(steps: int) -> None:
    xs, ys = two_moons(100)
    random.seed(1337)
    ours = engine.nn.MLP(2, [16, 16, 1])
    weights, biases = weights_of(ours)
    runners = {"engine": lambda k: demo_step(engine.Value, ours, xs, ys, k)}
    try:
        import micrograd.engine
        import micrograd.nn

        theirs = micrograd.nn.MLP(2, [16, 16, 1])
        load_weights(theirs, weights, biases)
        runners["micrograd 0.1.0"] = lambda k: demo_step(micrograd.engine.Value, theirs, xs, ys, k)
    except ImportError:
        print("micrograd not installed (pip install micrograd==0.1.0): ratio skipped")
    try:
        import torch

        torch.set_num_threads(1)
        scalar = TorchScalarMLP(torch, weights, biases)
        runners["torch 0-d float64"] = lambda k: torch_demo_step(torch, scalar, xs, ys, k)
    except ImportError:
        print("torch not installed (pip install torch==2.13.0): ratio skipped")

    # torch's import alone leaves ~10^5 long-lived objects; a full collection during a
    # step would walk them all and bill that step. Freezing the start-up heap keeps the
    # bill to the garbage the step itself makes (gc.collect() in `timed` still runs).
    gc.collect()
    gc.freeze()
    times: dict[str, list[float]] = {name: [] for name in runners}
    losses: dict[str, list[float]] = {name: [] for name in runners}
    for k in range(steps):  # interleaved, so drift in the machine hits all alike
        for name, run in runners.items():
            seconds, loss = timed(lambda: run(k))
            times[name].append(seconds)
            losses[name].append(loss)
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"\n1. micrograd demo step, median of {steps} steps (forward+backward+SGD, gc billed)")
    for name in runners:
        gap = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(losses[name], losses["engine"]))
        print(f"   {name:<20} {ms[name]:8.1f} ms   loss after {steps} steps "
              f"{losses[name][-1]:.12f}   max rel. loss gap to engine {gap:.1e}")
    for name in runners:
        if name != "engine":
            print(f"   engine is {ms[name] / ms['engine']:5.1f}x faster than {name}")


def chain(n: int) -> engine.Value:
    w, c = engine.Value(0.999, label="w"), engine.Value(0.001, label="c")
    y = engine.Value(1.0, label="x")
    for _ in range(n // 2):  # two nodes per step
        y = y * w + c
    return y


def bench_chains() -> None:
    print("\n2. chain y = y*w + c: forward + backward per node")
    per_node = {}
    for n in (10**4, 10**5, 10**6):
        best = math.inf
        for _ in range(3 if n < 10**6 else 2):
            gc.collect()
            start = time.perf_counter()
            y = chain(n)
            y.backward()
            best = min(best, time.perf_counter() - start)
            del y
        per_node[n] = best / n * 1e9
        print(f"   {n:>9,} nodes: {per_node[n]:7.0f} ns/node")
    spread = max(per_node.values()) / min(per_node.values())
    print(f"   spread across sizes: {spread:.2f}x (target <= 1.5x)")


def bench_memory() -> None:
    print("\n3. memory per node (tracemalloc, after backward, chain of 200,000 nodes)")
    rows = [("engine", engine.Value)]
    try:
        import micrograd.engine

        rows.append(("micrograd 0.1.0", micrograd.engine.Value))
    except ImportError:
        pass
    for name, value_cls in rows:
        n = 200_000
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        w, c, y = value_cls(0.999), value_cls(0.001), value_cls(1.0)
        for _ in range(n // 2):
            y = y * w + c
        y.backward()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        # micrograd's backward builds its topo list and visited set inside the call and
        # frees them; what stays is the graph.
        print(f"   {name:<20} {(after - before) / n:6.0f} bytes/node")
        del y, w, c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--only", choices=["demo", "chains", "memory"])
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    if args.only in (None, "demo"):
        bench_demo(args.steps)
    if args.only in (None, "chains"):
        bench_chains()
    if args.only in (None, "memory"):
        bench_memory()


if __name__ == "__main__":
    main()
