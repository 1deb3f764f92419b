"""%%autograd --torch: the cell replayed on float64 tensors, every gradient compared.

Each test runs a cell on a real IPython shell and checks the numbers a learner would check
by hand (a.grad == 6.0 in the lecture, torch agreeing on it), the comparison table in the
graph model, torch's own autograd graph, and that the replay leaves nothing behind: no
tensors in the namespace, no extra random draws, no second copy of the cell's prints.
"""

from __future__ import annotations

import math
import random
import sys

import pytest
from cells import (
    LECTURE,
    LECTURE_GRADS,
    NEURON,
    NEURON_EXP,
    NEURON_GRADS,
    clear_namespace,
    run_autograd,
)

from engine import Value
from micrograd_magics.result import AutogradResult

torch = pytest.importorskip("torch")




def autograd(ip, cell: str, line: str = "--torch") -> AutogradResult:
    return run_autograd(ip, cell, line)


def run(ip, source: str) -> None:
    """A normal cell; a failure in it fails the test."""
    ip.run_cell(source).raise_error()


def agrees(result: AutogradResult) -> None:
    """torch checked every labelled node and found nothing to complain about."""
    assert result.mismatches == []
    assert result.warnings == []
    assert set(result.torch_grads) == set(result.grads)
    for label, grad in result.grads.items():
        assert result.torch_grads[label] == pytest.approx(grad, rel=1e-9, abs=1e-12), label


# --- the result and the model's comparison table ---------------------------------------


def test_lecture_cell_torch_grads_are_the_lecture_numbers(shell):
    result = autograd(shell, LECTURE)
    assert result.torch_grads == LECTURE_GRADS
    assert result.grads == LECTURE_GRADS
    assert result.mismatches == []
    assert result.warnings == []


def test_compare_rows_have_label_data_engine_torch_diff_ok(shell):
    result = autograd(shell, LECTURE)
    compare = result.graph["compare"]
    assert compare["columns"] == ["torch"]
    assert compare["mismatches"] == []
    rows = {row["label"]: row for row in compare["rows"]}
    assert set(rows) == set(LECTURE_GRADS)
    a = rows["a"]
    assert (a["data"], a["engine"], a["torch"], a["diff"], a["ok"]) == (2.0, 6.0, 6.0, 0.0, True)
    assert rows["L"]["data"] == -8.0
    assert all({"label", "data", "engine", "torch", "diff", "ok"} <= set(r) for r in rows.values())
    assert "numeric" not in a


def test_failing_rows_come_first(shell):
    cell = "a = 3.0\nc = 4.0\nb = a + a\nL = b * c"
    result = autograd(shell, cell, "--torch --overwrite-grads")
    rows = result.graph["compare"]["rows"]
    assert [r["ok"] for r in rows] == [False] + [True] * (len(rows) - 1)
    assert rows[0]["label"] == "a"
    assert result.graph["compare"]["mismatches"] == [rows[0]["id"]]


def test_default_tolerance_is_recorded(shell):
    compare = autograd(shell, LECTURE).graph["compare"]
    assert compare["rtol"] == 1e-9
    assert compare["atol"] == 1e-12


def test_zero_tolerance_still_passes_an_exact_cell(shell):
    # + and * of these numbers are exact in float64 on both sides
    result = autograd(shell, LECTURE, "--torch --rtol 0 --atol 0")
    assert result.mismatches == []
    assert result.graph["compare"]["rtol"] == 0.0
    assert result.graph["compare"]["atol"] == 0.0
    assert all(row["diff"] == 0.0 for row in result.graph["compare"]["rows"])


def test_rtol_option_is_recorded(shell):
    compare = autograd(shell, NEURON, "--torch --rtol 1e-3 --atol 1e-7").graph["compare"]
    assert compare["rtol"] == 1e-3
    assert compare["atol"] == 1e-7


def test_config_tolerance_is_the_default(shell):
    shell.run_line_magic("config", "AutogradMagics.rtol = 1e-6")
    try:
        assert autograd(shell, LECTURE).graph["compare"]["rtol"] == 1e-6
    finally:
        shell.run_line_magic("config", "AutogradMagics.rtol = 1e-9")


def test_named_root(shell):
    result = autograd(shell, LECTURE, "d --torch")
    assert result.torch_grads["d"] == 1.0
    assert result.torch_grads["a"] == -3.0
    assert result.torch_grads["b"] == 2.0
    agrees(result)


def test_line_magic_with_torch(shell):
    run(shell, "w = 0.5\nx = -1.0\nk = 0.25")
    result = shell.run_line_magic("autograd", "--torch tanh(w*x + k)")
    slope = 1 - math.tanh(0.5 * -1.0 + 0.25) ** 2
    assert result.torch_grads["w"] == pytest.approx(-1.0 * slope)
    assert result.torch_grads["x"] == pytest.approx(0.5 * slope)
    assert result.torch_grads["k"] == pytest.approx(slope)
    agrees(result)


# --- a battery of cells on which engine and torch must agree --------------------------


@pytest.mark.parametrize("cell", [NEURON, NEURON_EXP], ids=["tanh", "tanh written with exp"])
def test_tanh_neuron(shell, cell):
    result = autograd(shell, cell)
    assert result.values["o"] == pytest.approx(math.sqrt(0.5))
    for label, grad in NEURON_GRADS.items():
        assert result.torch_grads[label] == pytest.approx(grad, abs=1e-12), label
    agrees(result)


def test_division_and_a_value_exponent(shell):
    cell = "a = 2.0\nb = 3.0\nq = a / b\np = a ** b\nL = q + p"
    result = autograd(shell, cell)
    # d(a/b + a**b)/da = 1/b + b*a**(b-1);  d/db = -a/b**2 + a**b * log(a)
    assert result.torch_grads["a"] == pytest.approx(1 / 3 + 12.0)
    assert result.torch_grads["b"] == pytest.approx(-2 / 9 + 8 * math.log(2.0))
    agrees(result)


def test_constants_on_either_side(shell):
    cell = ("a = 2.0\nb = 3.0\nc = 2 ** a\nd = a ** 0.5\ng = 1 / a\nh = 5 - a\nk = -a\n"
            "m = a / 4\nL = c + d + g + h + k + m + a / b")
    result = autograd(shell, cell)
    expected = 4 * math.log(2) + 0.5 / math.sqrt(2) - 0.25 - 1 - 1 + 0.25 + 1 / 3
    assert result.torch_grads["a"] == pytest.approx(expected)
    agrees(result)


FUNCTIONS = {
    "tanh(x)": lambda x: 1 - math.tanh(x) ** 2,
    "exp(x)": math.exp,
    "log(x)": lambda x: 1 / x,
    "sigmoid(x)": lambda x: math.exp(-x) / (1 + math.exp(-x)) ** 2,
    "sqrt(x)": lambda x: 0.5 / math.sqrt(x),
    "relu(x)": lambda x: 1.0,
    "relu(-x)": lambda x: 0.0,
    "x.tanh()": lambda x: 1 - math.tanh(x) ** 2,
    "x.relu()": lambda x: 1.0,
}


@pytest.mark.parametrize("expression", FUNCTIONS)
def test_each_function(shell, expression):
    result = autograd(shell, f"x = 0.7\ny = {expression}")
    assert result.torch_grads["x"] == pytest.approx(FUNCTIONS[expression](0.7))
    agrees(result)


def test_all_functions_in_one_expression(shell):
    cell = "x = 0.7\ny = log(x) + exp(x) + sigmoid(x) + sqrt(x) + relu(x) + relu(-x)"
    result = autograd(shell, cell)
    s = 1 / (1 + math.exp(-0.7))
    expected = 1 / 0.7 + math.exp(0.7) + s * (1 - s) + 0.5 / math.sqrt(0.7) + 1.0 + 0.0
    assert result.torch_grads["x"] == pytest.approx(expected)
    agrees(result)


def test_bare_functions_of_plain_numbers_stay_constants(shell):
    # exp(2) is a number, not a node: torch.exp(2) would raise, so the replay must not call it
    result = autograd(shell, "a = 2.0\nL = a * exp(2) + sqrt(4.0) * a")
    assert result.torch_grads["a"] == pytest.approx(math.exp(2) + 2.0)
    agrees(result)


def test_a_node_used_twice_by_one_op(shell):
    result = autograd(shell, "a = 3.0\nb = a + a")
    assert result.torch_grads == {"a": 2.0, "b": 1.0}
    agrees(result)


def test_a_node_used_in_several_places(shell):
    cell = "a = 1.5\nb = a * a\nc = b + a\nd = b * c\nL = d + b"
    result = autograd(shell, cell)
    # L = a**4 + a**3 + a**2
    assert result.torch_grads["a"] == pytest.approx(4 * 1.5**3 + 3 * 1.5**2 + 2 * 1.5)
    assert result.torch_grads["b"] == pytest.approx(2 * 2.25 + 1.5 + 1)  # c + b + 1
    agrees(result)


def test_loop(shell):
    cell = "x = 0.5\nc = 1.5\ny = 1.0\nfor i in range(3):\n    y = y * x + c"
    result = autograd(shell, cell)
    # y3 = x**3 * y0 + c * (x**2 + x + 1)
    assert result.torch_grads["x"] == pytest.approx(3 * 0.25 + 1.5 * 2.0)
    assert result.torch_grads["c"] == pytest.approx(1.75)
    assert result.torch_grads["y#1"] == pytest.approx(0.125)  # the leaf, y = 1.0
    assert result.torch_grads["y"] == 1.0
    agrees(result)


def test_function_defined_in_the_cell(shell):
    cell = ("def neuron(x, w, b):\n    return tanh(x * w + b)\n"
            "x = 0.5\nw = -1.5\nk = 0.25\no = neuron(x, w, k)")
    result = autograd(shell, cell)
    slope = 1 - math.tanh(0.5 * -1.5 + 0.25) ** 2
    assert result.torch_grads["x"] == pytest.approx(-1.5 * slope)
    assert result.torch_grads["w"] == pytest.approx(0.5 * slope)
    assert result.torch_grads["k"] == pytest.approx(slope)
    agrees(result)
    assert "neuron" in shell.user_ns  # a def is the user's, like any cell's


MLP_CELL = """\
import random
from engine.nn import MLP
random.seed(1)
model = MLP(2, [4, 4, 1])
xs = [[2.0, 3.0], [3.0, -1.0], [0.5, 1.0]]
ys = [1.0, -1.0, 1.0]
preds = [model(x) for x in xs]
loss = sum((p - y) ** 2 for p, y in zip(preds, ys))
w = model.layers[0].neurons[0].w[0]"""


def test_mlp_built_in_the_cell(shell):
    result = autograd(shell, MLP_CELL, "loss --torch")
    assert {"w", "ys[0]", "ys[1]", "ys[2]", "loss"} <= set(result.torch_grads)
    assert result.torch_grads["w"] != 0.0
    agrees(result)
    model = shell.user_ns["model"]
    assert all(type(p) is Value for p in model.parameters())
    assert result.grads["w"] == model.layers[0].neurons[0].w[0].grad


def _nonzero_weight(model) -> tuple[int, int, int]:
    for i, layer in enumerate(model.layers):
        for j, neuron in enumerate(layer.neurons):
            for k, weight in enumerate(neuron.w):
                if weight.grad != 0.0:
                    return i, j, k
    raise AssertionError("every weight has a zero gradient")


def test_mlp_built_in_an_earlier_cell(shell):
    run(shell, "import random\nfrom engine.nn import MLP\nrandom.seed(2)\nmodel = MLP(3, [4, 1])")
    cell = "xs = [1.0, -2.0, 0.5]\nout = model(xs)\nL = out * out"
    result = autograd(shell, cell)
    agrees(result)
    assert result.torch_grads["out"] == pytest.approx(2 * result.values["out"])
    i, j, k = _nonzero_weight(shell.user_ns["model"])
    # label a weight with a non-zero gradient, then run the cell again: the second run's
    # weight already has its label from the first, and the pairing must still hold
    labelled = f"w = model.layers[{i}].neurons[{j}].w[{k}]\n{cell}"
    for _ in range(2):
        result = autograd(shell, labelled)
        assert result.torch_grads["w"] != 0.0
        agrees(result)
    assert all(type(p) is Value for p in shell.user_ns["model"].parameters())


def test_values_from_an_earlier_autograd_cell(shell):
    autograd(shell, "a = 2.0\nb = -3.0\ne = a * b", "")
    result = autograd(shell, "c = 10.0\nd = e + c\nf = -2.0\nL = d * f")
    assert result.torch_grads == LECTURE_GRADS
    agrees(result)


def test_an_earlier_value_given_a_second_name(shell):
    autograd(shell, "a = 2.0\nb = -3.0\ne = a * b", "")
    result = autograd(shell, "c = 10.0\ny = e\nd = y + c\nL = d * -2.0")
    assert result.torch_grads["a"] == 6.0
    assert result.torch_grads["L"] == 1.0
    agrees(result)


def test_plain_numbers_from_earlier_cells_are_leaves(shell):
    run(shell, "x = 3.0\nw = -2.0")
    result = autograd(shell, "k = 0.5\nL = tanh(w * x * k)")
    slope = 1 - math.tanh(-3.0) ** 2
    assert result.torch_grads["x"] == pytest.approx(-2.0 * 0.5 * slope)
    assert result.torch_grads["w"] == pytest.approx(3.0 * 0.5 * slope)
    agrees(result)
    assert shell.user_ns["x"] == 3.0 and type(shell.user_ns["x"]) is float
    assert shell.user_ns["w"] == -2.0 and type(shell.user_ns["w"]) is float


def test_an_earlier_number_given_a_second_name(shell):
    run(shell, "x = 3.0")
    result = autograd(shell, "y = x\nL = y * 3 + x")
    assert result.torch_grads["x"] == 4.0
    agrees(result)


# --- the replay leaves the user's world as the engine run left it ---------------------


def test_namespace_holds_the_engines_values(shell):
    autograd(shell, LECTURE)
    ns = shell.user_ns
    for label, grad in LECTURE_GRADS.items():
        assert type(ns[label]) is Value, label
        assert ns[label].grad == grad, label
    assert not any(isinstance(v, torch.Tensor) for v in ns.values())
    assert "__autograd_cell__" not in ns and "tanh" not in ns


def test_same_namespace_with_and_without_torch(shell):
    snapshots = []
    for line in ("", "--torch"):
        clear_namespace(shell)
        run(shell, "scale = 0.5")
        autograd(shell, MLP_CELL + "\nL = loss * scale", line)
        ns = shell.user_ns
        params = [(p.data, p.grad) for p in ns["model"].parameters()]
        snapshots.append((sorted(k for k in ns if not k.startswith("_")), params,
                          ns["L"].data, ns["L"].grad, ns["scale"]))
    assert type(snapshots[1][-1]) is float and snapshots[1][-1] == 0.5
    assert snapshots[0] == snapshots[1]


def test_random_state_after_the_cell_is_the_engines(shell):
    draws = []
    for line in ("", "--torch"):
        random.seed(123)
        autograd(shell, MLP_CELL.replace("random.seed(1)\n", ""), line)
        draws.append(random.random())
    assert draws[0] == draws[1]


def test_the_cells_prints_show_once(shell, capsys):
    autograd(shell, "a = 2.0\nL = a * 3\nprint('printed', L.data)")
    out = capsys.readouterr().out
    assert out.count("printed") == 1
    assert "tensor" not in out


def test_earlier_lists_are_appended_to_once(shell):
    run(shell, "losses = []")
    autograd(shell, "a = 2.0\nL = a * 3\nlosses.append(L.data)")
    assert shell.user_ns["losses"] == [6.0]


def test_nested_containers_are_changed_once(shell):
    """The replay runs on copies of everything the cell reads, however deep: the learner's
    history gets one entry per run, not two."""
    run(shell, "history = {'loss': [], 'steps': [[]]}")
    autograd(shell, "a = 2.0\nL = a * 3\nhistory['loss'].append(L.data)\n"
                    "history['steps'][0].append(1)")
    assert shell.user_ns["history"] == {"loss": [6.0], "steps": [[1]]}


def test_values_nested_in_earlier_lists_are_compared(shell):
    run(shell, "from engine import Value\n"
               "rows = [[Value(2.0, label='a'), Value(-3.0, label='b')],\n"
               "        (Value(10.0, label='c'),)]")
    result = autograd(shell, "e = rows[0][0] * rows[0][1]\nd = e + rows[1][0]\nL = d * -2.0")
    assert result.torch_grads["a"] == 6.0 and result.torch_grads["c"] == -2.0
    agrees(result)


def test_every_run_starts_from_zero_gradients(shell):
    first = autograd(shell, LECTURE)
    second = autograd(shell, LECTURE)
    assert first.torch_grads == second.torch_grads == LECTURE_GRADS
    assert second.mismatches == []


# --- torch's own graph --------------------------------------------------------------


def test_torch_graph_of_the_neuron(shell):
    graph = autograd(shell, NEURON, "--torch --torch-graph").graph["torch_graph"]
    nodes = graph["nodes"]
    names = sorted(n["name"] for n in nodes)
    assert names == sorted(["TanhBackward0", "AddBackward0", "AddBackward0", "MulBackward0",
                            "MulBackward0"] + ["AccumulateGrad"] * 5)
    maps = {n["maps_to"]: n["name"] for n in nodes}
    assert maps["o"] == "TanhBackward0"
    assert maps["n"] == "AddBackward0"
    assert maps["x1*w1"] == "MulBackward0"
    for leaf in ("x1", "x2", "w1", "w2", "b"):
        assert maps[leaf] == "AccumulateGrad"
    assert graph["truncated"] is False
    by_id = {n["id"]: n for n in nodes}
    edges = {(by_id[e["source"]]["maps_to"], by_id[e["target"]]["maps_to"])
             for e in graph["edges"]}
    assert ("x1", "x1*w1") in edges and ("n", "o") in edges
    assert len(graph["edges"]) == len(nodes) - 1  # a tree here: no node is reused


def test_torch_graph_of_the_lecture(shell):
    graph = autograd(shell, LECTURE, "--torch --torch-graph").graph["torch_graph"]
    maps = {n["maps_to"]: n["name"] for n in graph["nodes"]}
    assert maps == {"L": "MulBackward0", "e": "MulBackward0", "d": "AddBackward0",
                    "a": "AccumulateGrad", "b": "AccumulateGrad", "c": "AccumulateGrad",
                    "f": "AccumulateGrad"}


def test_no_torch_graph_unless_asked(shell):
    assert "torch_graph" not in autograd(shell, LECTURE).graph


# --- when the replay cannot run --------------------------------------------------------


def test_torch_not_installed(shell, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = autograd(shell, LECTURE)
    assert result.warnings == ['torch is not installed: pip install "micrograd-magics[torch]"']
    assert result.grads == LECTURE_GRADS
    assert result.torch_grads == {}
    assert result.mismatches == []
    shown = repr(result)
    assert 'pip install "micrograd-magics[torch]"' in shown
    assert "L" in shown and "6.0000" in shown  # the table is still there
    assert "micrograd-magics[torch]" in result._repr_html_()


def test_torch_not_installed_numeric_check_still_runs(shell, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = autograd(shell, LECTURE, "--torch --check numeric")
    assert len(result.warnings) == 1 and "micrograd-magics[torch]" in result.warnings[0]
    assert result.numeric_grads["a"] == pytest.approx(6.0)
    assert result.mismatches == []


@pytest.mark.slow  # a fresh interpreter importing IPython and torch
def test_torch_is_imported_only_when_a_cell_asks(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    script = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "micrograd_magics")
ip.run_cell_magic("autograd", "", "a = 2.0\\nb = a * 3")
ip.run_cell_magic("autograd", "--check numeric --overwrite-grads", "a = 2.0\\nb = a + a")
print("before", "torch" in sys.modules)
result = ip.run_cell_magic("autograd", "--torch", "a = 2.0\\nb = a * 3")
print("after", "torch" in sys.modules, result.torch_grads["a"])
"""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                                      os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "before False" in done.stdout
    assert "after True 3.0" in done.stdout


TYPE_CHECK = """\
def double(x):
    if type(x).__name__ != "Value":
        raise TypeError("double() wants a Value")
    return x * 2
a = 3.0
y = double(a)
L = y * a"""


def test_a_cell_that_checks_the_value_type_is_compared(shell):
    # the old replay ran this cell on tensors and failed; the recorded graph replays as is
    result = autograd(shell, TYPE_CHECK)
    assert result.grads["a"] == 12.0  # L = 2a * a
    assert result.torch_grads["a"] == 12.0 and result.torch_grads["y"] == 3.0
    assert result.mismatches == [] and result.warnings == []
    assert type(shell.user_ns["L"]) is Value and shell.user_ns["L"].data == 18.0


def test_a_branch_on_the_value_type_is_compared(shell):
    cell = ("from engine import Value\na = 3.0\ny = a * 2\n"
            "z = y if isinstance(y, Value) else undefined_name\nL = z * a")
    result = autograd(shell, cell)
    assert result.grads["a"] == 12.0 and result.torch_grads["a"] == 12.0
    assert result.warnings == []


def test_the_torch_check_leaves_torchs_thread_setting_as_it_was(ip):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = run_autograd(ip, LECTURE, "--torch")
        assert result.torch_grads["a"] == 6.0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
