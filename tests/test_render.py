"""The graph model as DOT and SVG (system `dot` and graphviz-pure), the static display,
escaping of hostile labels, the node cap, --static, --rankdir, --precision and save()."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cells import LECTURE, run_autograd

from engine import Value
from micrograd_magics import render
from micrograd_magics.render import RenderError, record_field, render_svg, to_dot
from micrograd_magics.result import WIDGET_MIME, AutogradResult

REUSED = """\
x = 2.0
y = x*x + 2*x"""

SVG_NS = "{http://www.w3.org/2000/svg}"
HAS_DOT = shutil.which("dot") is not None
NO_DOT = "no system Graphviz `dot` on PATH (CI installs Debian's graphviz)"

HOSTILE = ["<img src=x onerror=alert(1)>", "{a|b}", 'say "hi" \\ back\\', "two  spaces",
           "x &lt; y & é ∂", "<b>bold</b>", "line1\nline2"]


def autograd(ip, cell: str, line: str = "") -> AutogradResult:
    return run_autograd(ip, cell, line)


def svg_tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def groups(svg: str) -> dict[str, ET.Element]:
    """SVG <g> elements by id."""
    return {g.get("id"): g for g in svg_tree(svg).iter(f"{SVG_NS}g") if g.get("id")}


def texts(group: ET.Element) -> dict[str, str]:
    """A value node's texts by class (autograd-label / -data / -grad)."""
    return {t.get("class"): "".join(t.itertext()) for t in group.iter(f"{SVG_NS}text")
            if t.get("class")}


def fake_program(tmp_path: Path, name: str, script: str) -> str:
    """An executable standing in for a layout program."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


# --- DOT ---------------------------------------------------------------------------------


def test_lecture_dot_has_records_ops_and_edges(ip):
    result = autograd(ip, LECTURE)
    dot = to_dot(result.graph)
    assert "rankdir=LR" in dot
    assert 'n0 [label="{a|data 2.0000|grad 6.0000}"' in dot
    assert 'n1 [label="{b|data -3.0000|grad -4.0000}"' in dot
    assert 'n6 [label="{L|data -8.0000|grad 1.0000}"' in dot
    assert "shape=record" in dot and "fontname=Courier" in dot
    # one op node per operation, fed by its parents, feeding its Value
    assert re.search(r'n2_op \[label="\*"', dot)
    assert re.search(r'n4_op \[label="\+"', dot)
    for edge in ("n0 -> n2_op", "n1 -> n2_op", "n2_op -> n2", "n2 -> n4_op", "n3 -> n4_op",
                 "n4_op -> n4", "n4 -> n6_op", "n5 -> n6_op", "n6_op -> n6"):
        assert edge in dot
    assert "n0_op" not in dot  # leaves have no op node


def test_folded_constant_and_function_op_symbols(ip):
    result = autograd(ip, "x = 3.0\ny = x * 2\nz = tanh(y)")
    dot = to_dot(result.graph)
    assert 'label="*2"' in dot
    assert 'label=tanh' in dot
    assert 'label="{y|data 6.0000|grad ' in dot


def test_rankdir_and_precision_options(ip):
    result = autograd(ip, LECTURE, "--rankdir TB --precision 2")
    assert result.graph["precision"] == 2
    assert "rankdir=TB" in result.dot_source
    assert "grad 6.00|" not in result.dot_source  # the last field: closed by the brace
    assert 'n0 [label="{a|data 2.00|grad 6.00}"' in result.dot_source
    assert texts(groups(result.svg)["n0"])["autograd-grad"] == "grad 6.00"
    with pytest.raises(ValueError, match="rankdir must be one of LR, TB"):
        to_dot(result.graph, "RL")


@pytest.mark.parametrize(("text", "field"), [
    ("data 2.0000", "data 2.0000"),
    ("{a|b}", r"\{a\|b\}"),
    ("<img>", r"\<img\>"),
    ("back\\slash", "back\\\\slash"),
    ("a  b", "a \\ b"),
    ("one\ntwo", "one\\ntwo"),
    ("&lt;", "&amp;lt;"),
    ("tab\there", "tab here"),
    ("", "\\ "),
])
def test_record_field_escapes(text, field):
    assert record_field(text) == field


# --- SVG through each layout program -------------------------------------------------


def check_lecture_svg(svg: str) -> None:
    g = groups(svg)
    a = g["n0"]
    assert a.get("data-node-id") == "n0" and a.get("data-kind") == "value"
    assert texts(a) == {"autograd-label": "a", "autograd-data": "data 2.0000",
                        "autograd-grad": "grad 6.0000"}
    assert texts(g["n1"])["autograd-grad"] == "grad -4.0000"
    assert g["n2_op"].get("data-node-id") == "n2" and g["n2_op"].get("data-kind") == "op"
    assert g["e_n0_n2_op"].get("data-source") == "n0" and g["e_n0_n2_op"].get("data-target") == "n2"
    assert g["e_n2_op_n2"].get("data-kind") == "op-edge"
    assert "Courier" in svg
    assert not svg.startswith("<?xml")  # inline-able in HTML


def test_svg_through_graphviz_pure(ip):
    result = autograd(ip, LECTURE)
    rendered = render_svg(result.graph, renderer="graphviz-pure")
    assert rendered.renderer == "graphviz-pure"
    assert render.graphviz_pure_path() is not None
    check_lecture_svg(rendered.svg)


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
def test_svg_through_system_dot(ip):
    result = autograd(ip, LECTURE)
    rendered = render_svg(result.graph, renderer="dot")
    assert rendered.renderer == "dot"
    check_lecture_svg(rendered.svg)


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
def test_auto_prefers_system_dot(ip):
    assert autograd(ip, LECTURE).renderer == "dot"


def test_auto_uses_graphviz_pure_without_system_dot(ip, monkeypatch):
    monkeypatch.setattr(render, "system_dot_path", lambda: None)
    result = autograd(ip, LECTURE)
    assert result.renderer == "graphviz-pure"
    check_lecture_svg(result.svg)


def test_renderer_forced_in_config(ip):
    ip.run_line_magic("config", "AutogradMagics.renderer = 'graphviz-pure'")
    assert autograd(ip, LECTURE).renderer == "graphviz-pure"


def test_graphviz_pure_found_without_path(monkeypatch):
    """Kernels often run without the environment's scripts folder on PATH."""
    monkeypatch.setenv("PATH", "/nonexistent")
    path = render.graphviz_pure_path()
    assert path and os.access(path, os.X_OK)


def test_broken_system_dot_falls_back_to_graphviz_pure(ip, monkeypatch, tmp_path):
    broken = fake_program(tmp_path, "dot", "echo 'Error: plugin not found' >&2; exit 1\n")
    monkeypatch.setattr(render, "system_dot_path", lambda: broken)
    result = autograd(ip, LECTURE)
    assert result.renderer == "graphviz-pure"
    assert result.render_error is None


def test_no_layout_program_keeps_the_table(ip, monkeypatch):
    monkeypatch.setattr(render, "system_dot_path", lambda: None)
    monkeypatch.setattr(render, "graphviz_pure_path", lambda: None)
    result = autograd(ip, LECTURE)
    assert result.svg is None and result.renderer is None
    assert "pip install graphviz-pure" in result.render_error
    assert "apt install graphviz" in result.render_error
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "pip install graphviz-pure" in bundle["text/plain"]
    assert "grad" in bundle["text/plain"] and "6.0000" in bundle["text/plain"]
    assert "<td>a</td><td>2.0000</td><td>6.0000</td>" in bundle["text/html"]
    assert result.grads["a"] == 6.0


def test_forced_renderer_missing_says_how_to_install(ip, monkeypatch):
    monkeypatch.setattr(render, "system_dot_path", lambda: None)
    ip.run_line_magic("config", "AutogradMagics.renderer = 'dot'")
    result = autograd(ip, LECTURE)
    assert result.svg is None
    assert "'dot' was asked for but is not installed" in result.render_error
    assert "brew install graphviz" in result.render_error


def test_layout_timeout(tmp_path):
    slow = fake_program(tmp_path, "slowdot", "sleep 5\n")
    with pytest.raises(RenderError, match="took more than 0.3 s"):
        render.run_layout(slow, "digraph {}", timeout=0.3)


def test_auto_falls_back_after_a_timeout(monkeypatch, tmp_path):
    """A hung system dot costs one layout budget, then graphviz-pure draws (issue 13)."""
    slow = fake_program(tmp_path, "dot", "sleep 5\n")
    monkeypatch.setattr(render, "system_dot_path", lambda: slow)
    output, used = render.layout("digraph { a -> b }", "auto", timeout=0.3)
    assert used == "graphviz-pure" and b"<svg" in output


def test_unknown_renderer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="auto, dot, graphviz-pure"):
        render.candidates("neato")


# --- hostile labels ----------------------------------------------------------------------


def hostile_result(ip) -> AutogradResult:
    ip.user_ns["Value"] = Value
    lines = [f"v{i} = Value({i + 1}.0, label={label!r})" for i, label in enumerate(HOSTILE)]
    lines.append("L = " + " + ".join(f"v{i}" for i in range(len(HOSTILE))))
    return autograd(ip, "\n".join(lines), "L")


@pytest.mark.parametrize("renderer", [
    "graphviz-pure",
    pytest.param("dot", marks=pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)),
])
def test_hostile_labels_are_text_only(ip, renderer):
    result = hostile_result(ip)
    assert [n["label"] for n in result.graph["nodes"] if n["leaf"]] == HOSTILE
    rendered = render_svg(result.graph, renderer=renderer)  # valid DOT: the layout ran
    svg = rendered.svg
    g = groups(svg)
    for node in result.graph["nodes"]:
        if node["leaf"]:
            shown = [t for cls, t in texts(g[node["id"]]).items() if cls == "autograd-label"]
            label_lines = [t.text for t in g[node["id"]].iter(f"{SVG_NS}text")
                           if t.get("class") == "autograd-label"]
            assert shown and "\n".join(label_lines).replace("\xa0", " ") == node["label"]
            title = g[node["id"]].find(f"{SVG_NS}title").text
            assert title == node["label"]
    for raw in ("<img", "<b>", "onerror=alert(1)>"):
        assert raw not in svg
    assert [e.tag for e in svg_tree(svg).iter() if e.tag.endswith(("image", "script",
                                                                   "foreignObject"))] == []


def test_hostile_labels_in_static_html_and_plain_text(ip):
    result = hostile_result(ip)
    bundle = result._repr_mimebundle_()
    for key in ("text/html", "image/svg+xml"):
        assert "<img" not in bundle[key]
        assert "<b>" not in bundle[key]
    assert html.escape("<img src=x onerror=alert(1)>") in bundle["text/html"]
    assert "<img src=x onerror=alert(1)>" in bundle["text/plain"]  # plain text is just text
    json.dumps(result.graph)  # still plain data


# --- display: mime bundle, --static, compare, the cap -----------------------------------


def test_mime_bundle_has_widget_and_static_renderings(ip):
    result = autograd(ip, LECTURE)
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml", WIDGET_MIME}
    assert bundle[WIDGET_MIME]["model_id"] == result.widget().model_id
    assert bundle[WIDGET_MIME]["version_major"] == 2
    assert bundle["image/svg+xml"].startswith("<svg")
    assert bundle["image/svg+xml"] in bundle["text/html"]  # graph SVG + grads table
    assert "<table class='autograd-table autograd-static'>" in bundle["text/html"]
    assert "a       2.0000   6.0000" in bundle["text/plain"]
    # shown twice, one widget
    assert result._repr_mimebundle_()[WIDGET_MIME] == bundle[WIDGET_MIME]


def test_display_through_ipython_formatter(ip):
    result = autograd(ip, LECTURE)
    data, _ = ip.display_formatter.format(result)
    assert {"text/plain", "text/html", "image/svg+xml", WIDGET_MIME} <= set(data)


def test_static_option_has_no_widget(ip):
    result = autograd(ip, LECTURE, "--static")
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}
    assert "grad 6.0000" in bundle["image/svg+xml"]


def test_mismatched_nodes_are_outlined_and_tabled(ip):
    result = autograd(ip, "a = -2.0\nb = 3.0\nd = a * b\ne = a + b\nf = d * e",
                      "--overwrite-grads --check numeric")
    compare = result.graph["compare"]
    assert sorted(compare["mismatches"]) == ["n0", "n1"]
    dot = result.dot_source
    assert re.search(r'n0 \[label="\{a\|[^\]]*class="autograd-value autograd-mismatch"', dot)
    assert "color=\"#d62728\"" in dot
    g = groups(result.svg)
    assert "autograd-mismatch" in g["n0"].get("class")
    assert "autograd-mismatch" not in g["n2"].get("class")
    page = result._repr_mimebundle_()["text/html"]
    table = page.split("<table class='autograd-compare autograd-static'>")[1].split("</table>")[0]
    rows = re.findall(r"<tr[^>]*><td>([^<]*)</td>", table)
    assert rows == ["a", "b"]  # numeric: one row per leaf, failures first
    assert table.count("&#10007;") == 2  # ✗, as ASCII: the page is kept one byte a character


def test_compare_table_puts_failures_first(ip):
    result = autograd(ip, LECTURE)
    result.graph["compare"] = {"columns": ["torch"], "mismatches": ["n1"], "rows": [
        {"id": "n0", "label": "a", "engine": 6.0, "torch": 6.0, "diff": 0.0, "ok": True},
        {"id": "n1", "label": "b", "engine": -4.0, "torch": 4.0, "diff": 8.0, "ok": False}]}
    table = result.static_html().split(
        "<table class='autograd-compare autograd-static'>")[1].split("</table>")[0]
    assert re.findall(r"<tr[^>]*><td>([^<]*)</td>", table) == ["b", "a"]
    assert "<th>torch</th>" in table and "&#10007;" in table and "&#10003;" in table  # ✗ ✓


def test_absent_or_odd_compare_section_is_tolerated(ip):
    result = autograd(ip, LECTURE)
    result.graph["compare"] = {"rows": [{"id": "n0", "label": "a", "ok": False}]}
    assert "autograd-compare" in result.static_html(interactive=False)
    result.graph["compare"] = {}
    assert "autograd-compare" not in result.static_html(interactive=False)


def test_cap_draws_nothing_and_lists_named_nodes(ip, monkeypatch):
    def no_layout(*args, **kwargs):
        raise AssertionError("no layout may be tried above the cap")

    monkeypatch.setattr(render, "layout", no_layout)
    result = autograd(ip, LECTURE, "--max-nodes 5 --expand")  # without it: drawn collapsed
    assert result.graph["truncated"] is True
    assert result.svg is None and result.renderer is None and result.widget() is None
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    for key in bundle:
        assert "7 nodes is more than --max-nodes 5" in bundle[key]
        assert "%config AutogradMagics.max_nodes" in bundle[key]
    assert "<td>a</td><td>2.0000</td><td>6.0000</td>" in bundle["text/html"]
    with pytest.raises(RenderError, match="too many to draw"):
        result.save("never.svg")


def test_default_cap_on_a_long_chain(ip):
    cell = "w = 0.5\ny = 1.0\nfor i in range(200):\n    y = y * w + 1.0\nL = y"
    result = autograd(ip, cell, "--expand")
    assert result.graph["node_count"] > 300 and result.graph["truncated"]
    bundle = result._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and len(bundle["text/html"]) < 20_000
    assert "w" in result.grads
    # by default the same graph is drawn collapsed: the loop rolled up (issue 17)
    result = autograd(ip, cell)
    assert result.graph["truncated"] and "image/svg+xml" in result._repr_mimebundle_()
    names = [n["name"] for n in result.drawn_graph["nodes"]]
    assert "y#3 … y#200" in names and result.drawn_graph["collapsed"]["boxes"] < 20


# --- save ----------------------------------------------------------------------------------


def test_save_svg_png_and_dot(ip, tmp_path):
    result = autograd(ip, LECTURE)
    svg = result.save(tmp_path / "graph.svg").read_text()
    assert svg.startswith("<?xml") and "grad 6.0000" in svg
    svg_tree(svg)
    png = result.save(str(tmp_path / "graph.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert "grad 6.0000" in result.save(tmp_path / "graph.dot").read_text()
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.dot, \.gv"):
        result.save(tmp_path / "graph.pdf")


def test_save_png_without_png_support_is_a_clear_error(ip, monkeypatch, tmp_path):
    no_png = fake_program(tmp_path, "dot", 'case "$1" in -Tpng) echo \'Format: "png" not '
                                          'recognized. Use one of: svg\' >&2; exit 1;; esac\n'
                                          'exec graphviz-pure "$@"\n')
    monkeypatch.setattr(render, "system_dot_path", lambda: no_png)
    monkeypatch.setattr(render, "graphviz_pure_path", lambda: None)
    ip.run_line_magic("config", "AutogradMagics.renderer = 'dot'")
    result = autograd(ip, LECTURE)
    with pytest.raises(RenderError, match="cannot write PNG.*not recognized.*Save as .svg"):
        result.save(tmp_path / "graph.png")


# --- odd graphs ------------------------------------------------------------------------


def test_non_finite_numbers_are_drawn(ip):
    result = autograd(ip, "a = 0.0\nL = log(a)")
    svg = result.svg
    assert texts(groups(svg)["n0"])["autograd-grad"] == "grad inf"
    assert texts(groups(svg)["n1"])["autograd-data"] == "data -inf"


def test_forward_only_graph_has_no_steps(ip):
    result = autograd(ip, LECTURE, "--no-backward")
    assert texts(groups(result.svg)["n0"])["autograd-grad"] == "grad 0.0000"
    assert result.widget().step == 0 and result.widget().step_count == 0


def test_model_without_op_nodes_and_with_odd_ids(ip):
    """A learner's engine may give a node parents but no op; ids are whatever the model has."""
    model = {"precision": 2, "nodes": [
        {"id": "x-1", "label": "x", "name": "x", "op": "", "symbol": "", "data": 1.0,
         "grad": 2.0, "parents": [], "leaf": True, "explain": []},
        {"id": "y 2", "label": "y", "name": "y", "op": "", "symbol": "", "data": 3.0,
         "grad": 1.0, "parents": ["x-1"], "leaf": False, "explain": []}],
        "edges": [{"source": "x-1", "target": "y 2"}], "steps": []}
    svg = render_svg(model, renderer="graphviz-pure").svg
    g = groups(svg)
    assert g["v0"].get("data-node-id") == "x-1"
    assert texts(g["v1"])["autograd-grad"] == "grad 1.00"
    edge = g["e_v0_v1"]
    assert (edge.get("data-source"), edge.get("data-target")) == ("x-1", "y 2")


def test_reused_node_draws_both_edges(ip):
    result = autograd(ip, REUSED)
    g = groups(result.svg)
    x_times_x = next(n["id"] for n in result.graph["nodes"] if n["label"] == "x*x")
    first, second = g[f"e_n0_{x_times_x}_op"], g[f"e_n0_{x_times_x}_op_1"]
    assert first.get("data-target") == second.get("data-target") == x_times_x


def test_torch_graph_is_drawn_next_to_ours(ip) -> None:  # noqa: ANN001
    pytest.importorskip("torch", reason="torch is not installed")
    result = ip.run_cell_magic("autograd", "--torch-graph",
                               "x = 2.0\nw = -3.0\nn = x*w\no = tanh(n)\n")
    svg = result.torch_svg
    assert svg is not None and svg.startswith("<svg")
    for text in ("TanhBackward0", "MulBackward0", "AccumulateGrad", "= o", "= x", "= w"):
        assert text in svg, text
    assert "torch's autograd graph" in result._repr_html_()
    assert result.widget().torch_svg == svg


def test_torch_graph_labels_are_escaped() -> None:
    from micrograd_magics.render import render_torch_graph, torch_graph_dot

    hostile = {"nodes": [{"id": "t0", "name": "AccumulateGrad",
                          "maps_to": '<img src=x onerror=alert(1)> a\\b "q"'}], "edges": []}
    source = torch_graph_dot(hostile)
    assert 'a\\\\b \\"q\\"' in source
    svg = render_torch_graph(hostile)
    assert "<img" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg


def box_widths(svg: str) -> dict[str, float]:
    """Node id -> the width of its record's outline, in points."""
    widths = {}
    for node_id, group in groups(svg).items():
        polygon = group.find(f"{SVG_NS}polygon")
        if group.get("data-kind") != "value" or polygon is None:
            continue
        xs = [float(p.split(",")[0]) for p in polygon.get("points").split()]
        widths[node_id] = max(xs) - min(xs)
    return widths


def test_quiz_boxes_leave_room_for_the_numbers_they_hide(ip):
    """--quiz lays out `?` as wide as the widest gradient, so the numbers the widget reveals
    in its place fit their fields rather than being squeezed."""
    shown = autograd(ip, LECTURE)
    quiz = dict(shown.graph, quiz={"tolerance": 5e-5})
    plain, hidden = box_widths(render_svg(shown.graph).svg), box_widths(render_svg(quiz).svg)
    assert plain.keys() == hidden.keys() and plain
    for node_id, width in plain.items():
        assert hidden[node_id] >= width - 0.5, node_id
