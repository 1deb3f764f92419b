"""Nudge a leaf, set leaves, and the quiz's checker, on the recorded graph (issue 15).

The numbers are the lecture's: L = (a*b + c) * f at a=2, b=-3, c=10, f=-2 has
dL/da = b*f = 6, dL/db = a*f = -4, dL/dc = f = -2, dL/df = a*b + c = 4.
"""

from __future__ import annotations

import base64
import json
import math
import re

import pytest
from cells import LECTURE, LECTURE_GRADS, NEURON, NEURON_GRADS, run_autograd
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from micrograd_magics.nudge import NudgeError


def lecture_root(a=2.0, b=-3.0, c=10.0, f=-2.0) -> float:  # noqa: ANN001
    return (a * b + c) * f


# --- nudge ---------------------------------------------------------------------------


@pytest.mark.parametrize("leaf", ["a", "b", "c", "f"])
def test_nudge_slope_is_the_gradient_for_every_lecture_leaf(shell, leaf):
    result = run_autograd(shell, LECTURE)
    for h in (1e-3, -1e-3):  # forward and backward difference
        done = result.nudge(leaf, h=h)
        assert done.before == -8.0
        moved = {"a": 2.0, "b": -3.0, "c": 10.0, "f": -2.0}
        moved[leaf] += h
        assert done.after == pytest.approx(lecture_root(**moved), rel=1e-12)
        assert done.slope == pytest.approx(LECTURE_GRADS[leaf], abs=1e-6)  # L is bilinear
        assert done.grad == LECTURE_GRADS[leaf]
    central = (result.nudge(leaf, 1e-4).after - result.nudge(leaf, -1e-4).after) / 2e-4
    assert central == pytest.approx(LECTURE_GRADS[leaf], rel=1e-9)


def test_nudge_prints_the_lectures_sentence_and_changes_nothing(shell):
    result = run_autograd(shell, LECTURE)
    assert str(result.nudge("a", h=0.001)) == (
        "L went from -8.0000 to -7.9940 when a moved by 0.001: slope 6.0000, a.grad 6.0000")
    a = shell.user_ns["a"]
    assert a.data == 2.0 and a.grad == 6.0 and shell.user_ns["L"].data == -8.0


def test_nudge_the_neuron_reproduces_the_lectures_slope(shell):
    result = run_autograd(shell, NEURON)
    for leaf in ("x1", "w1", "x2", "w2", "b"):
        slope = (result.nudge(leaf, 1e-6).after - result.nudge(leaf, -1e-6).after) / 2e-6
        assert slope == pytest.approx(NEURON_GRADS[leaf], abs=1e-6), leaf


def test_nudge_never_runs_the_cell(shell):
    shell.run_cell("calls = []").raise_error()
    result = run_autograd(shell, "calls.append(1)\n" + LECTURE)
    result.nudge("a")
    result.set(a=3.0)
    assert shell.user_ns["calls"] == [1]


def test_nudge_of_a_learners_class(ip):
    from test_learner_engine import LECTURE_CLASS, define

    define(ip, LECTURE_CLASS)
    result = run_autograd(ip, NEURON.replace("o = tanh(n)", "o = n.tanh()"), "--engine Value")
    slope = (result.nudge("b", 1e-6).after - result.nudge("b", -1e-6).after) / 2e-6
    assert slope == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(NudgeError, match="closures keep numbers"):
        result.set(b=1.0)


@pytest.mark.parametrize("label, h, message", [
    ("zz", 1e-3, "no node named 'zz'"), ("e", 1e-3, "e is computed"),
    ("a", 0.0, "h must be a finite number other than 0"),
    ("a", math.inf, "h must be a finite number other than 0"),
])
def test_bad_nudges_say_why(shell, label, h, message):
    result = run_autograd(shell, LECTURE)
    with pytest.raises(NudgeError, match=message):
        result.nudge(label, h)


# --- set -----------------------------------------------------------------------------


def test_set_recomputes_forward_and_backward_as_torch_does(shell):
    torch = pytest.importorskip("torch")
    result = run_autograd(shell, NEURON)
    result.set(x1=1.0, w2=-0.5)
    # torch float64, written out here: the neuron at the new numbers
    x1 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    w1 = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(6.8813735870195432, dtype=torch.float64, requires_grad=True)
    o = torch.tanh(x1 * w1 + x2 * w2 + b)
    o.backward()
    assert result.values["o"] == pytest.approx(o.item(), rel=1e-12)
    for name, leaf in {"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b}.items():
        assert result.grads[name] == pytest.approx(leaf.grad.item(), rel=1e-12), name
    # the learner's variables hold the new numbers, as after a.data = ...; forward; backward
    assert shell.user_ns["x1"].data == 1.0
    assert shell.user_ns["o"].data == pytest.approx(o.item(), rel=1e-12)
    assert shell.user_ns["w1"].grad == pytest.approx(w1.grad.item(), rel=1e-12)
    steps = result.graph["steps"]
    assert steps and steps[-1]["updates"]  # the step-through is of the new numbers


def test_set_on_the_lecture_by_hand(shell):
    result = run_autograd(shell, LECTURE)
    result.set(a=3.0)
    assert result.values["L"] == lecture_root(a=3.0) == -2.0
    assert result.grads["a"] == 6.0 and result.grads["b"] == -6.0  # dL/db = a*f
    assert result.grads["f"] == 1.0  # a*b + c
    assert re.search(r"grad (-|&#45;)6\.0000", result.svg or "")  # laid out again


def test_set_rejects_a_non_number(shell):
    result = run_autograd(shell, LECTURE)
    with pytest.raises(NudgeError, match="a number is needed"):
        result.set(a="three")
    assert result.values["a"] == 2.0


# --- the quiz --------------------------------------------------------------------------


def static_parts(bundle: dict) -> str:
    return "\n".join(bundle[k] for k in ("image/svg+xml", "text/html", "text/plain")
                     if k in bundle)


@pytest.mark.parametrize("cell", [LECTURE, NEURON, "a = 3.0\nb = a * a + a"])  # + a reused leaf
def test_quiz_hides_every_gradient_in_the_static_parts(shell, cell):
    result = run_autograd(shell, cell, "--quiz")
    bundle = result._repr_mimebundle_()
    for part in ("image/svg+xml", "text/html"):
        assert not re.search(r"\bgrad\s+(-|&#45;)?[0-9]", bundle[part]), part
        # the ? is padded with figure spaces to a number's width (render.value_label)
        assert re.search(r"grad (&#8199;|\u2007)+\?(&#8199;|\u2007)+", bundle[part]), part
    cells = re.findall(r"<tr><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td></tr>",
                       bundle["text/html"])
    assert cells and set(cells) == {"?"}
    rows = bundle["text/plain"].splitlines()[3:]  # summary, header, rule
    assert rows and all(row.split()[-1] == "?" for row in rows), rows
    assert "grad" not in result.static_html().split("autograd-inline-data")[-1].split(
        "model64")[0]  # the inline front end carries the model only encoded
    assert result.graph["quiz"]["tolerance"] == 0.5e-4
    # the widget still gets the real numbers (the quiz checks offline too)
    assert all(n["grad"] != "?" for n in result.graph["nodes"])


def test_quiz_html_carries_the_model_unreadably(shell):
    result = run_autograd(shell, LECTURE, "--quiz")
    html = result.static_html()
    assert "model64" in html and '"grad":' not in html
    encoded = re.search(r'"model64":"([^"]+)"', html)[1]
    assert json.loads(base64.b64decode(encoded))["quiz"] == {"tolerance": 0.5e-4}


def test_check_answers_right_wrong_and_hints(shell):
    result = run_autograd(shell, LECTURE, "--quiz")
    answers = result.check_answers({"a": 6.0, "b": -3.0, "f": "4.00004"})
    assert answers["a"].ok and answers["f"].ok  # within half a unit of the 4th digit
    assert not answers["b"].ok
    assert answers["b"].hint == "dL/db = dL/de * de/db"
    assert answers["b"].hint_with_numbers == "dL/db = dL/de * de/db = -2.0000 * 2.0000 = -4.0000"


def test_check_answers_says_when_contributions_add_up(shell):
    result = run_autograd(shell, "a = 3.0\nb = a * 2.0\nc = a * b", "--quiz")
    answer = result.check_answers({"a": 6.0})["a"]  # one contribution only: 12 is right
    assert not answer.ok
    assert "used 2 times" in answer.hint and "+=" in answer.hint
    assert result.check_answers({"a": 12.0})["a"].ok


def test_check_answers_unknown_label_and_text(shell):
    result = run_autograd(shell, LECTURE, "--quiz")
    with pytest.raises(NudgeError, match="no node named 'q'"):
        result.check_answers({"q": 1.0})
    with pytest.raises(NudgeError, match="'six' is not a number"):
        result.check_answers({"a": "six"})


def test_quiz_with_their_class_checks_their_gradients(ip):
    from test_learner_engine import ASSIGN_BUG_CLASS, define

    define(ip, ASSIGN_BUG_CLASS)
    result = run_autograd(ip, "a = 3.0\nb = a + a", "--engine Value --quiz")
    assert result.check_answers({"a": 1.0})["a"].ok  # their (buggy) 1.0 is what is checked


@pytest.mark.parametrize("line, message", [
    ("--quiz --overwrite-grads", "--overwrite-grads off only"),
    ("--quiz --torch", "do the quiz first"),
])
def test_quiz_option_conflicts_are_one_line(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("autograd", line, LECTURE)


def test_quiz_model_is_plain_json(shell):
    result = run_autograd(shell, LECTURE, "--quiz")
    assert json.loads(json.dumps(result.graph))["quiz"]["tolerance"] == 0.5e-4


def test_a_bad_nudge_in_a_cell_is_one_line(shell):
    shell.user_ns["r"] = run_autograd(shell, LECTURE)
    with capture_output() as shown:
        outcome = shell.run_cell("r.nudge('zz')")
    assert not outcome.success
    text = shown.stdout + shown.stderr
    assert "NudgeError: no node named 'zz' in this graph" in text
    assert "Traceback" not in text and "nudge.py" not in text
