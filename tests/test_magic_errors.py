"""What a learner sees when a %%autograd cell goes wrong: their own lines, a short message,
none of our frames; and the namespace as after any failing cell."""

from __future__ import annotations

import sys

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from engine import Value

INTERNALS = ("micrograd_magics/", "engine/", "IPython/core", "CellFailed")
HELPERS = ("tanh", "exp", "log", "relu", "sigmoid", "sqrt", "__autograd_cell__")


def run_failing(ip, source: str):
    """Run a cell the notebook way, expect it to fail; return (outcome, stdout, stderr)."""
    with capture_output() as shown:
        outcome = ip.run_cell(source)
    assert not outcome.success
    return outcome, shown.stdout, shown.stderr


def assert_no_internals(text: str) -> None:
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} shown to the learner:\n{text}"


def assert_one_usage_error(stdout: str, stderr: str, message: str) -> None:
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("UsageError: ")
    assert message in lines[0]
    assert "Traceback" not in stderr


# --- syntax errors -----------------------------------------------------------------------


def test_syntax_error_shows_the_cell_line_and_caret(ip):
    outcome, out, err = run_failing(ip, "%%autograd\na = 2.0\nb = -3.0\nL = a * (b +\n")
    assert outcome.error_in_exec is not None
    assert "SyntaxError" in out
    assert "line 4" in out  # line 1 is the %%autograd line
    assert "L = a * (b +" in out
    assert "^" in out
    assert_no_internals(out + err)
    assert "a" not in ip.user_ns  # nothing ran


def test_syntax_error_line_counts_the_options_line(ip):
    _, out, err = run_failing(ip, "%%autograd L --no-backward\na = 2.0\nL = a *\n")
    assert "line 3" in out
    assert "L = a *" in out
    assert_no_internals(out + err)


def test_syntax_error_line_counts_leading_blank_lines(ip):
    _, out, err = run_failing(ip, "%%autograd\n\n\na = 2.0\nL = a * (\n")
    assert "line 5" in out, out
    assert "L = a * (" in out
    assert_no_internals(out + err)


# --- exceptions raised by the cell -------------------------------------------------------


def test_name_error_shows_only_the_cells_frames(ip):
    outcome, out, err = run_failing(ip, "%%autograd\na = 2.0\nb = a * 3.0\nc = b + zzz\nd = 1.0")
    assert "NameError" in out
    assert "name 'zzz' is not defined" in out
    assert "----> 4 c = b + zzz" in out
    assert out.count("Cell In[") == 1
    assert_no_internals(out + err)
    assert "name 'zzz' is not defined" in str(outcome.error_in_exec)
    assert isinstance(sys.last_value, NameError)  # what %debug opens


def test_name_error_line_counts_leading_blank_lines(ip):
    _, out, err = run_failing(ip, "%%autograd\n\n\na = 1.0\nL = a * zzz\n")
    assert "----> 5 L = a * zzz" in out, out
    assert_no_internals(out + err)


def test_error_inside_a_function_of_the_cell_shows_both_cell_frames(ip):
    cell = "%%autograd\ndef f(x):\n    return x * zzz\na = 1.0\nL = f(a)"
    _, out, err = run_failing(ip, cell)
    assert "----> 5 L = f(a)" in out
    assert "----> 3     return x * zzz" in out
    assert out.count("Cell In[") == 2
    assert_no_internals(out + err)


def test_error_raised_inside_the_engine_shows_only_the_cell(ip):
    _, out, err = run_failing(ip, "%%autograd\na = 2.0\nL = a * log('x')")
    assert "TypeError" in out
    assert "log() takes a Value or a number, not 'str'" in out
    assert "----> 3 L = a * log('x')" in out
    assert out.count("Cell In[") == 1
    assert_no_internals(out + err)


def test_math_tanh_on_a_value_suggests_the_bare_tanh(ip):
    _, out, err = run_failing(ip, "%%autograd\nimport math\nx = 0.5\ny = math.tanh(x)")
    assert "TypeError" in out
    assert "math.tanh()" in out
    assert "bare tanh(x)" in out
    assert "----> 4 y = math.tanh(x)" in out
    assert_no_internals(out + err)


def test_math_exp_on_a_value_suggests_the_bare_exp(ip):
    _, out, _ = run_failing(ip, "%%autograd\nimport math\nx = 0.5\ny = math.exp(x) * x")
    assert "bare exp(x)" in out


def test_namespace_after_a_failing_cell(ip):
    ip.run_cell("k = 2.0").raise_error()
    run_failing(ip, "%%autograd\na = 1.0\nb = a * k\nc = b + tanh(zzz)\nd = 5.0")
    assert isinstance(ip.user_ns["a"], Value) and ip.user_ns["a"].data == 1.0
    assert isinstance(ip.user_ns["b"], Value) and ip.user_ns["b"].data == 2.0
    assert "c" not in ip.user_ns and "d" not in ip.user_ns
    assert type(ip.user_ns["k"]) is float and ip.user_ns["k"] == 2.0
    assert [name for name in HELPERS if name in ip.user_ns] == []


def test_run_cell_magic_raises_for_a_failing_cell(ip):
    with pytest.raises(Exception, match="name 'zzz' is not defined"):
        ip.run_cell_magic("autograd", "", "a = 1.0\nL = a * zzz")
    assert [name for name in HELPERS if name in ip.user_ns] == []


# --- usage errors: one line, no traceback ------------------------------------------------


@pytest.mark.parametrize("cell", ['x = "hi"', "print(1)", "n = int(3)\nm = n * 2"])
def test_nothing_to_differentiate(ip, cell):
    outcome, out, err = run_failing(ip, "%%autograd\n" + cell)
    assert isinstance(outcome.error_in_exec, UsageError)
    assert "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("UsageError: nothing to differentiate")
    assert "Leaves are names bound to number literals (a = 2.0)" in err
    assert "w = [1.0, -2.0]" in err
    assert [name for name in HELPERS if name in ip.user_ns] == []


def test_nothing_to_differentiate_keeps_what_the_cell_did(ip):
    run_failing(ip, '%%autograd\nx = "hi"')
    assert ip.user_ns["x"] == "hi"


def test_an_empty_cell_is_nothing_to_differentiate(ip):
    _, out, err = run_failing(ip, "%%autograd\n\n")
    assert_one_usage_error(out, err, "nothing to differentiate")


def test_root_not_defined(ip):
    _, out, err = run_failing(ip, "%%autograd nope\na = 2.0\nL = a * a")
    assert_one_usage_error(out, err, "root 'nope' is not defined")
    assert "the cell assigned: a, L" in err


def test_root_not_a_value(ip):
    _, out, err = run_failing(ip, "%%autograd s\ns = 'text'\na = 2.0\nL = a * a")
    assert_one_usage_error(out, err, "root 's' is a str, not a Value")


def test_root_is_a_list(ip):
    _, out, err = run_failing(ip, "%%autograd ws\nws = [1.0, 2.0]\nL = ws[0] * ws[1]")
    assert_one_usage_error(out, err, "root 'ws' is a list of 2 items")
    assert "sum(ws)" in err


@pytest.mark.parametrize("line, message", [
    ("--bogus", "unrecognized arguments: --bogus"),
    ("--labels bogus", "invalid choice: 'bogus'"),
    ("--precision 99", "--precision must be between 0 and 15"),
    ("--max-nodes 0", "--max-nodes must be at least 1"),
    ("--rankdir XX", "invalid choice: 'XX'"),
])
def test_a_bad_option_is_a_one_line_usage_error(ip, line, message):
    outcome, out, err = run_failing(ip, f"%%autograd {line}\na = 2.0\nL = a * a")
    assert isinstance(outcome.error_in_exec, UsageError)
    assert_one_usage_error(out, err, message)
    assert "a" not in ip.user_ns  # the cell did not run


def test_a_bad_option_from_run_cell_magic_raises_usage_error(ip):
    with pytest.raises(UsageError, match="--bogus"):
        ip.run_cell_magic("autograd", "--bogus", "a = 2.0\nL = a * a")


def test_line_magic_bad_option_and_empty_expression(ip):
    _, out, err = run_failing(ip, "%autograd --bogus a * 2.0")
    assert_one_usage_error(out, err, "--bogus")
    _, out, err = run_failing(ip, "%autograd")
    assert_one_usage_error(out, err, "%autograd needs an expression")
