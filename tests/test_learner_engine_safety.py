"""%%autograd --engine NAME with a learner's class that misbehaves.

Their class may raise in `__init__`, return plain numbers from its operators, make `_prev`
a cycle (or an endless graph), or leave strings in `.grad`. Each time the learner gets a
short message (a one-line UsageError, or a traceback of only the cell's and their own
lines), the kernel goes on working, and the namespace is what any failing cell leaves:
names assigned before the failing line are there, the magic's helpers are not.
"""

from __future__ import annotations

import time

import pytest
from cells import LECTURE, LECTURE_GRADS
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from micrograd_magics.result import AutogradResult

INTERNALS = ("micrograd_magics/", "engine/", "IPython/core", "CellFailed")
HELPERS = ("tanh", "exp", "log", "relu", "sigmoid", "sqrt", "__autograd_cell__")


# A small correct class; each test below breaks one thing in it.
GOOD_CLASS = '''\
class V:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._prev = set(_children)
        self._op = _op
        self._backward = lambda: None

    def __add__(self, other):
        other = other if isinstance(other, V) else V(other)
        out = V(self.data + other.data, (self, other), '+')
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, V) else V(other)
        out = V(self.data * other.data, (self, other), '*')
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    __radd__ = __add__
    __rmul__ = __mul__

    def backward(self):
        topo, seen, stack = [], set(), [(self, False)]
        while stack:
            v, expanded = stack.pop()
            if expanded:
                topo.append(v)
            elif v not in seen:
                seen.add(v)
                stack.append((v, True))
                stack.extend((p, False) for p in v._prev)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()
'''


def variant(old: str, new: str, source: str = GOOD_CLASS) -> str:
    assert source.count(old) == 1, old
    return source.replace(old, new)


def define(ip, source: str) -> None:
    ip.run_cell(source).raise_error()


def run_failing(ip, source: str) -> tuple[str, str]:
    """A cell run the notebook way that must fail; (stdout, stderr) as shown."""
    with capture_output() as shown:
        outcome = ip.run_cell(source)
    assert not outcome.success
    assert outcome.error_in_exec is not None
    return shown.stdout, shown.stderr


def one_usage_error(stdout: str, stderr: str) -> str:
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("UsageError: ")
    no_internals(stderr)
    return lines[0]


def no_internals(text: str) -> None:
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} shown to the learner:\n{text}"


def still_usable(ip) -> None:
    """The kernel goes on: helpers gone, a normal cell runs, and so does %%autograd (both
    on our engine and on a good class)."""
    assert [name for name in HELPERS if name in ip.user_ns] == []
    ip.run_cell("zz = 40 + 2").raise_error()
    assert ip.user_ns["zz"] == 42
    ours = ip.run_cell_magic("autograd", "", LECTURE)
    assert ours.grads == LECTURE_GRADS
    define(ip, GOOD_CLASS)
    theirs = ip.run_cell_magic("autograd", "--engine V --torch", LECTURE)
    assert isinstance(theirs, AutogradResult)
    assert theirs.grads == LECTURE_GRADS and theirs.mismatches == []


def test_the_good_class_works(ip):
    define(ip, GOOD_CLASS)
    result = ip.run_cell_magic("autograd", "--engine V --torch", LECTURE)
    assert result.grads == result.torch_grads == LECTURE_GRADS
    assert result.mismatches == [] and result.warnings == []


# --- __init__ raises ---------------------------------------------------------------------


def test_init_raising_on_a_leaf_is_one_line(ip):
    define(ip, variant("        self.data = data\n",
                       "        raise ValueError('no Values today')\n"))
    out, err = run_failing(ip, "%%autograd --engine V\nn = int(2)\na = 2.0\nL = a * n")
    line = one_usage_error(out, err)
    assert "line 3" in line
    assert "V(2.0) raised ValueError: no Values today" in line
    assert ip.user_ns["n"] == 2  # assigned before the failing line
    assert "a" not in ip.user_ns and "L" not in ip.user_ns
    still_usable(ip)


def test_init_raising_inside_their_op_shows_their_lines(ip):
    # their __init__ refuses ints: `a * 2` wraps the 2 and fails inside their code
    define(ip, variant("        self.data = data\n",
                       "        if not isinstance(data, float):\n"
                       "            raise TypeError(f'data must be a float, got {data!r}')\n"
                       "        self.data = data\n"))
    out, err = run_failing(ip, "%%autograd --engine V\na = 2.0\nb = a * a\nc = b * 2\nd = 1.0")
    assert "TypeError" in out
    assert "data must be a float, got 2" in out
    assert "----> 4 c = b * 2" in out
    assert "raise TypeError(f'data must be a float" in out  # their own line is shown
    no_internals(out + err)
    assert ip.user_ns["b"].data == 4.0
    assert "c" not in ip.user_ns and "d" not in ip.user_ns
    still_usable(ip)


def test_a_class_without_data_and_grad_is_one_line(ip):
    define(ip, "class Empty:\n    def __init__(self, x):\n        pass\n")
    out, err = run_failing(ip, "%%autograd --engine Empty\na = 2.0\nL = a * a")
    assert "Empty(2.0) has no .data/.grad" in one_usage_error(out, err)
    still_usable(ip)


# --- operators that return something else than a Value --------------------------------


def test_add_returning_a_float_is_one_line_naming_it(ip):
    define(ip, variant(
        "        other = other if isinstance(other, V) else V(other)\n"
        "        out = V(self.data + other.data, (self, other), '+')\n",
        "        other = other if isinstance(other, V) else V(other)\n"
        "        return self.data + other.data\n"
        "        out = V(self.data + other.data, (self, other), '+')\n"))
    out, err = run_failing(ip, "%%autograd --engine V --torch\n" + LECTURE)
    line = one_usage_error(out, err)
    assert "line 6" in line  # d = e + c
    assert "V.__add__ returned a float" in line
    assert "not a V" in line
    assert ip.user_ns["e"].data == -6.0  # assigned before the failing line
    assert "d" not in ip.user_ns and "L" not in ip.user_ns
    still_usable(ip)
    assert ip.user_ns["V"].__add__(ip.user_ns["V"](1.0), 2.0).data == 3.0  # class restored


def test_mul_returning_a_float_through_rmul_is_one_line(ip):
    define(ip, variant("    __rmul__ = __mul__\n",
                       "    def __rmul__(self, other):\n        return self.data * other\n"))
    out, err = run_failing(ip, "%%autograd --engine V\na = 2.0\nb = 3 * a\nL = b * a")
    line = one_usage_error(out, err)
    assert "line 3" in line
    assert "V.__rmul__ returned a float" in line
    still_usable(ip)


def test_tanh_returning_a_float_is_one_line(ip):
    define(ip, GOOD_CLASS + "\n    def tanh(self):\n        import math\n"
                            "        return math.tanh(self.data)\n")
    out, err = run_failing(ip, "%%autograd --engine V\nx = 0.5\ny = tanh(x)\nL = y * x")
    line = one_usage_error(out, err)
    assert "line 3" in line and "tanh() returned a float" in line
    still_usable(ip)


def test_prev_holding_numbers_is_one_line(ip):
    define(ip, variant("out = V(self.data * other.data, (self, other), '*')",
                       "out = V(self.data * other.data, (self.data, other.data), '*')"))
    out, err = run_failing(ip, "%%autograd --engine V\n" + LECTURE)
    line = one_usage_error(out, err)
    assert "._prev holds a float" in line
    still_usable(ip)


# --- _prev cycles and endless graphs ------------------------------------------------


def test_a_cycle_in_prev_stops_with_the_cycle_message(ip):
    # their __mul__ also makes the output a parent of its own inputs: a -> e -> a
    define(ip, variant(
        "            other.grad += self.data * out.grad\n        out._backward = _backward\n",
        "            other.grad += self.data * out.grad\n        out._backward = _backward\n"
        "        self._prev = self._prev | {out}\n"))
    start = time.perf_counter()
    out, err = run_failing(ip, "%%autograd --engine V\n" + LECTURE)
    assert time.perf_counter() - start < 5
    line = one_usage_error(out, err)
    assert "_prev forms a cycle" in line
    assert ip.user_ns["L"].data == -8.0  # the cell itself ran to the end
    still_usable(ip)


def test_a_node_that_is_its_own_parent(ip):
    define(ip, variant("        out._backward = _backward\n        return out\n\n"
                       "    def __mul__",
                       "        out._backward = _backward\n        out._prev.add(out)\n"
                       "        return out\n\n    def __mul__"))
    out, err = run_failing(ip, "%%autograd --engine V --torch\na = 2.0\nb = a + a")
    assert "_prev forms a cycle" in one_usage_error(out, err)
    still_usable(ip)


def test_an_endless_graph_stops_at_the_node_cap(ip):
    # _prev makes a new parent every time it is read: the graph never ends
    define(ip, GOOD_CLASS.replace("class V:", "class Endless:").replace("V(", "Endless(")
           .replace("isinstance(other, V)", "isinstance(other, Endless)")
           .replace("        self._prev = set(_children)\n", "")
           + "\n    @property\n    def _prev(self):\n        return (Endless(self.data),)\n")
    start = time.perf_counter()
    out, err = run_failing(ip, "%%autograd --engine Endless\na = 2.0\nL = a * a")
    assert time.perf_counter() - start < 20
    line = one_usage_error(out, err)
    assert "more than 100,000 nodes behind the root" in line
    assert "cycle" not in line and "--max-nodes 10,000" in line  # a big graph is no cycle
    still_usable(ip)


def test_an_endless_prev_iterable_is_cut_while_it_is_read(ip):
    define(ip, variant("self._prev = set(_children)",
                       "self._prev = itertools.repeat(self) if _children else ()")
           .replace("class V:", "import itertools\nclass V:", 1))
    start = time.perf_counter()
    out, err = run_failing(ip, "%%autograd --engine V\na = 2.0\nL = a * a")
    assert time.perf_counter() - start < 20
    assert "L._prev gives more than 100,000 items" in one_usage_error(out, err)
    still_usable(ip)


def test_a_numeric_string_grad_is_not_a_number(ip):
    define(ip, variant("            v._backward()\n",
                       "            v._backward()\n        self.grad = '1.0'\n"))
    out, err = run_failing(ip, "%%autograd --engine V\na = 3.0\nb = a * a")
    assert "b.grad is '1.0' (str), not a number" in one_usage_error(out, err)
    still_usable(ip)


def test_prev_that_is_not_iterable(ip):
    define(ip, variant("self._prev = set(_children)", "self._prev = len(_children)"))
    out, err = run_failing(ip, "%%autograd --engine V\na = 2.0\nL = a * a")
    assert "._prev is not iterable" in one_usage_error(out, err)
    still_usable(ip)


# --- gradients that are not numbers -------------------------------------------------


def test_backward_leaving_a_string_grad_is_one_line(ip):
    define(ip, variant("            v._backward()\n",
                       "            v._backward()\n        self.grad = 'done'\n"))
    out, err = run_failing(ip, "%%autograd --engine V\na = 3.0\nb = a * a")
    line = one_usage_error(out, err)
    assert "b.grad is 'done' (str), not a number" in line
    assert ip.user_ns["b"].data == 9.0
    still_usable(ip)


def test_a_closure_writing_a_string_grad_is_one_line(ip):
    define(ip, variant("            self.grad += out.grad\n            other.grad += out.grad\n",
                       "            self.grad = 'one'\n            other.grad = 'one'\n"))
    out, err = run_failing(ip, "%%autograd --engine V --torch\na = 3.0\nc = 1.0\nb = a + c")
    assert "not a number" in one_usage_error(out, err)
    still_usable(ip)


def test_grad_that_cannot_be_set(ip):
    define(ip, variant("        self.grad = 0.0\n", "")
           + "\n    @property\n    def grad(self):\n        return 0.0\n")
    out, err = run_failing(ip, "%%autograd --engine V\na = 3.0\nb = a * a")
    assert "cannot set" in one_usage_error(out, err)
    still_usable(ip)


def test_no_backward_at_all_is_one_line(ip):
    define(ip, "class Fwd:\n    def __init__(self, data, _prev=()):\n"
               "        self.data, self.grad, self._prev = data, 0.0, _prev\n"
               "    def __mul__(self, other):\n        return Fwd(self.data * other.data, "
               "(self, other))\n")
    out, err = run_failing(ip, "%%autograd --engine Fwd\na = 3.0\nb = a * a")
    assert "neither backward() nor per-node _backward closures" in one_usage_error(out, err)
    still_usable(ip)


# --- exceptions raised by their backward --------------------------------------------


@pytest.mark.parametrize("where", ["backward", "closures"])
def test_an_exception_in_their_backward_shows_only_their_lines(ip, where):
    source = variant("            self.grad += other.data * out.grad\n",
                     "            self.grad += other.data * out.gard\n")
    if where == "closures":  # no backward(): the magic runs their closures itself
        source = source[:source.index("    def backward")]
    define(ip, source)
    out, err = run_failing(ip, "%%autograd --engine V --torch\na = 3.0\nb = a * a")
    assert "AttributeError" in out
    assert "'V' object has no attribute 'gard'" in out
    assert "self.grad += other.data * out.gard" in out  # their line, with its arrow
    no_internals(out + err)
    assert ip.user_ns["b"].data == 9.0  # the cell ran; its names stay
    still_usable(ip)


def test_run_cell_magic_raises_for_their_backward(ip):
    define(ip, variant("        self.grad = 1.0\n", "        self.grad = 1.0 / 0\n"))
    with pytest.raises(Exception, match="division by zero") as raised:
        ip.run_cell_magic("autograd", "--engine V", "a = 3.0\nb = a * a")
    error = getattr(raised.value, "exc_info", (None, raised.value))[1]  # CellFailed carries it
    assert isinstance(error, ZeroDivisionError)
    with pytest.raises(UsageError, match="no such name"):
        ip.run_cell_magic("autograd", "--engine Nope", "a = 3.0\nb = a * a")
    still_usable(ip)


# --- Ctrl-C: a real SIGINT while the cell, or their backward, runs ----------------------


@pytest.fixture
def python_sigint():  # noqa: ANN201
    """Python's own SIGINT handler (raise KeyboardInterrupt), whatever an earlier test or
    tool installed, for the duration of the test; and no gc callbacks. Python ignores an
    exception raised in a gc callback: hypothesis (imported by the property tests)
    registers one, and a SIGINT landing in it was lost ("Exception ignored in
    gc_callback: KeyboardInterrupt"), so the loop ran on to its 30 s end."""
    import gc
    import signal

    callbacks = list(gc.callbacks)
    gc.callbacks.clear()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        gc.callbacks[:] = callbacks


def interrupt_soon(seconds: float = 0.3):  # noqa: ANN201
    """SIGINT to this process after `seconds`, as the kernel sends on Ctrl-C."""
    import os
    import signal
    import threading

    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


# each loop ends by itself after 30 s, so a lost signal fails the test instead of hanging it
LONG_CELL = ("%%autograd\nimport time\na = 2.0\nend = time.time() + 30\n"
             "while time.time() < end:\n    pass\nL = a * a\n")


def test_ctrl_c_in_a_long_cell_shows_the_cells_line_only(ip, python_sigint):
    timer = interrupt_soon()
    try:
        out, err = run_failing(ip, LONG_CELL)
    finally:
        timer.cancel()
    shown = out + err
    assert "KeyboardInterrupt" in shown
    assert "while time.time() < end" in shown or "pass" in shown  # the cell's own line
    no_internals(shown)
    still_usable(ip)


def test_ctrl_c_in_their_endless_backward(ip, python_sigint):
    define(ip, variant("        self.grad = 1.0\n",
                       "        import time\n        end = time.time() + 30\n"
                       "        while time.time() < end:\n            pass\n"))
    timer = interrupt_soon()
    try:
        out, err = run_failing(ip, "%%autograd --engine V\na = 3.0\nb = a * a")
    finally:
        timer.cancel()
    shown = out + err
    assert "KeyboardInterrupt" in shown
    assert "pass" in shown or "while time.time() < end" in shown  # their line
    no_internals(shown)
    assert ip.user_ns["b"].data == 9.0
    still_usable(ip)
