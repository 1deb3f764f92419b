"""%%autograd --live on a real IPython shell: the training loop runs once, every backward()
is recorded with the loss the loop computed, the model ends where the plain loop leaves it,
dead ReLU neurons are marked, Ctrl-C keeps the history, and the bundle holds the static
loss curve. Timings are in benchmarks/bench_live.py, never asserted here."""

from __future__ import annotations

import json
import re

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from test_learner_engine_safety import interrupt_soon, python_sigint  # noqa: F401

from micrograd_magics.live_view import LiveResult, live_state

SETUP = """\
import random
from engine import Value
from engine.nn import MLP
rng = random.Random(3)
X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(12)]
y = [1 if a * b > 0 else -1 for a, b in X]
"""

# example 04's loop, smaller: a hinge loss, L2, a decaying step; the loop keeps its own
# list of losses and the first weight's gradient right after each backward()
LOOP = """\
random.seed(1337)
model = MLP(2, [4, 4, 1])
losses, first_grads = [], []
for k in range(STEPS):
    scores = [model(list(map(Value, row))) for row in X]
    data_loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(X))
    total = data_loss + 1e-4 * sum(p * p for p in model.parameters())
    model.zero_grad()
    total.backward()
    losses.append(total.data)
    first_grads.append(model.layers[0].neurons[0].w[0].grad)
    for p in model.parameters():
        p.data -= (1.0 - 0.9 * k / 100) * p.grad
    model.zero_grad()
"""


def live(ip, cell: str, line: str = "--live") -> LiveResult:  # noqa: ANN001
    result = ip.run_cell_magic("autograd", line, cell)
    assert isinstance(result, LiveResult)
    return result


def parameters(ip) -> list[float]:  # noqa: ANN001
    return [p.data for p in ip.user_ns["model"].parameters()]


def test_history_holds_every_loss_the_loop_computed(ip):
    ip.run_cell(SETUP).raise_error()
    result = live(ip, LOOP.replace("STEPS", "8"))
    losses = ip.user_ns["losses"]
    assert len(result.history) == 8
    assert result.losses == losses  # the same floats, not approximately
    assert [s.step for s in result.history] == list(range(8))
    # the root is the last loss, and .grads are the last step's, although the loop zeroed
    # every grad after its update: no second backward
    assert result.root is ip.user_ns["total"]
    assert result.values["total"] == losses[-1]
    assert result.grads["model.layers[0].neurons[0].w[0]"] == ip.user_ns["first_grads"][-1]
    assert ip.user_ns["model"].layers[0].neurons[0].w[0].grad == 0.0  # theirs, untouched
    norms = result.history[-1].grad_norms
    assert set(norms) == {"layers[0]", "layers[1]", "layers[2]", "total"}
    by_hand = sum(g * g for g in norms.values() if g is not norms["total"]) ** 0.5
    assert norms["total"] == pytest.approx(by_hand, rel=1e-12)


def test_the_model_ends_where_the_plain_loop_leaves_it(ip):
    ip.run_cell(SETUP).raise_error()
    ip.run_cell(LOOP.replace("STEPS", "6")).raise_error()
    plain, plain_losses = parameters(ip), list(ip.user_ns["losses"])
    live(ip, LOOP.replace("STEPS", "6"))
    assert parameters(ip) == plain
    assert ip.user_ns["losses"] == plain_losses


def test_layers_and_update_payload(ip):
    ip.run_cell(SETUP).raise_error()
    result = live(ip, LOOP.replace("STEPS", "3"))
    state = result.live_widget.state
    assert state["status"] == "done" and state["steps"] == 3
    assert [t["name"] for t in state["layers"]] == ["layers[0]", "layers[1]", "layers[2]"]
    first = state["layers"][0]
    assert first["rows"] == [f"neurons[{j}]" for j in range(4)]
    assert first["cols"] == ["w[0]", "w[1]", "b"]
    w = ip.user_ns["model"].layers[0].neurons[2].w[1]
    # the heatmap shows the data at the last backward, before the update moved it
    step = 1.0 - 0.9 * 2 / 100
    assert first["data"][2][1] == pytest.approx(w.data + step * result.grads[
        "model.layers[0].neurons[2].w[1]"], rel=1e-4)
    assert [p[1] for p in state["curve"]] == [pytest.approx(x, rel=1e-4)
                                              for x in ip.user_ns["losses"]]
    # the decision boundary: the points go once, the weights with every update
    boundary = result.live_widget.boundary
    assert len(boundary["points"]) == 12 and boundary["nonlin"] == [True, True, False]


def test_one_update_of_example_04s_model_stays_small(ip):
    ip.run_cell(SETUP.replace("range(12)", "range(100)")).raise_error()
    loop = LOOP.replace("STEPS", "2").replace("MLP(2, [4, 4, 1])", "MLP(2, [16, 16, 1])")
    result = live(ip, loop)
    size = len(json.dumps(result.live_widget.state))
    assert 3_000 < size <= 20_000, size
    # a long loop's curve is thinned: the update does not grow with the steps
    from micrograd_magics.live import LiveStep

    recorder = type("R", (), {})()
    recorder.history = [LiveStep(i, 1.0 / (i + 1), {}) for i in range(10_000)]
    recorder.params, recorder.notes, recorder.interrupted, recorder.series = None, [], "", []
    curve = live_state(recorder)["curve"]
    assert len(curve) <= 300 and curve[-1][0] == 9_999 and curve[0][0] >= 0


DEAD = """\
model = MLP(2, [3, 1])
dead = model.layers[0].neurons[1]
dead.w[0].data, dead.w[1].data, dead.b.data = 0.0, 0.0, -1.0
for k in range(3):
    scores = [model(list(map(Value, row))) for row in X]
    total = sum((si - yi) ** 2 for si, yi in zip(scores, y)) * (1.0 / len(X))
    model.zero_grad()
    total.backward()
    for p in model.parameters():
        p.data -= 0.05 * p.grad
"""


def test_a_dead_relu_neuron_is_marked(ip):
    ip.run_cell(SETUP).raise_error()
    result = live(ip, DEAD)
    # relu(0*x0 + 0*x1 - 1) = 0 for every point; its weights get no gradient, so it stays
    assert [s.dead for s in result.history] == [["layers[0].neurons[1]"]] * 3
    first = result.live_widget.state["layers"][0]
    assert first["dead"] == [1]
    assert result.grads["model.layers[0].neurons[1].w[0]"] == 0.0


def test_plain_values_are_drawn_as_lines_and_the_small_graph_is_kept(ip):
    cell = ("w = 1.0\nb = 0.0\nlosses = []\nfor i in range(20):\n"
            "    L = (w * 2 + b - 3) ** 2\n    w.grad = 0.0\n    b.grad = 0.0\n"
            "    L.backward()\n    losses.append(L.data)\n"
            "    w.data -= 0.05 * w.grad\n    b.data -= 0.05 * b.grad\n")
    result = live(ip, cell)
    assert result.losses == ip.user_ns["losses"] and len(result.losses) == 20
    assert result.losses[-1] < result.losses[0]
    state = result.live_widget.state
    assert state["kind"] == "values" and state["layers"] == []
    assert sorted(state["lines"]["labels"]) == ["b", "w"]
    # the last step's graph is small: drawn, with its backward steps; dL/dw = 2*(2w+b-3)*2
    # at the w, b of the last backward
    assert not result.graph["truncated"] and result.graph["steps"]
    w, b = result.values["w"], result.values["b"]
    assert result.grads["w"] == pytest.approx(4 * (2 * w + b - 3))
    assert result.grads["b"] == pytest.approx(2 * (2 * w + b - 3))


def test_the_cells_output_is_one_view_with_the_static_loss_curve(ip):
    ip.run_cell(SETUP).raise_error()
    with capture_output() as shown:
        ip.run_cell("%%autograd --live\n" + LOOP.replace("STEPS", "4")).raise_error()
    shown_once = [o for o in shown.outputs if not o.update]
    updates = [o for o in shown.outputs if o.update]
    assert len(shown_once) == 1 and len(updates) == 1
    assert "application/vnd.jupyter.widget-view+json" in shown_once[0].data
    final = updates[0].data
    assert "application/vnd.jupyter.widget-view+json" in final
    svg = final["image/svg+xml"]
    assert svg.startswith("<svg") and "4 steps" in svg
    assert len(re.search(r"points='([^']*)'", svg)[1].split()) == 4
    assert "<svg" in final["text/html"] and "<table" in final["text/html"]
    assert final["text/plain"].startswith("%%autograd --live: 4 backward() steps")
    assert "%%autograd: " not in shown.stdout  # the returned result showed no second copy
    assert isinstance(ip.user_ns["_"], LiveResult)


def test_ctrl_c_keeps_what_was_recorded(ip, python_sigint):  # noqa: F811
    ip.run_cell(SETUP).raise_error()
    endless = LOOP.replace("for k in range(STEPS):", "import time\nend = time.time() + 30\n"
                           "k = 0\nwhile time.time() < end:\n    k += 1")
    timer = interrupt_soon(1.0)
    try:
        result = live(ip, endless)
    finally:
        timer.cancel()
    losses = ip.user_ns["losses"]
    assert len(result.history) >= 1
    # the signal lands anywhere: maybe after a backward() and before the loop's append
    assert result.losses[:len(losses)] == losses and len(result.history) - len(losses) in (0, 1)
    state = result.live_widget.state
    assert state["status"] == "interrupted" and state["steps"] == len(result.history)
    assert any("Ctrl-C" in note for note in state["notes"])
    assert any("Ctrl-C" in line for line in result.live_notes())
    ip.run_cell("zz = 1 + 1").raise_error()  # the shell goes on
    assert ip.user_ns["zz"] == 2


def test_live_with_torch_compares_the_last_step(ip):
    pytest.importorskip("torch")
    cell = ("w = 1.5\nb = -0.5\nfor i in range(5):\n    L = (w * 2 + b - 3).tanh() ** 2\n"
            "    w.grad = 0.0\n    b.grad = 0.0\n    L.backward()\n"
            "    w.data -= 0.1 * w.grad\n    b.data -= 0.1 * b.grad\n")
    result = live(ip, cell, "--live --torch")
    assert len(result.history) == 5
    assert result.mismatches == []
    assert result.torch_grads["w"] == pytest.approx(result.grads["w"], rel=1e-12)


@pytest.mark.parametrize("line, cell, message", [
    ("--live", "a = 2.0\nL = a * a\n", "never called .backward()"),
    ("--live --engine V", "a = 2.0\nL = a * a\nL.backward()\n", "does not go with --engine"),
    ("--live-data X,y", "a = 2.0\nL = a * a\n", "--live-data goes with --live"),
    ("--live --live-data Xs,y", "y = [1]\na = 2.0\nL = a * a\nL.backward()\n",
     "Xs is not defined in the notebook nor assigned by the cell"),
    ("--live --live-data X", "a = 2.0\nL = a * a\nL.backward()\n", "takes two names"),
    ("--live loss", "a = 2.0\nL = a * a\nL.backward()\n", "no backward() was called on loss"),
])
def test_bad_live_input_is_one_line(ip, line, cell, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        ip.run_cell_magic("autograd", line, cell)


def test_live_data_of_the_wrong_shape_is_a_note(ip):
    ip.run_cell(SETUP + "Z = [[1.0, 2.0, 3.0]] * 12\n").raise_error()
    result = live(ip, DEAD, "--live --live-data Z,y")
    assert any("X needs points of 2 numbers, not 3" in n for n in result.live_notes())
    assert result.live_widget.boundary == {}
    assert len(result.history) == 3


def test_line_magic_refuses_live(ip):
    with pytest.raises(UsageError, match="use it on a cell"):
        ip.run_line_magic("autograd", "--live a * a")


def test_a_loop_does_not_keep_every_steps_graph_alive(ip):
    """Each assignment in a loop labels its Value; the recorder must not hold on to them
    (it did: 40 steps of example 04 kept 40 graphs of 65,614 nodes, and every garbage
    collection walked them all, which made the loop ~1.7x slower)."""
    import gc

    cell = ("a = 2.0\nfor i in range(30):\n    y = a\n    for j in range(1000):\n"
            "        y = y * 1.0\n    y.backward()\n")
    gc.collect()
    before = len(gc.get_objects())
    result = live(ip, cell)
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert len(result.history) == 30
    assert grown < 10_000, grown  # the last chain (~1,000 nodes), not 30,000 nodes


def test_the_boundary_note_is_for_models_only(ip):
    ip.run_cell(SETUP).raise_error()  # X and y are in the notebook
    plain = live(ip, "w = 1.0\nfor i in range(3):\n    L = w * w\n    w.grad = 0.0\n"
                     "    L.backward()\n    w.data -= 0.1 * w.grad\n")
    assert plain.live_notes() == []
    cell = ("class Line:\n    def __init__(self):\n        self.w = [Value(0.5), Value(-0.5)]\n"
            "        self.b = Value(0.0)\n    def __call__(self, x):\n"
            "        return self.w[0] * x[0] + self.w[1] * x[1] + self.b\n"
            "    def parameters(self):\n        return self.w + [self.b]\n"
            "line = Line()\nfor k in range(3):\n"
            "    L = sum((line(x) - t) ** 2 for x, t in zip(X, y)) * (1.0 / len(X))\n"
            "    for p in line.parameters():\n        p.grad = 0.0\n    L.backward()\n"
            "    for p in line.parameters():\n        p.data -= 0.1 * p.grad\n")
    theirs = live(ip, cell)
    # a learner's own model class: grouped by its attributes' paths, no boundary (it is
    # not run again), and said so
    table = theirs.live_widget.state["layers"]
    assert [t["name"] for t in table] == ["line"] and table[0]["cols"] == ["w[0]", "w[1]", "b"]
    assert any("not evaluated again" in note for note in theirs.live_notes())
    assert len(theirs.history) == 3


def test_an_error_in_the_loop_is_the_cells_and_the_view_says_it_stopped(ip):
    ip.run_cell(SETUP).raise_error()
    cell = LOOP.replace("STEPS", "5") + "    if k == 2:\n        raise ValueError('diverged')\n"
    with capture_output() as shown:
        outcome = ip.run_cell("%%autograd --live\n" + cell)
    assert isinstance(outcome.error_in_exec, ValueError)
    assert "diverged" in shown.stdout + shown.stderr
    view = _live_widgets()[-1]  # the one this cell showed
    assert view.state["status"] == "error" and view.state["steps"] == 3


def _live_widgets() -> list:
    from ipywidgets.widgets.widget import _instances

    from micrograd_magics.live_widget import LiveWidget

    return [w for w in list(_instances.values()) if isinstance(w, LiveWidget)]


def test_a_failing_model_class_does_not_stop_the_loop(ip):
    cell = ("class Odd:\n    def parameters(self):\n        raise RuntimeError('nope')\n"
            "odd = Odd()\nw = 1.0\nlosses = []\nfor i in range(3):\n    L = w * w\n"
            "    w.grad = 0.0\n    L.backward()\n    losses.append(L.data)\n"
            "    w.data -= 0.1 * w.grad\n")
    result = live(ip, cell)
    assert result.losses == ip.user_ns["losses"]  # Odd is skipped: not a model


def test_updates_are_throttled_and_the_last_one_is_final(ip):
    import time

    cell = ("w = 1.0\nfor i in range(3000):\n    L = w * w\n    w.grad = 0.0\n"
            "    L.backward()\n    w.data -= 0.001 * w.grad\n")
    start = time.monotonic()
    result = live(ip, cell)
    elapsed = time.monotonic() - start
    sizes = result.update_sizes
    # at most one update per 0.1 s of the run, plus the final one; the first at step 1
    assert 2 <= len(sizes) <= elapsed / 0.1 + 2, (len(sizes), elapsed)
    assert result.live_widget.state["steps"] == 3000
    assert result.live_widget.state["status"] == "done"
    assert len(result.history) == 3000
