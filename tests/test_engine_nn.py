"""engine.nn: micrograd's demo (an MLP learning two moons) and parity with micrograd.nn."""

from __future__ import annotations

import gc
import math
import random

import pytest

from engine import Value, ops, topological_order
from engine.nn import MLP, Layer, Neuron, observing_calls


def make_moons(n: int = 100, noise: float = 0.1, seed: int = 1337):
    """sklearn's make_moons in pure Python: two interleaved half circles, labels -1 / +1."""
    rng = random.Random(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    X, y = [], []
    for i in range(n_outer):
        t = math.pi * i / (n_outer - 1)
        X.append([math.cos(t) + rng.gauss(0, noise), math.sin(t) + rng.gauss(0, noise)])
        y.append(-1)
    for i in range(n_inner):
        t = math.pi * i / (n_inner - 1)
        X.append([1 - math.cos(t) + rng.gauss(0, noise),
                  1 - math.sin(t) - 0.5 + rng.gauss(0, noise)])
        y.append(1)
    return X, y


def demo_loss(model, X, y, value=Value):
    """The demo notebook's loss: SVM max-margin loss plus 1e-4 L2, and the accuracy."""
    inputs = [list(map(value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def sgd_step(model, total_loss, k: int) -> None:
    model.zero_grad()
    total_loss.backward()
    learning_rate = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= learning_rate * p.grad


@pytest.fixture
def no_gc():
    """The demo makes ~35,000 nodes a step and no cycles; gc passes only cost time."""
    gc.disable()
    yield
    gc.enable()


def test_moons_data_set():
    X, y = make_moons()
    assert len(X) == len(y) == 100
    assert y.count(-1) == y.count(1) == 50
    assert all(-1.5 < a < 2.5 and -1.0 < b < 1.5 for a, b in X)


@pytest.mark.slow
def test_demo_training_reaches_95_percent_on_moons(no_gc):
    """The demo's loop: up to 100 steps of SGD with lr 1.0 - 0.9*k/100. It stops once 95%
    is reached (after a dozen steps; all 100 would take ~10 s of the suite's budget)."""
    X, y = make_moons(100, noise=0.1)
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == 337
    history = []
    for k in range(100):
        total_loss, accuracy = demo_loss(model, X, y)
        history.append((round(total_loss.data, 4), accuracy))
        if accuracy >= 0.95:
            break
        sgd_step(model, total_loss, k)
    assert accuracy >= 0.95, f"(loss, accuracy) every 10 steps: {history[::10]}"
    assert total_loss.data < history[0][0] / 3


def test_same_seed_gives_micrograds_weights_and_losses(no_gc):
    micrograd_nn = pytest.importorskip("micrograd.nn", reason="micrograd is a dev dependency")
    micrograd_engine = pytest.importorskip("micrograd.engine")
    X, y = make_moons(40, noise=0.1, seed=7)

    random.seed(1337)
    ours = MLP(2, [16, 16, 1])
    random.seed(1337)
    theirs = micrograd_nn.MLP(2, [16, 16, 1])
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    assert repr(ours) == repr(theirs)

    for k in range(3):
        our_loss, our_accuracy = demo_loss(ours, X, y)
        their_loss, their_accuracy = demo_loss(theirs, X, y, value=micrograd_engine.Value)
        assert our_loss.data == pytest.approx(their_loss.data, rel=1e-9, abs=0.0), k
        assert our_accuracy == their_accuracy
        sgd_step(ours, our_loss, k)
        sgd_step(theirs, their_loss, k)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert p.grad == pytest.approx(q.grad, rel=1e-9, abs=1e-12)
    assert [p.data for p in ours.parameters()] == pytest.approx(
        [p.data for p in theirs.parameters()], rel=1e-9, abs=1e-12)


def test_neuron_by_hand():
    random.seed(0)
    n = Neuron(2)
    n.w[0].data, n.w[1].data, n.b.data = 2.0, -1.0, 0.5
    out = n([1.0, 3.0])  # 2 - 3 + 0.5 = -0.5, through ReLU
    assert out.data == 0.0 and out._op == "ReLU"
    linear = Neuron(2, nonlin=False)
    linear.w[0].data, linear.w[1].data, linear.b.data = 2.0, -1.0, 0.5
    out = linear([1.0, 3.0])
    assert out.data == -0.5
    out.backward()
    assert [p.grad for p in linear.parameters()] == [1.0, 3.0, 1.0]
    linear.zero_grad()
    assert [p.grad for p in linear.parameters()] == [0.0, 0.0, 0.0]
    assert repr(n) == "ReLUNeuron(2)" and repr(linear) == "LinearNeuron(2)"


def test_neuron_with_value_inputs_by_hand():
    n = Neuron(2, nonlin=False)
    n.w[0].data, n.w[1].data, n.b.data = 2.0, -3.0, 1.0
    x = [Value(1.0, label="x0"), Value(2.0, label="x1")]
    out = n(x)  # 1 + 2*1 + (-3)*2 = -3
    assert out.data == -3.0
    out.backward()
    assert [p.grad for p in n.parameters()] == [1.0, 2.0, 1.0]  # dout/dw_i = x_i, dout/db = 1
    assert [xi.grad for xi in x] == [2.0, -3.0]  # dout/dx_i = w_i


def graph_signature(root: Value) -> list[tuple]:
    """Every node of root's graph in topological order: op, data, grad, label, and which
    nodes its parents are (by their position in that order). Two graphs with equal
    signatures have the same nodes, the same numbers and the same wiring."""
    nodes = topological_order(root)
    position = {id(n): i for i, n in enumerate(nodes)}
    return [(str(n._op), n.data, n.grad, n.label, [position[id(p)] for p in n._prev])
            for n in nodes]


@pytest.mark.parametrize("inputs", [
    [0.5, -1.5, 2.0],  # Values
    [0.5, -1.5, 2.0, 9.0],  # longer than the weights: zip stops, as micrograd's sum does
    [0.5, -1.5],  # shorter
    ["float", -1.5, 2.0],  # a plain float first: a folded-constant node
    [0.5, "int", 2.0],  # a plain int in the middle
])
@pytest.mark.parametrize("nonlin", [True, False])
def test_neuron_builds_the_graph_the_operators_build(inputs, nonlin):
    """Neuron writes its `*` and `+` nodes out (engine.value.weighted_sum); the graph must be
    the one `b + w0*x0 + w1*x1 + ...` makes with the operators, down to the last bit."""
    random.seed(3)
    n = Neuron(3, nonlin=nonlin)

    def fresh_inputs():
        return [1.25 if v == "float" else 3 if v == "int" else Value(v) for v in inputs]

    x = fresh_inputs()
    fast = n(x)
    fast.backward()
    fast_graph = graph_signature(fast)
    fast_grads = [p.grad for p in n.parameters()]
    n.zero_grad()

    y = fresh_inputs()
    act = n.b
    for w, xi in zip(n.w, y):
        act = act + w * xi
    slow = act.relu() if nonlin else act
    slow.backward()
    assert fast_graph == graph_signature(slow)
    assert fast_grads == [p.grad for p in n.parameters()]
    assert [getattr(v, "grad", None) for v in x] == [getattr(v, "grad", None) for v in y]


def test_neuron_on_plain_numbers_as_weights_uses_the_operators():
    n = Neuron(2, nonlin=False)
    n.w, n.b = [2.0, Value(-1.0)], 0.5  # not a learner's usual model, but plain Python
    out = n([Value(1.0), 3.0])
    assert out.data == 2.0 * 1.0 - 3.0 + 0.5
    assert [p._op for p in out._prev] == [ops.ADD_K, ops.MUL_K]  # 0.5 + 2.0*x0, then w1*3.0


def test_layer_and_mlp_shapes():
    layer = Layer(3, 4)
    out = layer([1.0, 2.0, 3.0])
    assert isinstance(out, list) and len(out) == 4
    assert len(layer.parameters()) == 4 * (3 + 1)
    single = Layer(3, 1)([1.0, 2.0, 3.0])
    assert isinstance(single, Value)
    model = MLP(3, [4, 4, 1])
    assert isinstance(model([1.0, -1.0, 0.5]), Value)
    assert len(model.parameters()) == 4 * 4 + 4 * 5 + 1 * 5
    assert [repr(n) for n in model.layers[-1].neurons] == ["LinearNeuron(4)"]
    model([Value(1.0), Value(-1.0), Value(0.5)]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_call_observer_sees_every_neuron_then_its_layer_then_the_model():
    random.seed(0)
    model = MLP(2, [3, 1])
    seen = []
    with observing_calls(lambda module, x, out: seen.append((module, x, out))):
        out = model([Value(1.0), Value(-2.0)])
    modules = [module for module, _, _ in seen]
    first, last = model.layers
    assert modules == [*first.neurons, first, *last.neurons, last, model]
    neuron_outs = [o for m, _, o in seen[:3]]
    assert seen[3][2] == neuron_outs  # the layer hands on its neurons' outputs
    assert seen[-1][2] is out
    # a ReLU neuron's output is relu(b + w.x): dead (0.0) exactly when its sum is <= 0
    for neuron, x, o in seen[:3]:
        total = neuron.b.data + sum(w.data * xi.data for w, xi in zip(neuron.w, x))
        assert o.data == max(total, 0.0)


def test_call_observer_is_gone_after_its_block():
    random.seed(0)
    model = MLP(2, [2, 1])
    seen = []
    with observing_calls(lambda *call: seen.append(call)):
        model([1.0, 2.0])
    count = len(seen)
    model([1.0, 2.0])
    assert count == 2 + 1 + 1 + 1 + 1 and len(seen) == count
