"""The extension itself: loading, reloading, unloading, `%%autograd?`, and a light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from micrograd_magics.magic import AutogradMagics

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ("--torch", "--torch-graph", "--check", "--overwrite-grads", "--no-backward",
           "--labels", "--static", "--max-nodes", "--rankdir", "--precision", "--rtol",
           "--atol", "--engine")


def test_load_registers_cell_and_line_magic(ip):
    magics = ip.magics_manager.magics
    assert "autograd" in magics["cell"]
    assert "autograd" in magics["line"]
    result = ip.run_cell_magic("autograd", "", "a = 2.0\nL = a * a")
    assert result.grads["a"] == 4.0


def test_docstring_documents_options_and_rules():
    doc = AutogradMagics.autograd.__doc__
    for option in OPTIONS:
        assert option in doc
    assert "Leaves:" in doc
    assert "w[0], w[1]" in doc
    assert "earlier cell" in doc
    assert "range(...)" in doc and "w[i]" in doc  # counts stay numbers
    assert "Root:" in doc
    assert "%autograd tanh(w*x + b)" in doc


def test_question_mark_prints_the_usage(ip):
    with capture_output() as shown:
        outcome = ip.run_cell("%%autograd?")
    assert outcome.success
    for option in OPTIONS:
        assert option in shown.stdout
    assert "Leaves:" in shown.stdout
    assert "Counts stay numbers" in shown.stdout


def test_reload_ext(ip):
    ip.run_cell_magic("autograd", "", "a = 2.0\nL = a * a")
    with capture_output() as shown:
        ip.run_line_magic("reload_ext", "micrograd_magics")
    assert shown.stdout == "" and shown.stderr == ""
    result = ip.run_cell_magic("autograd", "", "a = 2.0\nb = -3.0\nL = a * b")
    assert result.grads == {"a": -3.0, "b": 2.0, "L": 1.0}
    # errors are still shown the short way after a reload
    with capture_output() as shown:
        outcome = ip.run_cell("%%autograd\na = 1.0\nL = a * zzz")
    assert not outcome.success
    assert "----> 3 L = a * zzz" in shown.stdout
    assert "micrograd_magics/" not in shown.stdout


def test_unload_ext_removes_the_magic(ip):
    custom_before = ip.custom_exceptions
    assert custom_before != ()
    ip.run_line_magic("unload_ext", "micrograd_magics")
    assert "autograd" not in ip.magics_manager.magics["cell"]
    assert "autograd" not in ip.magics_manager.magics["line"]
    assert ip.custom_exceptions == ()
    with capture_output() as shown:
        outcome = ip.run_cell("%%autograd\na = 2.0\nL = a * a")
    assert not outcome.success
    assert isinstance(outcome.error_in_exec, UsageError)
    assert "Cell magic `%%autograd` not found" in shown.stderr
    # and it can be loaded again
    ip.run_line_magic("load_ext", "micrograd_magics")
    assert ip.run_cell_magic("autograd", "", "a = 2.0\nL = a * a").grads["a"] == 4.0


def test_loading_and_running_do_not_import_torch():
    code = ("import sys; from IPython.testing.globalipapp import start_ipython; "
            "ip = start_ipython(); ip.run_line_magic('load_ext', 'micrograd_magics'); "
            "print('torch' in sys.modules); "
            "r = ip.run_cell_magic('autograd', '', 'a = 2.0\\nL = a * a'); "
            "print(r.grads['a'], 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-2:] == ["False", "4.0 False"]
