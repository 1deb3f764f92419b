"""Issue 17's stretch goal: a learner's own Neuron/Layer/MLP classes (`--engine Value`)
drawn collapsed like engine.nn's, through a real IPython shell: one box per neuron by its
path through the learner's names, stacks over inputs, Σ boxes, expanding one neuron; the
numbers are the learner's own (their backward ran), and their classes are left as they
were (micrograd_magics/learner_calls.py)."""

from __future__ import annotations

import json
import math
import random

import pytest
from cells import run_autograd
from test_collapse import boxes_of, replayed
from test_engine_nn import make_moons
from test_learner_engine import LECTURE_CLASS, define, variant

from micrograd_magics.collapse import MAX_BOXES
from micrograd_magics.result import BUNDLE_BUDGET

# the lecture's classes, as a learner types them (two-space indents and all)
LECTURE_NN = """\
import random
class Neuron:
  def __init__(self, nin):
    self.w = [Value(random.uniform(-1,1)) for _ in range(nin)]
    self.b = Value(random.uniform(-1,1))
  def __call__(self, x):
    act = sum((wi*xi for wi, xi in zip(self.w, x)), self.b)
    out = act.tanh()
    return out
  def parameters(self):
    return self.w + [self.b]
class Layer:
  def __init__(self, nin, nout):
    self.neurons = [Neuron(nin) for _ in range(nout)]
  def __call__(self, x):
    outs = [n(x) for n in self.neurons]
    return outs[0] if len(outs) == 1 else outs
  def parameters(self):
    return [p for neuron in self.neurons for p in neuron.parameters()]
class MLP:
  def __init__(self, nin, nouts):
    sz = [nin] + nouts
    self.layers = [Layer(sz[i], sz[i+1]) for i in range(len(nouts))]
  def __call__(self, x):
    for layer in self.layers:
      x = layer(x)
    return x
  def parameters(self):
    return [p for layer in self.layers for p in layer.parameters()]
"""

FOUR_POINTS = """\
n = MLP(3, [4, 4, 1])
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]
ypred = [n(x) for x in xs]
loss = sum((yout - ygt)**2 for ygt, yout in zip(ys, ypred))"""

TRAINING = """\
n = MLP(3, [4, 4, 1])
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]
for k in range(20):
  ypred = [n(x) for x in xs]
  loss = sum((yout - ygt)**2 for ygt, yout in zip(ys, ypred))
  for p in n.parameters():
    p.grad = 0.0
  loss.backward()
  for p in n.parameters():
    p.data += -0.05 * p.grad"""

PATHS = [f"n.layers[{k}].neurons[{j}]" for k, size in enumerate([4, 4, 1]) for j in range(size)]


@pytest.fixture
def lecture(ip):  # noqa: ANN001, ANN201
    """The lecture's Value class and its Neuron, Layer, MLP, each in a cell of its own."""
    define(ip, LECTURE_CLASS)
    define(ip, LECTURE_NN)
    random.seed(7)
    return ip


def neurons_of(drawn: dict) -> dict[str, dict]:
    return {name: box for name, box in boxes_of(drawn).items()
            if (box.get("collapsed") or {}).get("kind") == "neuron"}


def test_lecture_mlp_is_drawn_as_its_neurons(lecture) -> None:  # noqa: ANN001
    result = run_autograd(lecture, FOUR_POINTS, "--engine Value")
    ns = lecture.user_ns
    drawn = result.drawn_graph
    assert result.graph["truncated"] and result.svg is not None  # above --max-nodes 300
    assert drawn["engine"] == "Value"
    neurons = neurons_of(drawn)
    assert sorted(neurons) == sorted(PATHS)
    for path in PATHS:
        assert neurons[path]["collapsed"]["count"] == 4  # one stack over the 4 inputs
        assert neurons[path]["summary"].startswith("× 4 inputs")
    # the box shows the neuron's call on input 0: their own Value's numbers, their grad
    last = neurons["n.layers[2].neurons[0]"]
    assert last["data"] == ns["ypred"][0].data and last["grad"] == ns["ypred"][0].grad
    assert last["grad"] == pytest.approx(2 * (ns["ypred"][0].data - 1.0), rel=1e-12)
    # the parameters' grads are theirs: the range on the box
    neuron = ns["n"].layers[0].neurons[3]
    grads = [p.grad for p in neuron.parameters()]
    assert f"[{min(grads):.4f}, {max(grads):.4f}]" in neurons["n.layers[0].neurons[3]"]["summary"]
    # every node in exactly one box; the layers' neurons in their columns
    held = sum(b.get("collapsed", {}).get("nodes", 1) for b in drawn["nodes"])
    assert held == drawn["node_count"] == result.graph["node_count"]
    assert sorted(len(c) for c in drawn["columns"]) == [4, 4]
    # their own backward filled in the grads (the closures, not ours): loss.grad is 1
    assert boxes_of(drawn)["loss"]["grad"] == 1.0 == ns["loss"].grad


def test_hover_and_steps_at_the_collapsed_level(lecture) -> None:  # noqa: ANN001
    result = run_autograd(lecture, FOUR_POINTS, "--engine Value")
    drawn = result.drawn_graph
    explain = neurons_of(drawn)["n.layers[0].neurons[1]"]["explain"]
    assert explain[0].startswith("dloss/dn.layers[0].neurons[1] = dloss/dn.layers[1].neurons[")
    assert any(line.startswith("  [3] ") for line in explain)  # per input
    # replaying the collapsed steps ends on every grad shown: their grads, and the shares
    # by the rules of their ops sum up to them
    final = replayed(drawn)
    for node in drawn["nodes"]:
        assert final[node["id"]] == pytest.approx(node["grad"], rel=1e-9, abs=1e-12), node["name"]
    assert drawn["steps"][0]["seed"]
    assert len(json.dumps(result._repr_mimebundle_())) <= BUNDLE_BUDGET


def test_expand_one_neuron_shows_their_weights_and_inputs(lecture) -> None:  # noqa: ANN001
    result = run_autograd(lecture, FOUR_POINTS, "--engine Value")
    ns = lecture.user_ns
    before = result.drawn_graph
    result.expand("n.layers[0].neurons[2]")
    after = result.drawn_graph
    shown = boxes_of(after)
    neuron = ns["n"].layers[0].neurons[2]
    for i in range(3):
        assert shown[f"w[{i}]"]["grad"] == neuron.w[i].grad and shown[f"w[{i}]"]["leaf"]
    assert shown["b"]["grad"] == neuron.b.grad
    # the numbers it was called on (the lecture's wi*xi wraps each in a Value): x[0..2]
    assert [shown[f"x[{i}]"]["data"] for i in range(3)] == ns["xs"][0]
    tanh = [n for n in after["nodes"] if n["op"] == "tanh"]
    folded = neurons_of(before)["n.layers[0].neurons[2]"]
    assert len(tanh) == 1 and tanh[0]["grad"] == folded["grad"]
    (frame,) = after["clusters"]
    assert len(frame["nodes"]) == 3 + 4 + 3 + 3 + 1  # x, w and b, products, sums, tanh
    # read as their code: sum((wi*xi ...), self.b), though micrograd's _prev is a set
    first = shown["b + w[0]*x[0]"]  # on input 0: its grad is tanh's local rule, by hand
    assert first["grad"] == pytest.approx(tanh[0]["grad"] * (1 - tanh[0]["data"] ** 2),
                                          rel=1e-12)
    final = replayed(after)
    for node in after["nodes"]:
        assert final[node["id"]] == pytest.approx(node["grad"], rel=1e-9, abs=1e-12), node["name"]
    result.expand("n.layers[0].neurons[2]")  # folded again
    assert result.drawn_graph["nodes"] == before["nodes"]
    # a second-layer neuron reads the first layer's outputs: edges from their four boxes
    result.expand("n.layers[1].neurons[0]")
    drawn = result.drawn_graph
    (frame,) = drawn["clusters"]
    assert len(frame["nodes"]) == 5 + 4 + 4 + 1
    first = {boxes_of(drawn)[f"n.layers[0].neurons[{j}]"]["id"] for j in range(4)}
    into = {e["source"] for e in drawn["edges"] if e["target"] in frame["nodes"]}
    assert first <= into


def test_a_sum_over_many_points_is_one_box(ip) -> None:  # noqa: ANN001
    define(ip, LECTURE_CLASS)
    define(ip, LECTURE_NN)
    random.seed(3)
    X, y = make_moons(30)
    ip.user_ns.update(X=X, labels=y)
    cell = ("model = MLP(2, [8, 1])\n"
            "scores = [model(x) for x in X]\n"
            "losses = [(s - t)**2 for s, t in zip(scores, labels)]\n"
            "total = sum(losses)")
    result = run_autograd(ip, cell, "--engine Value")
    boxes = boxes_of(result.drawn_graph)
    total = boxes["total"]
    assert total["collapsed"]["kind"] == "sum" and total["collapsed"]["count"] == 31  # + 0
    assert total["grad"] == 1.0 and total["data"] == ip.user_ns["total"].data
    stack = boxes["model.layers[0].neurons[5]"]
    assert stack["collapsed"]["count"] == 30 and stack["summary"].startswith("× 30 inputs")
    assert result.drawn_graph["collapsed"]["boxes"] <= MAX_BOXES


def test_a_training_loop_draws_the_last_step(lecture) -> None:  # noqa: ANN001
    result = run_autograd(lecture, TRAINING, "loss --engine Value")
    ns = lecture.user_ns
    neurons = neurons_of(result.drawn_graph)
    assert sorted(neurons) == sorted(PATHS)
    assert all(box["collapsed"]["count"] == 4 for box in neurons.values())  # last step only
    # the numbers of the last step's forward, grads of the backward run on it
    assert neurons["n.layers[2].neurons[0]"]["data"] == ns["ypred"][0].data
    assert neurons["n.layers[2].neurons[0]"]["grad"] == ns["ypred"][0].grad


def test_recording_changes_nothing_they_compute(ip) -> None:  # noqa: ANN001
    """The same training with and without the magic: the same loss, to the last bit; and
    their classes as they were. (Their `_prev` a tuple here: kept in a set, as the lecture
    has it, the order gradients are summed in follows the objects' addresses, and the last
    bit with it, magic or not.)"""
    define(ip, variant(LECTURE_CLASS, "set(_children)", "tuple(_children)"))
    define(ip, LECTURE_NN)
    lecture = ip
    classes = {name: dict(vars(lecture.user_ns[name])) for name in ("Neuron", "Layer", "MLP",
                                                                     "Value")}
    random.seed(11)
    run_autograd(lecture, TRAINING, "loss --engine Value")
    with_magic = lecture.user_ns["loss"].data
    random.seed(11)
    lecture.run_cell(TRAINING).raise_error()
    assert lecture.user_ns["loss"].data == with_magic
    for name, before in classes.items():
        assert dict(vars(lecture.user_ns[name])) == before, name


def test_no_wrapper_left_when_the_cell_raises(lecture) -> None:  # noqa: ANN001
    classes = {name: dict(vars(lecture.user_ns[name])) for name in ("Neuron", "Layer", "MLP",
                                                                     "Value")}
    outcome = lecture.run_cell("%%autograd --engine Value\n" + FOUR_POINTS + "\n1 / 0")
    assert not outcome.success
    for name, before in classes.items():
        assert dict(vars(lecture.user_ns[name])) == before, name
    # and a neuron that raises inside its own call
    lecture.run_cell("class Broken(Neuron):\n  def __call__(self, x):\n    raise ValueError('no')")
    broken = dict(vars(lecture.user_ns["Broken"]))
    outcome = lecture.run_cell("%%autograd --engine Value\nm = Broken(2)\nL = m([1.0, 2.0])")
    assert not outcome.success and isinstance(outcome.error_in_exec, ValueError)
    assert dict(vars(lecture.user_ns["Broken"])) == broken
    assert "__call__" not in vars(lecture.user_ns["Neuron"]) or (
        vars(lecture.user_ns["Neuron"])["__call__"] is classes["Neuron"]["__call__"])


def test_a_cell_that_defines_its_own_classes(ip) -> None:  # noqa: ANN001
    random.seed(5)
    cell = LECTURE_CLASS + "\n" + LECTURE_NN + "\n" + FOUR_POINTS
    result = run_autograd(ip, cell, "--engine Value")
    neurons = neurons_of(result.drawn_graph)
    assert sorted(neurons) == sorted(PATHS)
    ns = ip.user_ns
    assert neurons["n.layers[2].neurons[0]"]["grad"] == ns["ypred"][0].grad
    assert not hasattr(ns["Neuron"].__call__, "__wrapped__")  # their own function again
    assert not hasattr(ns["Value"].backward, "__wrapped__")
    # a training loop in such a cell: their backward() seen, the old steps' calls dropped
    from micrograd_magics import collapse

    kept = []
    original = collapse.CallLog.__init__

    def remember(log, *args):  # noqa: ANN001, ANN002
        original(log, *args)
        kept.append(log)

    collapse.CallLog.__init__ = remember
    try:
        result = run_autograd(ip, LECTURE_CLASS + "\n" + LECTURE_NN + "\n" + TRAINING,
                              "loss --engine Value")
    finally:
        collapse.CallLog.__init__ = original
    assert len(kept[-1].calls) == 4 * 13  # the last step's calls, not 20 steps' 1,040
    assert sorted(neurons_of(result.drawn_graph)) == sorted(PATHS)


def test_other_names_and_a_hidden_layer_attribute(ip) -> None:  # noqa: ANN001
    define(ip, LECTURE_CLASS)
    renamed = (LECTURE_NN.replace("Neuron", "MyNeuron").replace("self.neurons", "self.units")
               .replace("self.layers", "self.hidden").replace("class MLP", "class Net"))
    define(ip, renamed)
    random.seed(2)
    result = run_autograd(ip, FOUR_POINTS.replace("MLP(", "Net("), "--engine Value --collapse")
    neurons = neurons_of(result.drawn_graph)
    assert sorted(neurons) == sorted(p.replace("layers", "hidden").replace("neurons", "units")
                                     for p in PATHS)


def test_micrograd_nn_from_pypi(ip) -> None:  # noqa: ANN001
    pytest.importorskip("micrograd.nn")
    ip.run_cell("from micrograd.engine import Value\nfrom micrograd.nn import MLP").raise_error()
    random.seed(1)
    result = run_autograd(ip, FOUR_POINTS, "--engine Value --max-nodes 50")
    ns = ip.user_ns
    neurons = neurons_of(result.drawn_graph)
    assert sorted(neurons) == sorted(PATHS)
    assert neurons["n.layers[2].neurons[0]"]["grad"] == ns["ypred"][0].grad
    relu = ns["n"].layers[0].neurons[0]
    grads = [p.grad for p in relu.parameters()]
    assert f"[{min(grads):.4f}, {max(grads):.4f}]" in neurons["n.layers[0].neurons[0]"]["summary"]
    result.expand("n.layers[0].neurons[0]")
    assert [n["op"] for n in result.drawn_graph["nodes"] if n["op"] == "ReLU"] == ["ReLU"]


def test_one_call_unnamed_model(lecture) -> None:  # noqa: ANN001
    cell = "x = [2.0, 3.0, -1.0]\nL = (MLP(3, [4, 4, 1])(x) - 1.0)**2"
    result = run_autograd(lecture, cell, "--engine Value --collapse")
    neurons = neurons_of(result.drawn_graph)
    # no name holds the model: the paths from its calls
    assert sorted(neurons) == sorted(p.removeprefix("n.") for p in PATHS)
    assert all(box["collapsed"]["count"] == 1 for box in neurons.values())


def test_classes_without_parameters_draw_by_names(ip) -> None:  # noqa: ANN001
    define(ip, LECTURE_CLASS)
    define(ip, "class Unit:\n  def __init__(self, w):\n    self.w = w\n"
               "  def __call__(self, x):\n    return (self.w * x).tanh()")
    cell = ("y = 0.5\nw = 0.9\nfor i in range(60):\n  y = Unit(w)(y + 0.01)\n"
            "L = y * 2.0")
    result = run_autograd(ip, cell, "--engine Value --max-nodes 100")
    drawn = result.drawn_graph
    assert drawn["collapsed"] is not None and not neurons_of(drawn)
    boxes = boxes_of(drawn)
    assert boxes["L"]["grad"] == 1.0 and boxes["w"]["grad"] == result.grads["w"] != 0.0
    block = boxes["y#3 … y#60"]  # the loop rolled up, as on the engine (y#1 is 0.5)
    assert block["collapsed"]["kind"] == "steps" and block["collapsed"]["count"] == 58
    assert "__call__" in vars(ip.user_ns["Unit"])  # not theirs to wrap, left alone
    assert not hasattr(ip.user_ns["Unit"].__call__, "__wrapped__")


def test_an_op_it_cannot_read_still_shows(lecture) -> None:  # noqa: ANN001
    define(lecture, "def cube(self):\n"
                    "    out = Value(self.data**3, (self,), 'cube')\n"
                    "    def _backward():\n"
                    "        self.grad += 3 * self.data**2 * out.grad\n"
                    "    out._backward = _backward\n"
                    "    return out\n"
                    "Value.cube = cube")
    cell = FOUR_POINTS.replace("**2 for", ".cube() for")
    result = run_autograd(lecture, cell, "--engine Value")
    drawn = result.drawn_graph
    cubes = [n for n in drawn["nodes"] if n["op"] == "cube"]
    assert cubes and all("not read here ('cube')" in " ".join(n["explain"]) for n in cubes)
    ns = lecture.user_ns
    # their grads all the same, from their backward
    neurons = neurons_of(drawn)
    assert neurons["n.layers[2].neurons[0]"]["grad"] == ns["ypred"][0].grad
    assert neurons["n.layers[2].neurons[0]"]["grad"] == pytest.approx(
        3 * (ns["ypred"][0].data - 1.0) ** 2, rel=1e-12)


def test_a_long_training_loop_keeps_only_the_last_steps_calls(lecture) -> None:  # noqa: ANN001
    """Each recorded call holds its output and so its step's graph: at each backward() of
    theirs the calls before the last-but-one step are dropped, as CallLog does for
    engine.nn. Their training cell, run by the shell with the recording on around it."""
    from micrograd_magics.collapse import CallLog
    from micrograd_magics.foreign import ForeignRecorder
    from micrograd_magics.learner_calls import recording

    ns = lecture.user_ns
    log = CallLog()
    with recording(ForeignRecorder(ns["Value"], ns, "Value"), ns, log):
        lecture.run_cell(TRAINING.replace("range(20)", "range(60)")).raise_error()
    per_step = 4 * (9 + 3 + 1)  # each input: 9 neurons, 3 layers, the MLP
    assert len(log.calls) == per_step  # the last step's (its backward was the last)
    modules = [module for module, *_ in log.calls]
    assert sum(isinstance(m, ns["Neuron"]) for m in modules) == 4 * 9
    assert all(x is ns["xs"][-1] for m, x, _ in log.calls[-13:] if isinstance(m, ns["Neuron"])
               and m in ns["n"].layers[0].neurons)  # the first layer's were called on x
    assert log.calls[-1][2] is ns["ypred"][-1]  # the MLP's call on the last input, last
    assert not hasattr(ns["Neuron"].__call__, "__wrapped__")


def test_a_training_loop_under_engine_keeps_only_the_last_steps_alive(lecture) -> None:  # noqa: ANN001
    """The labels the magic gives (`loss`, `ypred[0]`) sit on their objects: none of the
    60 steps' graphs is held by the magic, so each garbage collection of their loop walks
    about one graph, not sixty. (They were kept alive so that their ids stayed theirs.)"""
    import gc

    Value = lecture.user_ns["Value"]
    gc.collect()
    before = sum(type(o) is Value for o in gc.get_objects())
    result = run_autograd(lecture, TRAINING.replace("range(20)", "range(60)"), "--engine Value")
    gc.collect()
    alive = sum(type(o) is Value for o in gc.get_objects()) - before
    per_step = result.graph["node_count"]
    assert per_step > 300
    assert alive < 3 * per_step, (alive, per_step)  # the last step's graph, one before it
    assert result.grads["loss"] == 1.0 and lecture.user_ns["loss"].label == "loss"


def test_a_training_loop_under_engine_leaves_the_grads_their_loop_left(lecture) -> None:  # noqa: ANN001
    """After their loop's last backward() the update `p.data += -0.05 * p.grad` changed
    every parameter; the magic's own backward on the graph (every run starts from zero
    grads) runs with the numbers their backward had, so their parameters keep the grads
    their loop gave them (before: up to 6e-4 apart), and a note says the leaves changed."""
    ns = lecture.user_ns
    random.seed(7)
    lecture.run_cell(TRAINING).raise_error()  # their loop, no magic
    plain = [p.grad for p in ns["n"].parameters()]
    after = [p.data for p in ns["n"].parameters()]
    random.seed(7)
    result = run_autograd(lecture, TRAINING, "--engine Value")
    theirs = [p.grad for p in ns["n"].parameters()]
    assert theirs == pytest.approx(plain, rel=1e-12, abs=1e-15)
    # the update stays theirs (the cell's lifted xs, ys are Values of theirs: the last bit
    # of a number may round otherwise than with floats)
    assert [p.data for p in ns["n"].parameters()] == pytest.approx(after, rel=1e-12)
    assert any("41 leaves changed after loss.backward()" in w for w in result.warnings)
    box = neurons_of(result.drawn_graph)["n.layers[2].neurons[0]"]
    assert box["grad"] == ns["ypred"][0].grad


def test_a_hand_written_loop_under_engine_keeps_its_grads_too(lecture) -> None:  # noqa: ANN001
    """No modules of theirs: the leaves are found through `_prev` as their backward()
    starts. w.grad after the magic is what their last backward() gave, worked by hand:
    L = (w*w - 2)**2, dL/dw = 2*(w*w - 2)*2w with the w before the update (the magic's
    backward had the w after it: their `*` rule reads w.data)."""
    cell = ("w = Value(0.5)\n"
            "for k in range(3):\n"
            "    L = (w*w + -2.0)**2\n"
            "    w.grad = 0.0\n"
            "    L.backward()\n"
            "    w.data -= 0.01 * w.grad")
    result = run_autograd(lecture, cell, "--engine Value")
    w, grad = 0.5, 0.0
    for _ in range(3):  # their loop in floats
        grad = 2 * (w * w - 2.0) * 2 * w
        w -= 0.01 * grad
    assert lecture.user_ns["w"].grad == pytest.approx(grad, rel=1e-12)
    assert lecture.user_ns["w"].data == pytest.approx(w, rel=1e-12)
    assert result.grads["w"] == pytest.approx(grad, rel=1e-12)
    assert any("1 leaf changed after L.backward()" in line for line in result.warnings)


@pytest.mark.parametrize(("text", "out", "read"), [
    ("**2", 9.0, ("**k", 2.0)), ("**-1", 1 / 3, ("**k", -1.0)),
    ("tanh", math.tanh(3.0), ("tanh", None)), ("ReLU", 3.0, ("ReLU", None)),
    ("+", 6.0, ("+", None)),  # a + a, kept in a set
    ("+", 5.0, ("+k", 2.0)), ("*", 6.0, ("*k", 2.0)),  # a number folded into their op
    ("-", -3.0, ("neg", None)), ("**", 27.0, None), ("cube", 27.0, None)])
def test_their_one_parent_ops_as_the_mirror_reads_them(text, out, read) -> None:  # noqa: ANN001
    from engine.value import Value
    from micrograd_magics.learner_calls import mirror_op

    a = Value(3.0)
    op, first, second, k, known = mirror_op(text, [a], out, {})
    assert first is a and known == (read is not None)
    if read is not None:
        assert (str(op), k) == read
        assert (second is a) == (str(op) in ("+", "*"))  # a + a: both parents are a
        assert op.forward(a.data, a.data if second is a else k) == pytest.approx(out)
