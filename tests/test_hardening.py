"""Issue 13: bounded layout time, bounded output, and short messages for bad input.

Every test drives a real IPython shell; the layout-program faults use real executables put
first on PATH (a `dot` that hangs, fails or writes junk), run as real subprocesses.
"""

from __future__ import annotations

import html
import json
import os
import stat
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from cells import LECTURE, run_autograd

from micrograd_magics import render

LOOP = "w = 0.9\nc = 0.1\ny = 1.0\nfor i in range({n}): y = y * w + c"


def fake_dot_on_path(monkeypatch, tmp_path: Path, script: str) -> Path:
    """A `dot` executable first on PATH, running the given shell script."""
    folder = tmp_path / "bin"
    folder.mkdir()
    dot = folder / "dot"
    dot.write_text("#!/bin/sh\n" + script)
    dot.chmod(dot.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    assert render.system_dot_path() == str(dot)
    return dot


def value_boxes(svg: str) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(svg)
    return [g for g in root.iter("{http://www.w3.org/2000/svg}g")
            if g.get("data-kind") == "value"]


# --- 1. layout that stays fast ---------------------------------------------------------

@pytest.mark.parametrize("renderer", ["graphviz-pure", "dot"])
def test_shared_leaf_loop_is_drawn_with_a_box_per_use(ip, renderer):
    if renderer == "dot" and render.system_dot_path() is None:
        pytest.skip("no system dot")
    ip.run_line_magic("config", f"AutogradMagics.renderer = {renderer!r}")
    result = run_autograd(ip, LOOP.format(n=140))
    assert result.graph["node_count"] == 283 and not result.graph["truncated"]
    assert result.renderer == renderer and result.render_error is None
    # by hand: dy/dc = 1 + w + ... + w**139
    expected_c = (1 - 0.9 ** 140) / (1 - 0.9)
    assert result.grads["c"] == pytest.approx(expected_c, rel=1e-12)
    c_id = next(n["id"] for n in result.graph["nodes"] if n["label"] == "c")
    c_boxes = [g for g in value_boxes(result.svg) if g.get("data-node-id") == c_id]
    assert len(c_boxes) == 140  # one box per use, all of them c for hover and steps
    assert sum("autograd-copy" in (g.get("class") or "") for g in c_boxes) == 139
    texts = [[t.text for t in g.iter("{http://www.w3.org/2000/svg}text")] for g in c_boxes]
    # the numbers once, on c's own box; each copy is the name (hover shows the rest)
    assert texts.count(["c", "data 0.1000", f"grad {expected_c:.4f}"]) == 1
    assert texts.count(["c"]) == 139
    # every copy's edge still names c as its source
    edges = [g for g in ElementTree.fromstring(result.svg).iter("{http://www.w3.org/2000/svg}g")
             if g.get("data-kind") == "edge" and g.get("data-source") == c_id]
    assert len(edges) == 140


def test_drawn_loop_bundle_stays_under_a_megabyte(ip):
    result = run_autograd(ip, LOOP.format(n=140))
    bundle = result._repr_mimebundle_()
    assert len(json.dumps(bundle).encode()) <= 1_000_000
    # the graph is still in the HTML the front ends and nbconvert show
    assert result.svg in bundle["text/html"] and "image/svg+xml" not in bundle


def test_graph_too_big_for_the_bundle_is_left_out_with_a_note(ip):
    ip.run_cell("import random\nfrom engine.nn import MLP\nrandom.seed(1337)\n"
                "big = MLP(4, [16, 16, 1])")
    result = run_autograd(ip, "x = [2.0, -1.0, 0.5, 1.5]\ny = big(x)\nL = (y - 1.0)**2",
                          "--max-nodes 2000")  # 1,079 nodes
    bundle = result._repr_mimebundle_()
    assert result.svg is not None and len(result.svg) > 1_000_000
    assert len(json.dumps(bundle).encode()) <= 1_000_000
    assert "left out of the saved output to keep it under 1 MB" in bundle["text/plain"]
    assert "result.save(&#x27;graph.svg&#x27;)" in bundle["text/html"]
    assert "<svg" not in bundle["text/html"] and "image/svg+xml" not in bundle


def test_lecture_graph_has_no_copies(ip):
    result = run_autograd(ip, LECTURE)
    assert "autograd&#45;copy" not in result.svg and "autograd-copy" not in result.svg
    assert len(value_boxes(result.svg)) == 7


def test_hung_system_dot_falls_back_to_graphviz_pure(ip, monkeypatch, tmp_path):
    fake_dot_on_path(monkeypatch, tmp_path, "sleep 60\n")
    monkeypatch.setattr(render, "LAYOUT_TIMEOUT", 1.0)
    result = run_autograd(ip, LECTURE)
    assert result.renderer == "graphviz-pure" and result.render_error is None
    assert "grad 6.0000" in result.svg


@pytest.mark.parametrize("output", ["hello, not svg", "<svg xmlns='http://www.w3.org/2000/svg'><g>",
                                    "<html><body/></html>"])
def test_junk_from_system_dot_falls_back_to_graphviz_pure(ip, monkeypatch, tmp_path, output):
    fake_dot_on_path(monkeypatch, tmp_path, f"cat > /dev/null; echo \"{output}\"; exit 0\n")
    result = run_autograd(ip, LECTURE)
    assert result.renderer == "graphviz-pure" and result.render_error is None
    ElementTree.fromstring(result.svg)


def test_failing_system_dot_falls_back_to_graphviz_pure(ip, monkeypatch, tmp_path):
    fake_dot_on_path(monkeypatch, tmp_path, "echo 'Error: out of memory' >&2; exit 2\n")
    result = run_autograd(ip, LECTURE)
    assert result.renderer == "graphviz-pure"


def test_layout_budget_returns_the_table_with_a_one_line_note(ip, monkeypatch, tmp_path):
    fake_dot_on_path(monkeypatch, tmp_path, "sleep 60\n")
    monkeypatch.setattr(render, "LAYOUT_TIMEOUT", 1.0)
    ip.run_line_magic("config", "AutogradMagics.renderer = 'dot'")
    result = run_autograd(ip, LECTURE)
    bundle = result._repr_mimebundle_()
    assert result.svg is None and result.renderer is None
    note = result.render_error
    assert "\n" not in note and "took more than 1 s" in note
    assert note in bundle["text/plain"]
    assert "<td>a</td><td>2.0000</td><td>6.0000</td>" in bundle["text/html"]
    assert "image/svg+xml" not in bundle


# --- 3. output bounded by the cap ------------------------------------------------------

NAMED_LOOP = "y = 1.0\nw = 0.5\nfor i in range({n}): y = y * w + 0.1"


def test_bundle_of_a_long_named_loop_stays_under_a_megabyte(ip):
    result = run_autograd(ip, NAMED_LOOP.format(n=10**5))
    bundle = result._repr_mimebundle_()
    assert result.graph["truncated"] and result.graph["node_count"] == 200_002
    assert len(json.dumps(bundle).encode()) <= 1_000_000
    text = bundle["text/plain"]
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[3:] if line[:1] != "…"}
    # the leaves, the first version of y (the leaf y = 1.0) and the root, by hand:
    # y_n = 0.5 y_(n-1) + 0.1 -> 0.2; dy/dw = sum_k 0.5**(k-1) y_(n-k), tiny terms vanish
    assert rows["w"][0] == "0.5000" and rows["y"] == ["0.2000", "1.0000"]
    assert rows["y#1"][0] == "1.0000"
    assert "… and 99999 more named nodes" in text
    assert "… and 99999 more named nodes" in html.unescape(bundle["text/html"])
    assert "<td>w</td><td>0.5000</td>" in bundle["text/html"]
    # the API keeps every label
    assert len(result.grads) == 100_002 and result.values["y#50000"] == pytest.approx(0.2)
    assert result.grads["y"] == 1.0 and result.grads["y#100000"] == 0.5


def test_listing_below_the_cap_is_complete(ip):
    result = run_autograd(ip, NAMED_LOOP.format(n=100))
    assert not result.graph["truncated"]
    assert len(result.table_rows()) == 102 and "more named nodes" not in result.text_table()


def test_listing_above_the_cap_keeps_root_leaves_and_name_versions(ip):
    cell = "a = 1.0\nb = 2.0\ny = a\nz = b\nfor i in range(200):\n    y = y * a + b\n    z = z + y"
    result = run_autograd(ip, cell, "--max-nodes 50")
    labels = [row[0] for row in result.table_rows()]
    assert labels == ["a", "b", "y#1", "z#1", "y", "z"]  # graph order; z is the root
    assert result.graph["root"] == next(n["id"] for n in result.graph["nodes"]
                                        if n["label"] == "z")
    # 402 named: a, b and 200 versions each of y and z (`y = a` names nothing new)
    assert result.more_line() == ("… and 396 more named nodes (every one is in .values and "
                                  ".grads)")


# --- 4. bad input: a short message, and later cells keep working ----------------------

@pytest.mark.parametrize(("setting", "message"), [
    ("precision = -1", "AutogradMagics.precision must be between 0 and 15, not -1"),
    ("max_nodes = -5", "AutogradMagics.max_nodes must be at least 1, not -5"),
    ("rtol = float('nan')", "AutogradMagics.rtol must be a finite number >= 0, not nan"),
    ("atol = -1.0", "AutogradMagics.atol must be a finite number >= 0, not -1.0"),
])
def test_bad_config_is_refused_when_set(ip, caplog, setting, message):
    ip.run_line_magic("config", f"AutogradMagics.{setting}")
    assert message in caplog.text
    result = run_autograd(ip, LECTURE)  # the next cell works with the default
    assert result.grads["a"] == 6.0 and result.graph["precision"] == 4
    ip.run_line_magic("reload_ext", "micrograd_magics")  # the shell's kept value is dropped
    assert run_autograd(ip, LECTURE).grads["b"] == -4.0


@pytest.mark.parametrize("option", ["--rtol -1", "--rtol nan", "--atol inf", "--atol=-1e-9"])
def test_tolerance_options_must_be_finite_and_not_negative(ip, option):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=r"^--[ra]tol must be a finite number >= 0, not \S+$"):
        ip.run_cell_magic("autograd", f"--check numeric {option}", LECTURE)


@pytest.mark.parametrize(("expression", "symbol", "grad_a"), [
    ("a * 1e309", "*inf", float("inf")),
    ("a + float('inf')", "+inf", 1.0),
    ("a * float('nan')", "*nan", float("nan")),
])
def test_folded_non_finite_constant_is_drawn(ip, expression, symbol, grad_a):
    result = run_autograd(ip, f"a = 2.0\nL = {expression}")
    assert [n["symbol"] for n in result.graph["nodes"]] == ["", symbol]
    assert result.grads["a"] == pytest.approx(grad_a, nan_ok=True)
    assert any(w.startswith("non-finite data: L = ") for w in result.warnings)
    assert symbol in result.svg


def test_one_line_sum_of_400_terms_runs_like_plain_python(ip):
    cell = "a = 1.5\nL = " + " + ".join(["a"] * 400)
    assert ip.run_cell(cell).success  # plain Python runs it
    result = run_autograd(ip, cell, "--max-nodes 1000")
    assert result.grads == {"a": 400.0, "L": 1.0}  # dL/da by hand: 400 terms
    assert result.values["L"] == 600.0 and result.svg is not None
    shallow = run_autograd(ip, "a = 1.5\nL = " + " + ".join(["a"] * 20))
    assert "a + a" in shallow.grads  # a short sum keeps its source-text labels


def test_control_characters_in_a_label_give_well_formed_svg(ip):
    ip.run_cell("from engine import Value")
    result = run_autograd(ip, "a = Value(2.0, label='a\\x07b')\nb = 3.0\nL = a * b")
    bundle = result._repr_mimebundle_()
    svg = ElementTree.fromstring(bundle["image/svg+xml"])
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "a\\x07b" in texts  # readable, not dropped
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert "a\\x07b" in titles
    assert "\x07" not in bundle["text/plain"] and "a\\x07b  2.0000  3.0000" in bundle["text/plain"]
    assert "\x07" not in bundle["text/html"]
    assert result.grads["a\x07b"] == 3.0  # the API keeps the label as given
    names = [n["name"] for n in result.graph["nodes"]]
    assert names[0] == "a\\x07b"  # the widget's captions and explanations read this
    assert not any("\x07" in step["rule"] for step in result.graph["steps"])


def test_save_to_a_missing_folder_says_so_in_one_line(ip, capsys):
    result = run_autograd(ip, LECTURE)
    from micrograd_magics.errors import SaveError

    with pytest.raises(SaveError, match=r"^cannot save g.svg: the folder /nonexistent/dir does "
                                        r"not exist$"):
        result.save("/nonexistent/dir/g.svg")
    ip.user_ns["result"] = result
    outcome = ip.run_cell("result.save('/nonexistent/dir/g.svg')")
    assert not outcome.success and isinstance(outcome.error_in_exec, OSError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "SaveError: cannot save g.svg: the folder /nonexistent/dir does not exist" in text
    assert "Traceback" not in text and "result.py" not in text
