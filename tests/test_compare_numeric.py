"""%%autograd --check numeric (central finite differences, no torch) and the lecture's
gradient-overwrite bug (--overwrite-grads), checked by torch and by the numeric estimate.

The overwrite rule: backward assigns (=) instead of adding (+=), so a node reached by two
paths keeps only the last contribution. Its row fails; so does every node upstream of it
(its inputs), whose gradients are built from the wrong one. Nodes whose gradients do not
pass through a reused node stay right.
"""

from __future__ import annotations

import math

import pytest
from cells import LECTURE, NEURON, run_autograd

from micrograd_magics.result import AutogradResult

BATTERY = {
    "lecture": LECTURE,
    "neuron": NEURON,
    "neuron with exp": NEURON.replace("o = tanh(n)", "o = (exp(2*n) - 1) / (exp(2*n) + 1)"),
    "division and power": "a = 2.0\nb = 3.0\nq = a / b\np = a ** b\nL = q + p",
    "functions": "x = 0.7\ny = log(x) + exp(x) + sigmoid(x) + sqrt(x) + relu(x) + x.tanh()",
    "reuse": "a = 1.5\nb = a * a\nc = b + a\nd = b * c\nL = d + b",
    "a + a": "a = 3.0\nb = a + a",
    "loop": "x = 0.5\nc = 1.5\ny = 1.0\nfor i in range(3):\n    y = y * x + c",
    "function": ("def neuron(x, w, b):\n    return tanh(x * w + b)\n"
                 "x = 0.5\nw = -1.5\nk = 0.25\no = neuron(x, w, k)"),
    "list leaves": ("w = [0.5, -1.0, 2.0]\nxs = [1.0, 2.0, 3.0]\n"
                    "L = sum(wi * xi for wi, xi in zip(w, xs))"),
}


def autograd(ip, cell: str, line: str) -> AutogradResult:
    return run_autograd(ip, cell, line)


def rows_by_label(result: AutogradResult) -> dict[str, dict]:
    return {row["label"]: row for row in result.graph["compare"]["rows"]}


def leaves(result: AutogradResult) -> set[str]:
    return {n["label"] for n in result.graph["nodes"] if n["leaf"] and n["label"]}


def reached_twice(result: AutogradResult) -> set[str]:
    names = {n["id"]: n["name"] for n in result.graph["nodes"]}
    return {names[i] for i in result.graph["reached_twice"]}


# --- --check numeric ----------------------------------------------------------------


def test_numeric_check_of_the_lecture(shell):
    result = autograd(shell, LECTURE, "--check numeric")
    assert result.mismatches == []
    assert result.warnings == []
    assert result.torch_grads == {}
    compare = result.graph["compare"]
    assert compare["columns"] == ["numeric"]
    rows = rows_by_label(result)
    assert set(rows) == {"a", "b", "c", "f"}  # one row per leaf
    expected = {"a": 6.0, "b": -4.0, "c": -2.0, "f": 4.0}
    for label, grad in expected.items():
        assert rows[label]["numeric"] == pytest.approx(grad, rel=1e-6), label
        assert rows[label]["engine"] == grad
        assert rows[label]["ok"] is True
        assert "torch" not in rows[label]
    assert result.numeric_grads == pytest.approx(expected, rel=1e-6)


def test_numeric_check_of_the_neuron(shell):
    result = autograd(shell, NEURON, "--check numeric")
    assert result.mismatches == []
    expected = {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5}
    assert set(result.numeric_grads) == set(expected)
    for label, grad in expected.items():
        assert result.numeric_grads[label] == pytest.approx(grad, rel=1e-6, abs=1e-8), label


def test_numeric_check_covers_earlier_numbers(shell):
    shell.run_cell("x = 3.0").raise_error()
    result = autograd(shell, "w = -0.5\nL = tanh(w * x)", "--check numeric")
    slope = 1 - math.tanh(-1.5) ** 2
    assert result.numeric_grads["x"] == pytest.approx(-0.5 * slope, rel=1e-6)
    assert result.numeric_grads["w"] == pytest.approx(3.0 * slope, rel=1e-6)
    assert result.mismatches == []
    assert shell.user_ns["x"] == 3.0


@pytest.mark.parametrize("name", BATTERY)
def test_battery_numeric_only(shell, name):
    result = autograd(shell, BATTERY[name], "--check numeric")
    assert result.mismatches == []
    assert result.warnings == []
    assert set(result.numeric_grads) == leaves(result)


@pytest.mark.parametrize("name", BATTERY)
def test_battery_torch_and_numeric(shell, name):
    pytest.importorskip("torch")
    result = autograd(shell, BATTERY[name], "--torch --check numeric")
    assert result.mismatches == []
    assert result.warnings == []
    assert result.graph["compare"]["columns"] == ["torch", "numeric"]
    assert set(result.torch_grads) == set(result.grads)
    assert set(result.numeric_grads) == leaves(result)
    for row in result.graph["compare"]["rows"]:  # torch: every labelled node; numeric: leaves
        assert (row["numeric"] is None) == (row["label"] not in leaves(result)), row["label"]


def test_list_leaves_are_checked_each(shell):
    result = autograd(shell, BATTERY["list leaves"], "--check numeric")
    assert result.numeric_grads == pytest.approx(
        {"w[0]": 1.0, "w[1]": 2.0, "w[2]": 3.0, "xs[0]": 0.5, "xs[1]": -1.0, "xs[2]": 2.0},
        rel=1e-6)


# --- --overwrite-grads: the lecture's bug --------------------------------------------


@pytest.mark.parametrize("check", ["--torch", "--check numeric", "--torch --check numeric"])
def test_a_plus_a(shell, check):
    if "torch" in check:
        pytest.importorskip("torch")
    result = autograd(shell, "a = 3.0\nb = a + a", f"{check} --overwrite-grads")
    assert result.mismatches == ["a"]
    assert result.grads["a"] == 1.0  # the second contribution overwrote the first
    row = rows_by_label(result)["a"]
    assert row["engine"] == 1.0 and row["ok"] is False
    reference = row.get("torch", row.get("numeric"))
    assert reference == pytest.approx(2.0)
    assert row["diff"] == pytest.approx(1.0)
    if "torch" in check:
        assert result.torch_grads["a"] == 2.0
    if "numeric" in check:
        assert result.numeric_grads["a"] == pytest.approx(2.0)
    if "torch" in check:  # numeric alone has a row per leaf only
        assert rows_by_label(result)["b"]["ok"] is True
    assert reached_twice(result) == {"a"}
    assert any("a reached twice" in w for w in result.warnings)
    assert any("a reached twice" in n for n in result.graph["compare"]["notes"])


def test_accumulating_is_right_on_the_same_cell(shell):
    result = autograd(shell, "a = 3.0\nb = a + a", "--check numeric")
    assert result.grads["a"] == 2.0
    assert result.mismatches == []
    assert not any("reached twice" in w for w in result.warnings)


REUSED_LEAVES = """\
a = 2.0
b = -3.0
c = 10.0
f = -2.0
e = a * b
d = e + c * a
L = d * f + c"""
# L = (a*b + c*a)*f + c. Reused: a (in e and c*a) and c (in c*a and L), both leaves, so
# nothing sits upstream of them. True gradients: dL/da = (b + c)*f = -14,
# dL/dc = a*f + 1 = -3, dL/db = a*f = -4, dL/df = d = 14.


@pytest.mark.parametrize("check", ["--torch", "--check numeric"])
def test_exactly_the_reused_leaves_fail(shell, check):
    if "torch" in check:
        pytest.importorskip("torch")
    result = autograd(shell, REUSED_LEAVES, f"{check} --overwrite-grads")
    assert sorted(result.mismatches) == ["a", "c"]
    assert reached_twice(result) == {"a", "c"}
    # each keeps one of its two contributions, never their sum
    assert result.grads["a"] in (-3.0 * -2.0, 10.0 * -2.0)
    assert result.grads["c"] in (2.0 * -2.0, 1.0)
    assert result.grads["b"] == -4.0
    assert result.grads["f"] == 14.0
    rows = rows_by_label(result)
    reference = "torch" if "torch" in check else "numeric"
    assert rows["a"][reference] == pytest.approx(-14.0)
    assert rows["c"][reference] == pytest.approx(-3.0)
    assert [r["label"] for r in result.graph["compare"]["rows"][:2]] == ["a", "c"]
    assert all(r["ok"] for r in result.graph["compare"]["rows"][2:])
    [note] = [w for w in result.warnings if "--overwrite-grads" in w]
    assert "reached twice" in note and "a" in note and "c" in note


def test_reused_leaves_accumulating_agree(shell):
    pytest.importorskip("torch")
    result = autograd(shell, REUSED_LEAVES, "--torch --check numeric")
    assert result.mismatches == []
    assert result.grads["a"] == -14.0 and result.grads["c"] == -3.0


UPSTREAM = """\
x = 3.0
w = -2.0
k = 0.5
h = x * w
L = h * h + h * k"""
# h = -6 is reused (twice by h * h, once by h * k); x and w are used once but sit upstream
# of h, so their gradients are built from h's. k's path does not pass through h.
# True: dL/dh = 2h + k = -11.5, dL/dx = dL/dh * w = 23, dL/dw = dL/dh * x = -34.5,
# dL/dk = h = -6. Overwriting, h keeps one contribution: h * k's k = 0.5, or h * h's h = -6.


@pytest.mark.parametrize("check", ["--torch", "--check numeric", "--torch --check numeric"])
def test_upstream_of_a_reused_node_fails_too(shell, check):
    if "torch" in check:
        pytest.importorskip("torch")
    result = autograd(shell, UPSTREAM, f"{check} --overwrite-grads")
    # numeric alone checks leaves only: there h has no row, and its inputs x and w fail
    failing = ["h", "w", "x"] if "torch" in check else ["w", "x"]
    assert sorted(result.mismatches) == failing
    assert reached_twice(result) == {"h"}
    h_grad = result.grads["h"]
    assert h_grad in (0.5, -6.0)
    assert result.grads["x"] == h_grad * -2.0
    assert result.grads["w"] == h_grad * 3.0
    assert result.grads["k"] == -6.0  # right: k's path does not pass through h
    rows = rows_by_label(result)
    assert {label for label, row in rows.items() if not row["ok"]} == set(failing)
    assert rows["k"]["ok"] is True
    if "torch" in check:
        assert result.torch_grads["h"] == -11.5
        assert result.torch_grads["x"] == 23.0
        assert result.torch_grads["w"] == -34.5
        assert result.torch_grads["k"] == -6.0
        assert result.torch_grads["h * h"] == 1.0 and rows["h * h"]["ok"] is True
    if "numeric" in check:
        assert result.numeric_grads["x"] == pytest.approx(23.0, rel=1e-6)
        assert result.numeric_grads["w"] == pytest.approx(-34.5, rel=1e-6)
        assert result.numeric_grads["k"] == pytest.approx(-6.0, rel=1e-6)
    assert any("h reached twice" in w for w in result.warnings)


def test_overwrite_on_a_cell_without_reuse_changes_nothing(shell):
    result = autograd(shell, LECTURE, "--check numeric --overwrite-grads")
    assert result.mismatches == []
    assert result.grads["a"] == 6.0
    assert result.graph["reached_twice"] == []
    assert not any("--overwrite-grads" in w for w in result.warnings)


def test_overwrite_steps_say_assigned(shell):
    result = autograd(shell, "a = 3.0\nb = a + a", "--check numeric --overwrite-grads")
    explained = next(n for n in result.graph["nodes"] if n["label"] == "a")["explain"]
    assert len(explained) == 2
    assert all("assigned" in line for line in explained)
