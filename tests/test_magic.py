"""%%autograd on a real IPython shell: the numbers a learner checks by hand, leaves, labels,
counts, roots, reruns and what the cell leaves in the namespace."""

from __future__ import annotations

import math

import pytest
from cells import LECTURE, NEURON, run_autograd

from engine import Value
from micrograd_magics.result import AutogradResult

HELPERS = ("tanh", "exp", "log", "relu", "sigmoid", "sqrt", "__autograd_cell__")


def autograd(ip, cell: str, line: str = "") -> AutogradResult:
    return run_autograd(ip, cell, line)


def run_ok(ip, source: str):
    """Run a cell the notebook way; a failing cell fails the test."""
    outcome = ip.run_cell(source)
    outcome.raise_error()
    return outcome.result


def assert_no_helpers(ip) -> None:
    left = [name for name in HELPERS if name in ip.user_ns]
    assert left == [], f"left behind in the user namespace: {left}"


# --- the lecture's examples ------------------------------------------------------------


def test_lecture_cell_gradients(ip):
    result = autograd(ip, LECTURE)
    assert result.grads == {"a": 6.0, "b": -4.0, "c": -2.0, "e": -2.0, "d": -2.0,
                            "f": 4.0, "L": 1.0}
    assert result.values == {"a": 2.0, "b": -3.0, "c": 10.0, "e": -6.0, "d": 4.0,
                             "f": -2.0, "L": -8.0}
    assert result.root is ip.user_ns["L"]


def test_lecture_cell_through_run_cell_sets_underscore_and_namespace(ip):
    result = run_ok(ip, "%%autograd\n" + LECTURE)
    assert isinstance(result, AutogradResult)
    assert ip.user_ns["_"] is result
    a = ip.user_ns["a"]
    assert isinstance(a, Value)
    assert a.label == "a"
    assert a.data == 2.0
    assert a.grad == 6.0
    assert ip.user_ns["f"].grad == 4.0
    assert ip.user_ns["L"].grad == 1.0


def test_tanh_neuron(ip):
    result = autograd(ip, NEURON)
    o = ip.user_ns["o"]
    assert o.data == pytest.approx(math.sqrt(0.5))
    assert result.values["o"] == pytest.approx(0.7071, abs=1e-4)
    expected = {"o": 1.0, "n": 0.5, "b": 0.5, "w1": 1.0, "x1": -1.5, "x2": 0.5, "w2": 0.0,
                "x1*w1": 0.5, "x2*w2": 0.5, "x1*w1 + x2*w2": 0.5}
    assert result.grads == pytest.approx(expected)
    # intermediates carry their source text
    assert result.values["x1*w1 + x2*w2"] == pytest.approx(-6.0)
    assert result.values["x1*w1"] == pytest.approx(-6.0)
    assert result.values["x2*w2"] == 0.0


def test_labels_names_drops_source_text_labels(ip):
    result = autograd(ip, NEURON, "--labels names")
    assert set(result.grads) == {"x1", "x2", "w1", "w2", "b", "n", "o"}
    assert result.grads["x1"] == pytest.approx(-1.5)
    assert result.grads["n"] == pytest.approx(0.5)


def test_labels_names_from_config(ip):
    ip.run_line_magic("config", "AutogradMagics.labels = 'names'")
    result = autograd(ip, NEURON)
    assert "x1*w1 + x2*w2" not in result.values
    assert "x1*w1 + x2*w2" in autograd(ip, NEURON, "--labels all").values


# --- leaves, reuse, loops, lists, counts -------------------------------------------------


def test_a_node_used_twice_accumulates(ip):
    result = autograd(ip, "a = 3.0\nb = a + a")
    assert result.grads["a"] == 2.0
    assert result.values["b"] == 6.0


def test_a_node_reused_in_a_loop(ip):
    result = autograd(ip, "x = 2.0\ny = 1.0\nfor i in range(3):\n    y = y * x")
    assert result.grads["x"] == 12.0  # y = x**3, dy/dx = 3 * x**2
    assert result.values["y"] == 8.0
    assert result.grads["y"] == 1.0
    assert result.root is ip.user_ns["y"]


def test_a_count_stays_a_plain_int(ip):
    result = autograd(ip, "steps = 3\nx = 2.0\ny = 1.0\nfor i in range(steps):\n    y = y * x")
    assert result.grads["x"] == 12.0
    assert "steps" not in result.grads
    assert type(ip.user_ns["steps"]) is int
    assert ip.user_ns["steps"] == 3


def test_an_index_name_stays_a_plain_int(ip):
    result = autograd(ip, "w = [1.0, -2.0]\ni = 1\nL = w[i] * 3.0")
    assert result.grads == {"w[1]": 3.0, "L": 1.0}
    assert type(ip.user_ns["i"]) is int


def test_a_list_of_numbers_makes_indexed_leaves(ip):
    result = autograd(ip, "w = [1.0, -2.0]\nL = w[0] * w[1]")
    assert result.grads["w[0]"] == -2.0
    assert result.grads["w[1]"] == 1.0
    w = ip.user_ns["w"]
    assert isinstance(w, list)
    assert [v.label for v in w] == ["w[0]", "w[1]"]


def test_indexing_with_a_range_variable(ip):
    cell = ("w = [1.0, -2.0]\nx = [3.0, 4.0]\ns = 0.0\n"
            "for i in range(2):\n    s = s + w[i]*x[i]")
    result = autograd(ip, cell)
    assert result.values["s"] == -5.0
    assert result.grads["w[0]"] == 3.0
    assert result.grads["w[1]"] == 4.0
    assert result.grads["x[0]"] == 1.0
    assert result.grads["x[1]"] == -2.0


def test_range_of_len_keeps_the_list_a_leaf(ip):
    # `range(len(w))` uses the length of w as a count, not w itself
    cell = "w = [1.0, -2.0]\ns = 0.0\nfor i in range(len(w)):\n    s = s + w[i]*w[i]"
    result = autograd(ip, cell)
    assert result.values["s"] == 5.0
    assert result.grads["w[0]"] == 2.0
    assert result.grads["w[1]"] == -4.0


def test_names_from_earlier_cells_are_leaves_and_left_untouched(ip):
    run_ok(ip, "a = 2.0\nn = 4")
    result = autograd(ip, "L = a * n + a")
    assert result.grads["a"] == 5.0  # n + 1
    assert result.grads["n"] == 2.0  # a
    assert result.values["L"] == 10.0
    assert type(ip.user_ns["a"]) is float and ip.user_ns["a"] == 2.0
    assert type(ip.user_ns["n"]) is int and ip.user_ns["n"] == 4
    assert isinstance(ip.user_ns["L"], Value)


def test_an_earlier_count_is_not_lifted(ip):
    run_ok(ip, "steps = 3\nx = 2.0")
    result = autograd(ip, "y = 1.0\nfor i in range(steps):\n    y = y * x")
    assert result.grads["x"] == 12.0
    assert "steps" not in result.grads
    assert type(ip.user_ns["steps"]) is int
    assert type(ip.user_ns["x"]) is float


# --- the line magic ----------------------------------------------------------------------


def neuron_grads(w: float, x: float, b: float) -> dict[str, float]:
    t = math.tanh(w * x + b)
    local = 1 - t * t
    return {"w": x * local, "x": w * local, "b": local}


def test_line_magic_gradients_and_plain_floats_afterwards(ip):
    run_ok(ip, "w = 3.0\nx = 0.5\nb = 0.1\nunused = 7.0")
    result = ip.run_line_magic("autograd", "tanh(w*x + b)")
    expected = neuron_grads(3.0, 0.5, 0.1)
    assert result.grads["w"] == pytest.approx(expected["w"])  # 0.5 * (1 - tanh(1.6)**2)
    assert result.grads["x"] == pytest.approx(expected["x"])
    assert result.grads["b"] == pytest.approx(expected["b"])
    assert result.grads["b"] == pytest.approx(0.150527, abs=1e-6)
    assert result.root.data == pytest.approx(math.tanh(1.6))
    assert result.grads["tanh(w*x + b)"] == 1.0
    for name, number in {"w": 3.0, "x": 0.5, "b": 0.1, "unused": 7.0}.items():
        assert type(ip.user_ns[name]) is float and ip.user_ns[name] == number
    assert_no_helpers(ip)


def test_line_magic_through_run_cell(ip):
    run_ok(ip, "w = 3.0\nx = 0.5\nb = 0.1")
    result = run_ok(ip, "%autograd tanh(w*x + b)")
    assert isinstance(result, AutogradResult)
    assert ip.user_ns["_"] is result
    assert result.grads["w"] == pytest.approx(neuron_grads(3.0, 0.5, 0.1)["w"])
    assert type(ip.user_ns["w"]) is float


def test_line_magic_takes_options(ip):
    run_ok(ip, "w = 3.0\nx = 0.5\nb = 0.1")
    result = ip.run_line_magic("autograd", "--precision 2 --labels names tanh(w*x + b)")
    assert result.graph["precision"] == 2
    assert set(result.grads) == {"w", "x", "b"}
    assert result.grads["x"] == pytest.approx(neuron_grads(3.0, 0.5, 0.1)["x"])


# --- the root ----------------------------------------------------------------------------


def test_root_by_name(ip):
    result = autograd(ip, "a = 2.0\nL = a * 3.0\nM = L * L", "L")
    assert result.root is ip.user_ns["L"]
    assert result.grads == {"a": 3.0, "L": 1.0}
    assert ip.user_ns["M"].grad == 0.0


def test_root_default_is_the_last_value_assigned(ip):
    result = autograd(ip, "a = 2.0\nL = a * 3.0\nmessage = 'done'\nk = len(message)")
    assert result.root is ip.user_ns["L"]
    assert result.grads["a"] == 3.0


def test_root_default_can_be_the_last_expression(ip):
    result = autograd(ip, "a = 2.0\nb = a * 3.0\nb * b + 1.0")
    assert result.root.data == 37.0
    assert result.grads["a"] == 36.0  # d(9a^2 + 1)/da = 18a
    assert result.grads["b * b + 1.0"] == 1.0


def test_root_given_by_name_from_an_earlier_cell(ip):
    autograd(ip, "a = 2.0\nL = a * a")
    result = autograd(ip, "M = L + 1.0", "L")
    assert result.root is ip.user_ns["L"]
    assert result.grads["a"] == 4.0


# --- reruns ------------------------------------------------------------------------------


def test_rerun_gives_the_same_gradients(ip):
    first = autograd(ip, LECTURE).grads
    second = autograd(ip, LECTURE).grads
    assert first == second
    assert second["a"] == 6.0


def test_rerun_with_values_from_an_earlier_cell_resets_their_grads(ip):
    run_ok(ip, "from engine import Value\np = Value(2.0, 'p')\nq = Value(-1.0, 'q')")
    for _ in range(3):
        result = autograd(ip, "L = p * q + q")
        assert result.grads["p"] == -1.0  # q
        assert result.grads["q"] == 3.0  # p + 1
        assert ip.user_ns["q"].grad == 3.0


def test_rerun_with_an_nn_model_from_an_earlier_cell(ip):
    run_ok(ip, "import random\nrandom.seed(1)\nfrom engine.nn import MLP\n"
               "model = MLP(2, [4, 1])")
    model = ip.user_ns["model"]
    params = model.parameters()
    xs = [[2.0, 3.0], [1.0, -1.0], [-0.5, 0.5]]
    ys = [1.0, -1.0, 1.0]
    # the reference: the same loss by hand on the engine
    model.zero_grad()
    reference = sum(((model(x) - y) ** 2 for x, y in zip(xs, ys)), Value(0.0))
    reference.backward()
    expected = [p.grad for p in params]
    assert any(g != 0.0 for g in expected)

    cell = ("xs = [[2.0, 3.0], [1.0, -1.0], [-0.5, 0.5]]\nys = [1.0, -1.0, 1.0]\n"
            "preds = [model(x) for x in xs]\n"
            "loss = sum((p - y)**2 for p, y in zip(preds, ys))")
    for _ in range(2):
        result = autograd(ip, cell)
        assert [p.grad for p in params] == pytest.approx(expected)
        assert result.values["loss"] == pytest.approx(reference.data)
        assert result.grads["loss"] == 1.0
        preds = [p.data for p in ip.user_ns["preds"]]
        for k, (pred, y) in enumerate(zip(preds, ys)):
            assert result.grads[f"ys[{k}]"] == pytest.approx(-2 * (pred - y))


def test_no_backward_leaves_every_grad_zero(ip):
    run_ok(ip, "from engine import Value\np = Value(2.0, 'p')")
    autograd(ip, "L = p * 3.0")
    assert ip.user_ns["p"].grad == 3.0
    result = autograd(ip, "a = 2.0\nL = a * p + 1.0", "--no-backward")
    assert result.values == {"a": 2.0, "p": 2.0, "a * p": 4.0, "L": 5.0}
    assert set(result.grads.values()) == {0.0}
    assert ip.user_ns["p"].grad == 0.0  # the earlier run's gradient is reset too
    assert result.graph["steps"] == []


# --- what the cell leaves behind ---------------------------------------------------------


def test_only_the_cells_names_are_added(ip):
    before = set(ip.user_ns)
    autograd(ip, "a = 0.5\nb = exp(a)\nL = tanh(b) + log(b) + relu(a) + sigmoid(a) + sqrt(b)")
    assert set(ip.user_ns) - before == {"a", "b", "L"}
    assert_no_helpers(ip)


def test_users_own_tanh_is_put_back(ip):
    run_ok(ip, "from math import tanh\nexp = 'my exp'")
    result = autograd(ip, "a = 0.5\nL = tanh(a)")
    assert result.grads["a"] == pytest.approx(1 - math.tanh(0.5) ** 2)
    assert ip.user_ns["tanh"] is math.tanh
    assert ip.user_ns["exp"] == "my exp"
    assert "__autograd_cell__" not in ip.user_ns


def test_a_cell_that_imports_its_own_tanh_keeps_it(ip):
    autograd(ip, "from engine import tanh\na = 0.5\nL = tanh(a)")
    import engine

    assert ip.user_ns["tanh"] is engine.tanh  # the cell bound it, like any cell would


# --- any Python ----------------------------------------------------------------------------


def test_a_function_defined_in_the_cell_can_use_tanh(ip):
    cell = ("def neuron(x, w, b):\n    return tanh(x*w + b)\n"
            "x = 1.0\nw = 0.5\nb = 0.0\no = neuron(x, w, b)")
    result = autograd(ip, cell)
    local = 1 - math.tanh(0.5) ** 2
    assert result.grads["w"] == pytest.approx(1.0 * local)
    assert result.grads["x"] == pytest.approx(0.5 * local)
    assert result.grads["b"] == pytest.approx(local)
    assert callable(ip.user_ns["neuron"])
    assert_no_helpers(ip)


def test_comprehensions_and_conditionals(ip):
    cell = ("xs = [1.0, 2.0, 3.0]\nsquares = [x*x for x in xs]\nL = sum(squares)\n"
            "if L.data > 10:\n    L = L * 0.5")
    result = autograd(ip, cell)
    assert result.values["L"] == 7.0
    assert [result.grads[f"xs[{i}]"] for i in range(3)] == [1.0, 2.0, 3.0]  # 0.5 * 2x


def test_mlp_forward_and_loss_in_the_cell(ip):
    cell = ("import random\nrandom.seed(0)\nfrom engine.nn import MLP\n"
            "model = MLP(2, [3, 1])\n"
            "xs = [[2.0, 3.0], [1.0, -1.0]]\nys = [1.0, -1.0]\n"
            "loss = sum((model(x) - y)**2 for x, y in zip(xs, ys))")
    result = autograd(ip, cell)
    model = ip.user_ns["model"]
    ours = [p.grad for p in model.parameters()]
    model.zero_grad()
    loss = sum((model(x) - y) ** 2 for x, y in zip([[2.0, 3.0], [1.0, -1.0]], [1.0, -1.0]))
    loss.backward()
    assert ours == pytest.approx([p.grad for p in model.parameters()])
    assert result.values["loss"] == pytest.approx(loss.data)
    assert result.root is ip.user_ns["loss"]


# --- non-finite numbers ------------------------------------------------------------------


def test_non_finite_data_and_grads_are_warned_about(ip):
    result = autograd(ip, "a = 0.0\nL = log(a)")
    assert result.values["L"] == -math.inf
    assert result.grads["a"] == math.inf
    assert any("L" in w and "-inf" in w for w in result.warnings)
    assert any("gradient" in w and "a" in w for w in result.warnings)
    shown = repr(result)
    assert "warning: non-finite data: L = -inf" in shown
    assert "warning: non-finite gradient: a = inf" in shown


def test_non_finite_warning_is_visible_in_the_cell_output(ip, capsys):
    outcome = ip.run_cell("%%autograd\na = 0.0\nL = log(a)")
    assert outcome.success
    assert isinstance(outcome.result, AutogradResult)
    out = capsys.readouterr().out
    assert "non-finite data: L = -inf" in out


# --- config --------------------------------------------------------------------------------


def test_config_precision(ip):
    assert autograd(ip, "a = 2.0\nL = a * a").graph["precision"] == 4
    ip.run_line_magic("config", "AutogradMagics.precision = 2")
    result = autograd(ip, "a = 2.0\nL = a * a")
    assert result.graph["precision"] == 2
    assert "4.00" in repr(result) and "4.0000" not in repr(result)
    assert autograd(ip, "a = 2.0\nL = a * a", "--precision 3").graph["precision"] == 3


def test_model_parameters_are_named_by_their_path(ip):
    ip.run_cell("import random\nfrom engine.nn import Neuron\nrandom.seed(3)\n"
                "neuron = Neuron(2, nonlin=False)")
    neuron = ip.user_ns["neuron"]
    result = autograd(ip, "x0 = 1.5\nx1 = -2.0\nact = neuron([x0, x1])")
    # act = b + w0*x0 + w1*x1: d act/d w_i = x_i, d act/d b = 1
    assert result.grads["neuron.w[0]"] == 1.5
    assert result.grads["neuron.w[1]"] == -2.0
    assert result.grads["neuron.b"] == 1.0
    assert result.grads["x0"] == neuron.w[0].data
    # an explicit name wins over the path, on this run and the next
    for _ in range(2):
        result = autograd(ip, "x0 = 1.5\nx1 = -2.0\nw = neuron.w[1]\nact = neuron([x0, x1])")
        assert result.grads["w"] == -2.0
        assert "neuron.w[1]" not in result.grads


def test_named_parameters_follow_the_model_structure():
    from engine.nn import MLP

    model = MLP(2, [3, 1])
    named = model.named_parameters()
    assert [p for _, p in named] == model.parameters()
    assert named[0][0] == "layers[0].neurons[0].w[0]"
    assert named[-1][0] == "layers[1].neurons[0].b"
