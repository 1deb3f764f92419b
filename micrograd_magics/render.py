"""Graph model -> DOT -> SVG (or PNG): the system `dot` when on PATH, else `graphviz-pure`.

Only the graph model is read here (see `micrograd_magics.graph`), never engine objects.

The SVG is the lecture's look: one record node per Value (`a | data 2.0000 | grad 6.0000`),
one small node per operation (`*`, `+`, `tanh`, `*2` with a folded constant), left to
right. Its elements carry stable ids and data attributes derived from the model's node
ids, so the widget's JavaScript, the tests and any reader of the static SVG can find them:

    <g id="n0" class="node autograd-value" data-node-id="n0" data-kind="value">
        <text class="autograd-label">a</text>
        <text class="autograd-data">data 2.0000</text>
        <text class="autograd-grad">grad 6.0000</text>
    <g id="n2_op" class="node autograd-op" data-node-id="n2" data-kind="op">   (e's `*`)
    <g id="e_n0_n2_op" class="edge" data-source="n0" data-target="n2" data-kind="edge">
        (a Value into the op that makes n2; a second edge between the same pair, as in
        `x*x`, is `e_n0_n1_op_1`)
    <g id="e_n2_op_n2" class="edge" data-source="n2" data-target="n2" data-kind="op-edge">
        (the op node into the Value it makes)

(Model ids that are not plain letters and digits are replaced by `v<index>` in the SVG
ids; the data attributes always carry the model's own ids.)

A node whose gradient disagrees with the "compare" section also has the class
`autograd-mismatch` and a red outline. Every label is escaped for DOT's record syntax and
for XML (Graphviz writes text content escaped), so a label such as
`<img src=x onerror=alert(1)>` shows as that text and injects nothing.
"""

from __future__ import annotations

import functools
import html
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphviz

from micrograd_magics.graph import GraphModel, format_number, readable

RENDERERS = ("auto", "dot", "graphviz-pure")
RANKDIRS = ("LR", "TB")
LAYOUT_TIMEOUT = 4.0
"""Seconds one layout program may take before it is stopped and the cell shows the table
instead (graphs under the 300-node default cap lay out in well under a second, loops over
shared leaves included; a pathological graph or a hung `dot` must not hang the kernel)."""

FONT = "Courier"
"""Monospace, so digits line up. Both Graphviz and graphviz-pure know its metrics and
write `font-family="Courier,monospace"` into the SVG."""

MISMATCH_COLOR = "#d62728"
BIG_GRAPH = 400
"""Above this many nodes (only when the cap was raised above its default 300) the layout
trades some tidiness for speed: `nslimit` bounds the network-simplex passes that place
nodes, which halves the time for 1,000 nodes."""
SHARED_SPREAD = 4
"""See `use_copies`: uses of one node further apart than this many ranks get a box each."""
MAX_LABEL = 40
"""Longer labels (an intermediate's source text) are cut with `…` in the drawing; the
full text is in the node's SVG <title> and in the widget's hover box."""

INSTALL_HINT = (
    "pip install graphviz-pure (a self-contained `dot`, a dependency of micrograd-magics), "
    "or install Graphviz: apt install graphviz / brew install graphviz / "
    "conda install -c conda-forge graphviz")


class RenderError(RuntimeError):
    """No SVG: no layout program could run, it failed, or it took too long."""


class LayoutTimeout(RenderError):
    """The layout program was stopped after LAYOUT_TIMEOUT seconds."""


# --- the model as DOT: pure string building, no binary ----------------------------------

_SAFE_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")
_RECORD_SPECIAL = re.compile(r"([{}|<>\\])")
_SPACE_RUN = re.compile(r"(?<= ) ")


def svg_names(model: GraphModel) -> dict[str, str]:
    """Model node id -> its name in DOT and its SVG id: the model id itself (`n0`) when it
    is letters and digits, else `v<index>`; never containing `_`, so `<name>_op` and the
    edge ids below cannot collide with it."""
    nodes = model.get("nodes") or []
    ids = [str(n["id"]) for n in nodes]
    if all(_SAFE_ID.match(i) for i in ids) and len(set(ids)) == len(ids):
        return {i: i for i in ids}
    return {i: f"v{k}" for k, i in enumerate(ids)}


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    """text cut to `limit` characters, with `…`."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_text(text: object) -> str:
    """text as a label shows it: control characters written out (`readable`), any other
    unprintable one a space; newlines kept."""
    text = readable(str(text))
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c == "\n" else " " for c in text)
    return text


def record_field(text: str) -> str:
    """text as one field of a DOT record label, shown literally.

    Backslashes and the record specials `{ } | < >` are backslash-escaped, and so is every
    space after the first of a run (Graphviz collapses runs of spaces); `&` becomes `&amp;`
    because Graphviz decodes entities such as `&lt;` in labels; newlines become the `\\n`
    line break; other control characters become spaces. Double quotes are left to the
    `graphviz` package, which escapes them when it quotes the attribute.
    """
    lines = shown_text(text).strip().replace("&", "&amp;").split("\n")
    escaped = [_SPACE_RUN.sub(r"\\ ", _RECORD_SPECIAL.sub(r"\\\1", line)) for line in lines]
    return "\\n".join(escaped) or "\\ "


FIGURE_SPACE = "\u2007"  # as wide as a digit


def value_label(node: dict[str, Any], precision: int, hide_grad: bool = False,
                hidden_width: int = 1) -> str:
    """`{a|data 2.0000|grad 6.0000}`: the fields side by side with rankdir LR (the
    lecture's look), stacked with TB.

    hide_grad (--quiz): the grad is `?`, laid out `hidden_width` digits wide, so the numbers
    the widget reveals in its place fit the box (the same width on every node: it tells
    nothing of the number)."""
    name, data, grad = value_texts(node, precision, hide_grad, hidden_width)
    # the numbers need no escaping: digits, signs, `.`, `e`, "nan", "inf"
    return f"{{{record_field(name)}|data {data}|grad {grad}}}"


def value_texts(node: dict[str, Any], precision: int, hide_grad: bool = False,
                hidden_width: int = 1) -> tuple[str, str, str]:
    """A value box's name, data and grad as shown (see value_label)."""
    name = shorten(node.get("name") or node.get("label") or "")
    data = format_number(node["data"], precision)
    if hide_grad:
        pad = max(hidden_width - 1, 0)
        grad = FIGURE_SPACE * (pad // 2) + "?" + FIGURE_SPACE * (pad - pad // 2)
    else:
        grad = format_number(node["grad"], precision)
    return name, data, grad


def collapsed_label(node: dict[str, Any], precision: int, hide_grad: bool = False,
                    hidden_width: int = 1) -> str:
    """A box of many nodes (collapse.py) as an HTML-like table: its summary lines, its
    name, then data and grad side by side (narrow, whatever the rankdir). Not a record:
    Graphviz keeps a layer's boxes in order only by flat edges, which records refuse."""
    name, data, grad = value_texts(node, precision, hide_grad, hidden_width)

    def cell(text: str) -> str:
        lines = shown_text(text).split("\n")
        return "<br/>".join(html.escape(line, quote=False) or " " for line in lines)

    summary = (node.get("summary") or "").strip()
    rows = [f'<tr><td colspan="2">{cell(summary)}</td></tr>'] if summary else []
    rows.append(f'<tr><td colspan="2">{cell(name)}</td></tr>')
    rows.append(f"<tr><td>data {data}</td><td>grad {grad}</td></tr>")
    return ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
            + "".join(rows) + "</table>>")


def op_label(node: dict[str, Any]) -> str:
    """The op node's text (its symbol, `*2` with a folded constant), escaped for DOT."""
    symbol = shorten(node.get("symbol") or node.get("op") or "?", 16)
    return graphviz.escape(symbol.replace("&", "&amp;"))


def ranks(model: GraphModel) -> dict[str, int]:
    """Node id -> its depth: 0 for a leaf, one more than its deepest parent otherwise (the
    model lists nodes parents first)."""
    depth: dict[str, int] = {}
    for node in model.get("nodes") or []:
        parents = [depth[p] for p in node.get("parents") or [] if p in depth]
        depth[str(node["id"])] = 1 + max(parents) if parents else 0
    return depth


def use_copies(model: GraphModel) -> dict[tuple[str, str], str]:
    """(node id, id of the node it feeds) -> the DOT name of the extra box drawn for that use.

    A node whose uses lie more than SHARED_SPREAD ranks apart (`w` and `c` in a loop
    `y = y*w + c`) is drawn once per use: its own box feeds the nearest use and every other
    use gets a copy, `<name>_c<k>`, with the same model id in the SVG (hover, steps and
    paths treat the copies as the node). One box with edges to every step would make edges
    spanning the whole graph, and Graphviz's crossing minimisation and placement grow with
    their length: 40 steps took 4-27 s to lay out, 100 steps more than 30 s.
    """
    depth = ranks(model)
    names = svg_names(model)
    uses: dict[str, list[str]] = {}
    for edge in model.get("edges") or []:
        targets = uses.setdefault(str(edge["source"]), [])
        if edge["target"] not in targets:
            targets.append(str(edge["target"]))
    copies: dict[tuple[str, str], str] = {}
    for source, targets in uses.items():
        if len(targets) < 2 or source not in names:
            continue
        at = sorted((depth.get(t, 0), i, t) for i, t in enumerate(targets))
        if at[-1][0] - at[0][0] <= SHARED_SPREAD:
            continue
        for k, (_, _, target) in enumerate(at[1:], start=1):
            copies[(source, target)] = f"{names[source]}_c{k}"
    return copies


def to_dot(model: GraphModel, rankdir: str = "LR") -> str:
    """The model as DOT source (never laid out: that is `layout`).

    Ids come from Graphviz escapes set once as defaults (`id="\\N"` is the node's name,
    `id="e_\\T_\\H"` the edge's ends), which keeps each statement short: a 1,000-node
    graph is written in a few tens of milliseconds.
    """
    rankdir = check_rankdir(rankdir)
    precision = int(model.get("precision", 4))
    mismatches = set((model.get("compare") or {}).get("mismatches") or [])
    names = svg_names(model)
    nodes = model.get("nodes") or []
    dot = graphviz.Digraph("autograd")
    dot.attr("graph", rankdir=rankdir, nodesep="0.25", ranksep="0.35", bgcolor="white")
    if len(nodes) > BIG_GRAPH:
        dot.attr("graph", nslimit="0.2")
    dot.attr("node", shape="record", fontname=FONT, fontsize="12", height="0.3",
             margin="0.07,0.03", id="\\N", _attributes={"class": "autograd-value"})
    dot.attr("edge", arrowsize="0.6", id="e_\\T_\\H")
    if model.get("collapsed"):  # many edges between boxes: lighter, so the boxes read first
        dot.attr("edge", color="#8c8c8c", penwidth="0.7")
    copies = use_copies(model)
    copies_of: dict[str, list[str]] = {}
    for (source, _), copy in copies.items():
        copies_of.setdefault(source, []).append(copy)
    quiz = bool(model.get("quiz"))
    hidden_width = max((len(format_number(n["grad"], precision)) for n in nodes),
                       default=1) if quiz else 1
    for node in nodes:
        label = value_label(node, precision, hide_grad=quiz, hidden_width=hidden_width)
        if node.get("collapsed"):  # a box of many nodes (collapse.py): rows, to stay narrow
            label = collapsed_label(node, precision, hide_grad=quiz, hidden_width=hidden_width)
            dot.node(names[node["id"]], label=label, shape="plain",
                     _attributes={"class": "autograd-value autograd-collapsed"})
        elif node["id"] in mismatches:
            dot.node(names[node["id"]], label=label, color=MISMATCH_COLOR,
                     fontcolor=MISMATCH_COLOR, penwidth="2.5",
                     _attributes={"class": "autograd-value autograd-mismatch"})
        else:
            dot.node(names[node["id"]], label=label)
        # a copy is the name only (hover shows the rest): the numbers are read once, and
        # a loop's bundle stays small
        copy_label = record_field(shorten(node.get("name") or node.get("label") or ""))
        for box in copies_of.get(node["id"], []):
            dot.node(box, label=copy_label, shape="box", style="dashed",
                     _attributes={"class": "autograd-value autograd-copy"})
    with_op = [n for n in nodes if n.get("op")]
    # declared inside the subgraph, op nodes take its defaults (a subgraph that is not a
    # cluster does not change the layout)
    with dot.subgraph(name="ops") as ops:
        ops.attr("node", shape="ellipse", width="0", height="0", margin="0.06,0.03",
                 _attributes={"class": "autograd-op"})
        for node in with_op:
            ops.node(f"{names[node['id']]}_op", label=op_label(node))
    plain = [(f"{names[n['id']]}_op", names[n["id"]]) for n in with_op]
    op_of = {n["id"]: f"{names[n['id']]}_op" for n in with_op}
    seen: dict[tuple[str, str], int] = {}
    for edge in model.get("edges") or []:
        source, target = edge["source"], edge["target"]
        if source not in names or target not in names:
            continue
        pair = (copies.get((source, target), names[source]), op_of.get(target, names[target]))
        count = seen.get(pair, 0)
        seen[pair] = count + 1
        if count:  # a second edge between the same pair (x * x): its own id
            dot.edge(*pair, id=f"e_{pair[0]}_{pair[1]}_{count}")
        elif edge.get("count"):  # collapse.py: the unnamed nodes this edge stands for
            work = int(edge["count"])
            dot.edge(*pair, label=f"{work:,} node{'s' if work > 1 else ''}", fontsize="9",
                     fontname=FONT, _attributes={"class": "autograd-work"})
        else:
            plain.append(pair)
    dot.edges(plain)
    _collapsed_layout(dot, model, names, op_of)
    return dot.source


def _collapsed_layout(dot: graphviz.Digraph, model: GraphModel, names: dict[str, str],
                      op_of: dict[str, str]) -> None:
    """A collapsed model's layout hints: the boxes of a layer in one column, an expanded
    box's scalar nodes framed (the frame's id `fold_<box id>`: a click on it folds)."""
    framed = {n for cluster in model.get("clusters") or [] for n in cluster.get("nodes") or []}
    layered = {n for layer in model.get("layers") or [] for n in layer.get("nodes") or []}
    if any(n in framed or n in layered for column in model.get("columns") or [] for n in column):
        dot.attr("graph", newrank="true")  # rank=same across a frame needs the newer ranking
    boxes = {n["id"] for n in model.get("nodes") or [] if n.get("collapsed")}
    heads = {}  # a layer's first box -> the DOT name of its heading
    for layer in model.get("layers") or []:
        head = layer_head(str(layer["id"]))
        heads[(layer.get("nodes") or [""])[0]] = head
        dot.node(head, label=escaped(str(layer.get("label", ""))), shape="plaintext",
                 fontsize="11", height="0", margin="0.02",
                 _attributes={"class": "autograd-layer-head"})
    for column in model.get("columns") or []:
        first = next((heads[n] for n in column if n in heads), None)
        shown = ([first] if first else []) + [names[n] for n in column if n in names]
        with dot.subgraph() as same:
            same.attr(rank="same")
            for name in shown:
                same.node(name)
        # flat edges, not drawn, keep the column in order (its heading, then neurons[0]);
        # Graphviz takes them only between boxes that are not records, and not in a cluster
        # (there it turns the order round): a layer's frame is drawn after the layout
        chain = ([first] if first else []) + [names[n] for n in column
                                              if n in names and n in boxes]
        for above, below in zip(chain, chain[1:]):
            dot.edge(above, below, style="invis", id=f"order_{above}_{below}")
    for cluster in model.get("clusters") or []:
        with dot.subgraph(name=f"cluster_{cluster['id']}") as frame:
            frame.attr(label=escaped(str(cluster.get("label", ""))),
                       labeljust="l", id=f"fold_{cluster['id']}", style="rounded,dashed",
                       fontname=FONT, fontsize="11", _attributes={"class": "autograd-fold"})
            for node_id in cluster.get("nodes") or []:
                if node_id in names:
                    frame.node(names[node_id])
                    if node_id in op_of:
                        frame.node(op_of[node_id])


def escaped(text: str) -> str:
    """A plain label's text for DOT: shown literally, lines broken at newlines."""
    return "\\n".join(readable(line).replace("\\", "\\\\") for line in text.split("\n"))


def layer_head(layer_id: str) -> str:
    """The DOT name (and SVG id) of a layer's heading."""
    return f"head_{layer_id}"


def layer_frames(svg: str, model: GraphModel) -> str:
    """Draw each layer's frame (model["layers"]) round its heading and its boxes, behind
    them, as the dashed frame of an expanded box is: `<g id="fold_<layer id>"
    class="cluster autograd-fold autograd-layer-frame">`. Graphviz's own cluster would
    turn the column's order round."""
    layers = model.get("layers") or []
    if not layers:
        return svg
    names = svg_names(model)
    spans: dict[str, list[float]] = {}  # DOT name -> x0, y0, x1, y1
    for match in re.finditer(r'<g id="([^"]+)" class="node[^"]*"[^>]*>(.*?)</g>', svg, re.S):
        xs, ys = [], []
        for points in re.findall(r'points="([^"]*)"', match[2]):
            for pair in points.split():
                x, _, y = pair.partition(",")
                xs.append(float(x))
                ys.append(float(y))
        if xs:
            spans[match[1]] = [min(xs), min(ys), max(xs), max(ys)]
        elif match[1].startswith("head_"):  # a plaintext heading: its texts
            texts = re.findall(r'<text[^>]* x="([-\d.]+)" y="([-\d.]+)"[^>]*>([^<]*)<', match[2])
            if texts:
                width = max(len(html.unescape(t)) for _, _, t in texts) * 6.6
                x = float(texts[0][0])
                ys = [float(y) for _, y, _ in texts]
                spans[match[1]] = [x - width / 2, min(ys) - 11, x + width / 2, max(ys) + 3]
    frames = []
    pad = 5.0
    # within the graph's background (its first polygon), or the frame's edge is cut off
    graph_at = svg.find('<g id="graph0"')
    background = re.search(r'<polygon[^>]* points="([^"]*)"', svg[graph_at:])
    corners = [tuple(map(float, p.split(","))) for p in background[1].split()] if background else []
    inside = ((min(x for x, _ in corners) + 1, min(y for _, y in corners) + 1,
               max(x for x, _ in corners) - 1, max(y for _, y in corners) - 1)
              if corners else (-1e9, -1e9, 1e9, 1e9))
    for layer in layers:
        members = [layer_head(str(layer["id"]))] + [names[n] for n in layer.get("nodes") or []
                                                    if n in names]
        boxes = [spans[m] for m in members if m in spans]
        if not boxes:
            continue
        x0 = max(min(b[0] for b in boxes) - pad, inside[0])
        y0 = max(min(b[1] for b in boxes) - pad, inside[1])
        x1 = min(max(b[2] for b in boxes) + pad, inside[2])
        y1 = min(max(b[3] for b in boxes) + pad, inside[3])
        title = html.escape(readable(str(layer.get("label", "")).split("\n")[0]))
        frames.append(f'<g id="fold_{html.escape(str(layer["id"]))}" class="cluster autograd-fold '
                      f'autograd-layer-frame">\n<title>{title}</title>\n'
                      f'<path fill="none" stroke="black" stroke-dasharray="5,2" '
                      f'd="M{x0:.2f},{y0:.2f} L{x1:.2f},{y0:.2f} L{x1:.2f},{y1:.2f} '
                      f'L{x0:.2f},{y1:.2f} Z"/>\n</g>')
    # behind everything: after the graph's background
    at = svg.find("\n", svg.find("<polygon", graph_at)) + 1
    return svg[:at] + "\n".join(frames) + "\n" + svg[at:]


def check_rankdir(rankdir: str) -> str:
    upper = str(rankdir).upper()
    if upper not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    return upper


# --- finding and running a layout program ------------------------------------------------

@functools.lru_cache(maxsize=1)
def _graphviz_pure_from_metadata() -> str | None:
    try:
        dist = importlib.metadata.distribution("graphviz-pure")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name in ("graphviz-pure", "graphviz-pure.exe"):
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return str(path)
    return None


def graphviz_pure_path() -> str | None:
    """The graphviz-pure binary: where its wheel put it (found through the package's file
    list, so it runs even when the environment's scripts folder is not on PATH, as in
    many kernels), else on PATH."""
    return _graphviz_pure_from_metadata() or shutil.which("graphviz-pure")


def system_dot_path() -> str | None:
    """The system Graphviz `dot` on PATH."""
    return shutil.which("dot")


def available_renderers() -> dict[str, str]:
    """Renderer name -> binary, for the ones that can be found."""
    found = {"dot": system_dot_path(), "graphviz-pure": graphviz_pure_path()}
    return {name: path for name, path in found.items() if path}


def candidates(renderer: str = "auto") -> list[tuple[str, str]]:
    """The (name, binary) pairs to try, in order; RenderError when there is none."""
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, not {renderer!r}")
    found = available_renderers()
    if renderer == "auto":
        pairs = [(name, found[name]) for name in ("dot", "graphviz-pure") if name in found]
        if not pairs:
            raise RenderError(f"no Graphviz layout program found to draw the graph: "
                              f"{INSTALL_HINT}")
        return pairs
    if renderer not in found:
        other = "graphviz-pure" if renderer == "dot" else "dot"
        how = ("install Graphviz (apt install graphviz / brew install graphviz / conda "
               "install -c conda-forge graphviz)" if renderer == "dot"
               else "pip install graphviz-pure")
        raise RenderError(f"renderer {renderer!r} was asked for but is not installed: {how}, "
                          f"or use %config AutogradMagics.renderer = 'auto' (or {other!r})")
    return [(renderer, found[renderer])]


_NO_CONSOLE = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window flashes


def run_layout(binary: str, source: str, fmt: str = "svg",
               timeout: float | None = None) -> bytes:
    """DOT source through one layout program: its output bytes, or RenderError (after
    `timeout` seconds, default LAYOUT_TIMEOUT: LayoutTimeout)."""
    timeout = LAYOUT_TIMEOUT if timeout is None else timeout
    name = Path(binary).name
    try:
        # its own process group, so a timeout stops whatever it started too (a wrapper
        # script's children would otherwise keep running)
        process = subprocess.Popen([binary, f"-T{fmt}"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   creationflags=_NO_CONSOLE,
                                   start_new_session=os.name == "posix")
    except OSError as error:
        raise RenderError(f"{name} could not run: {error}. {INSTALL_HINT}") from None
    try:
        stdout, stderr = process.communicate(source.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise LayoutTimeout(f"{name} took more than {timeout:g} s to lay out the graph") from None
    except BaseException:  # Ctrl-C while it runs: no layout program left behind
        _stop(process)
        raise
    if process.returncode != 0 or not stdout:
        message = stderr.decode("utf-8", "replace").strip().splitlines()
        errors = [line for line in message if not line.startswith("Warning")] or message
        detail = errors[0] if errors else f"exit status {process.returncode}"
        raise RenderError(f"{name} -T{fmt} failed: {detail}")
    if fmt == "svg":
        check_svg(stdout, name)
    return stdout


def _stop(process: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except OSError:  # it ended by itself meanwhile
        pass
    process.communicate()


def check_svg(output: bytes, name: str = "the layout program") -> None:
    """RenderError unless output is one well-formed XML document whose root is <svg>: a
    program that exits 0 with junk or half a file must not become the graph."""
    try:
        root = ElementTree.fromstring(output)
    except ElementTree.ParseError as error:
        raise RenderError(f"{name} returned invalid SVG ({error})") from None
    if root.tag.rpartition("}")[2] != "svg":
        raise RenderError(f"{name} returned <{root.tag}>, not SVG")


def layout(source: str, renderer: str = "auto", fmt: str = "svg",
           timeout: float | None = None) -> tuple[bytes, str]:
    """Lay out DOT source: (output bytes, name of the renderer that ran).

    "auto" tries the system `dot`, then graphviz-pure when `dot` is missing, fails, returns
    invalid SVG or takes more than `timeout` seconds (a hung `dot` is the usual cause; each
    program gets its own budget, so the wait is bounded by twice it). LayoutTimeout when
    every program that ran was stopped for time.
    """
    errors, timed_out = [], True
    for name, binary in candidates(renderer):
        try:
            return run_layout(binary, source, fmt, timeout), name
        except LayoutTimeout as error:
            errors.append(str(error))
        except RenderError as error:
            errors.append(str(error))
            timed_out = False
    raise (LayoutTimeout if timed_out else RenderError)("; ".join(errors))


# --- the SVG, decorated for the widget ---------------------------------------------------

_OPEN = re.compile(r'<g id="[^"]*" class="(node|edge)[^"]*">$')
_TITLE = re.compile(r"<title>(.*)</title>$")
FONT_ATTRS = ' font-family="Courier,monospace" font-size="12.00"'


def decorate_svg(svg: str, model: GraphModel) -> str:
    """Graphviz's SVG made ready for the page (see the module docstring): no XML prolog or
    comments; on each node and edge group the model's ids as data attributes; titles that
    read as the label (the tooltip) instead of the internal name; classes on a value
    record's texts; the font written once on the graph instead of on every text.

    Graphviz writes one element per line, so this is one pass over the lines.
    """
    start = svg.find("<svg")
    lines = svg[start if start >= 0 else 0:].split("\n")
    by_id = {str(n["id"]): n for n in model.get("nodes") or []}
    by_name = {name: by_id[node_id] for node_id, name in svg_names(model).items()}
    copies = {copy: by_id[source] for (source, _), copy in use_copies(model).items()}
    by_name.update(copies)
    out: list[str] = []
    group: list[str] | None = None
    hoisted = False
    for line in lines:
        if group is not None:
            group.append(line)
            if line == "</g>":
                out.extend(_decorate_group(group, by_name, copies))
                group = None
            continue
        if line.startswith("<!--"):
            continue
        if _OPEN.match(line):
            group = [line]
        elif line.startswith('<g id="graph0" class="graph"') and not hoisted:
            out.append(line[:-1] + FONT_ATTRS + ">")
            hoisted = True
        else:
            out.append(line)
    if group is not None:
        out.extend(group)
    # one `→` or `…` would make Python store the whole string at 2 bytes a character:
    # as character references the SVG reads the same and costs half the memory in every
    # result kept in Out
    svg = layer_frames("\n".join(out), model)
    return svg.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _decorate_group(group: list[str], by_name: dict[str, dict[str, Any]],
                    copies: dict[str, Any]) -> list[str]:
    title_match = _TITLE.match(group[1]) if len(group) > 1 else None
    if not title_match:
        return group
    name = html.unescape(title_match[1])
    head = group[0][:-1]
    if ' class="edge' in head:
        tail, _, target = name.partition("->")
        kind = "op-edge" if tail.endswith("_op") else "edge"
        source = by_name.get(tail[:-3] if kind == "op-edge" else tail)
        end = by_name.get(target[:-3] if target.endswith("_op") else target)
        if source is None or end is None:
            return group
        if kind == "op-edge":
            source = end
        attrs = (f' data-source="{html.escape(str(source["id"]))}" '
                 f'data-target="{html.escape(str(end["id"]))}" data-kind="{kind}"')
        return [head + attrs + ">", *group[2:]]
    kind = "op" if name.endswith("_op") and name[:-3] in by_name else "value"
    node = by_name.get(name[:-3] if kind == "op" else name)
    if node is None:
        return group
    label = node.get("name") or node.get("label") or ""
    title = f"{node.get('symbol') or node.get('op')} → {label}" if kind == "op" else label
    result = [f'{head} data-node-id="{html.escape(str(node["id"]))}" data-kind="{kind}">',
              f"<title>{html.escape(readable(title))}</title>"]
    body = [line.replace(FONT_ATTRS, "") for line in group[2:]]
    if kind == "value" and name in copies:
        body = ['<text class="autograd-label"' + line[5:] if line.startswith("<text ")
                else line for line in body]
    elif kind == "value":
        texts = [i for i, line in enumerate(body) if line.startswith("<text ")]
        for rank, i in enumerate(reversed(texts)):
            cls = "autograd-grad" if rank == 0 else "autograd-data" if rank == 1 else (
                "autograd-label")
            body[i] = f'<text class="{cls}"' + body[i][5:]
    return result + body


def torch_graph_dot(torch_graph: dict[str, Any], rankdir: str = "LR") -> str:
    """torch's autograd graph (model["torch_graph"]) as DOT: one box per backward function
    (`MulBackward0`, `AccumulateGrad`), with the name of the engine node it computes."""
    dot = graphviz.Digraph("torch_autograd")
    dot.attr("graph", rankdir=check_rankdir(rankdir), nodesep="0.2", ranksep="0.3",
             bgcolor="white")
    dot.attr("node", shape="box", style="rounded", fontname=FONT, fontsize="11",
             height="0.3", margin="0.08,0.03")
    dot.attr("edge", arrowsize="0.6")
    def text(value: Any) -> str:  # a backslash starts a Graphviz escape: keep it literal
        return shorten(readable(" ".join(str(value or "").split()))).replace("\\", "\\\\")

    for node in torch_graph.get("nodes") or []:
        label = text(node.get("name"))
        if node.get("maps_to"):
            label += "\\n= " + text(node["maps_to"])  # Graphviz's centred line break
        dot.node(str(node["id"]), label=label)
    for edge in torch_graph.get("edges") or []:
        dot.edge(str(edge["source"]), str(edge["target"]))
    return dot.source


def render_torch_graph(torch_graph: dict[str, Any], rankdir: str = "LR",
                       renderer: str = "auto") -> str:
    """torch's autograd graph as SVG (no XML prolog). RenderError if no program runs."""
    output, _ = layout(torch_graph_dot(torch_graph, rankdir), renderer, "svg")
    text = output.decode("utf-8")
    return text[text.find("<svg"):]


@dataclass
class Rendered:
    """One layout of a model: the decorated SVG, the DOT it came from, who laid it out."""

    svg: str
    dot: str
    renderer: str


def render_svg(model: GraphModel, rankdir: str = "LR", renderer: str = "auto",
               timeout: float | None = None) -> Rendered:
    """The model laid out as decorated SVG. RenderError when the model is truncated (too
    many nodes to draw) or no layout program can run."""
    if model.get("truncated"):
        raise RenderError(f"{model.get('node_count')} nodes: too many to draw "
                          f"(raise the cap with --max-nodes N)")
    source = to_dot(model, rankdir)
    output, used = layout(source, renderer, "svg", timeout)
    return Rendered(decorate_svg(output.decode("utf-8"), model), source, used)


def save(model: GraphModel, path: str | Path, rankdir: str = "LR", renderer: str = "auto",
         svg: str | None = None) -> Path:
    """Write the graph to path: .svg, .png (through the same layout program's -Tpng) or
    .dot/.gv (the DOT source). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png", ".dot", ".gv"):
        raise ValueError(f"cannot save {path.name!r}: the file name must end in one of "
                         f".svg, .png, .dot, .gv (or .html from AutogradResult.save)")
    if model.get("truncated"):
        raise RenderError(f"{model.get('node_count')} nodes: too many to draw; raise the cap "
                          f"with --max-nodes N and run the cell again")
    source = to_dot(model, rankdir)
    if suffix in (".dot", ".gv"):
        path.write_text(source, encoding="utf-8")
    elif suffix == ".svg":
        if svg is None:
            output, _ = layout(source, renderer, "svg")
            svg = decorate_svg(output.decode("utf-8"), model)
        path.write_text('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + svg,
                        encoding="utf-8")
    else:
        try:
            output, _ = layout(source, renderer, "png")
        except RenderError as error:
            raise RenderError(f"cannot write PNG: {error}. Save as .svg instead, or use a "
                              f"renderer with PNG support (graphviz-pure has it)") from None
        path.write_bytes(output)
    return path


__all__ = ["RENDERERS", "LayoutTimeout", "RenderError", "Rendered", "available_renderers",
           "decorate_svg", "layout", "record_field", "render_svg", "save", "to_dot"]
