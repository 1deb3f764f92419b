"""Issue 17: big graphs drawn collapsed (micrograd_magics/collapse.py), through a real
IPython shell: the demo's MLP over 100 moons points, a 10**4-step loop, the box cap, the
payload bound, expanding and folding a box, and --collapse / --expand."""

from __future__ import annotations

import json
import random
import re

import pytest
from cells import DEMO_LOSS, LECTURE, LECTURE_GRADS, run_autograd
from IPython.core.error import UsageError
from test_engine_nn import make_moons

from engine.nn import MLP
from micrograd_magics.collapse import MAX_BOXES
from micrograd_magics.render import render_svg
from micrograd_magics.result import BUNDLE_BUDGET

DEMO = DEMO_LOSS
LOOP = "y = 1.0\nw = 0.5\nfor i in range(10**4): y = y * w + 0.1"


@pytest.fixture
def demo(ip):  # noqa: ANN001, ANN201
    """The demo's MLP(2, [16, 16, 1]) and its loss over 100 moons points, as one cell."""
    X, y = make_moons(100)
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    ip.run_cell("from engine import Value")
    ip.user_ns.update(X=X, y=y, model=model)
    return run_autograd(ip, DEMO), model, ip.user_ns


def boxes_of(model: dict) -> dict[str, dict]:
    return {n["name"]: n for n in model["nodes"]}


def boxes_of_id(model: dict) -> dict[str, dict]:
    return {n["id"]: n for n in model["nodes"]}


def replayed(model: dict) -> dict[str, float]:
    """Node id -> grad after every step, as the widget replays them."""
    grads = {n["id"]: 0.0 for n in model["nodes"]}
    for step in model["steps"]:
        for update in step["updates"]:
            grads[update["target"]] = update["after"]
    return grads


def test_demo_is_drawn_as_its_neurons(demo) -> None:  # noqa: ANN001
    result, model, ns = demo
    drawn = result.drawn_graph
    assert drawn["node_count"] > 60_000 and result.svg is not None
    assert result.graph["truncated"]  # the tables and .grads work as before
    boxes = boxes_of(drawn)
    paths = [f"model.layers[{k}].neurons[{j}]" for k, n in enumerate([16, 16, 1])
             for j in range(n)]
    assert [b for b in boxes if b.startswith("model.")] == paths
    for path in paths:
        box = boxes[path]
        assert box["collapsed"]["kind"] == "neuron" and box["collapsed"]["count"] == 100
        assert box["summary"].startswith("× 100 inputs")
    # the box shows its neuron's call on input 0: the numbers of that Value in the graph
    last = boxes["model.layers[2].neurons[0]"]
    assert last["data"] == ns["scores"][0].data and last["grad"] == ns["scores"][0].grad
    neuron = model.layers[0].neurons[3]
    grads = [p.grad for p in neuron.parameters()]
    summary = boxes["model.layers[0].neurons[3]"]["summary"]
    assert f"[{min(grads):.4f}, {max(grads):.4f}]" in summary
    # the sums: the loss over 100 points and the L2 term over 337 parameters
    losses = boxes["sum(losses)"]
    assert losses["collapsed"] == {"kind": "sum", "count": 100, "nodes": 400,
                                   "expandable": False}
    assert "Σ over 100 terms" in losses["summary"]
    reg = boxes["sum(p * p for p in model.parameters())"]
    assert reg["collapsed"]["count"] == 337 and "Σ over 337 terms" in reg["summary"]
    assert boxes["inputs"]["collapsed"]["count"] == 200  # 100 points, 2 coordinates each
    assert boxes["total"]["grad"] == 1.0 and boxes["total"]["data"] == ns["total"].data
    # every node of the graph is in exactly one box
    held = sum(b.get("collapsed", {}).get("nodes", 1) for b in drawn["nodes"])
    assert held == drawn["node_count"]
    # layer columns: the neurons of a layer side by side in the layout
    assert sorted(len(c) for c in drawn["columns"]) == [16, 16]


def test_demo_hover_and_steps_at_the_collapsed_level(demo) -> None:  # noqa: ANN001
    result, model, ns = demo
    drawn = result.drawn_graph
    boxes = boxes_of(drawn)
    explain = boxes["model.layers[0].neurons[3]"]["explain"]
    assert explain[0].startswith("dtotal/dmodel.layers[0].neurons[3] = "
                                 "dtotal/dmodel.layers[1].neurons[0] * "
                                 "dmodel.layers[1].neurons[0]/dmodel.layers[0].neurons[3]")
    assert any(line.startswith("  [0] ") for line in explain)  # per input
    # replaying the collapsed steps ends on the grads every box shows
    final = replayed(drawn)
    for node in drawn["nodes"]:
        assert final[node["id"]] == pytest.approx(node["grad"], rel=1e-12, abs=1e-15), node["name"]
    assert drawn["steps"][0]["seed"] and drawn["steps"][0]["node"] == boxes["total"]["id"]


def test_demo_payload_and_box_cap(demo) -> None:  # noqa: ANN001
    result, _, _ = demo
    bundle = result._repr_mimebundle_()
    assert len(json.dumps(bundle)) <= BUNDLE_BUDGET
    svg = bundle["image/svg+xml"]
    # no box is expanded: the only frames are the two hidden layers', to fold them
    assert re.findall(r'<g id="fold_(\w+)"', svg) == [f["id"] for f in result.drawn_graph["layers"]]
    assert len(result.drawn_graph["layers"]) == 2
    assert result.drawn_graph["collapsed"]["boxes"] <= MAX_BOXES
    assert "drawn collapsed: " in bundle["text/plain"]


def test_expand_one_neuron_in_place_and_fold(demo) -> None:  # noqa: ANN001
    result, model, ns = demo
    before = result.drawn_graph
    gid = boxes_of(before)["model.layers[1].neurons[3]"]["id"]
    result.expand("model.layers[1].neurons[3]")
    after = result.drawn_graph
    assert after["collapsed"]["expanded"] == [gid]
    assert gid not in {n["id"] for n in after["nodes"]}
    shown = boxes_of(after)
    neuron = model.layers[1].neurons[3]
    # the lecture's draw_dot(n(x)) view of its call on input 0: 16 weights, the bias, 16
    # products and 16 sums, the ReLU; their grads the scalar graph's
    for i in range(16):
        assert shown[f"w[{i}]"]["grad"] == neuron.w[i].grad
    assert shown["b"]["grad"] == neuron.b.grad and shown["b"]["leaf"]
    relu = [n for n in after["nodes"] if n["op"] == "ReLU"]
    assert len(relu) == 1 and relu[0]["grad"] == boxes_of(before)[
        "model.layers[1].neurons[3]"]["grad"]
    (frame,) = after["clusters"]
    assert frame["id"] == gid and len(frame["nodes"]) == 17 + 33
    assert f'id="fold_{gid}"' in result.svg
    assert after["collapsed"]["boxes"] <= MAX_BOXES
    final = replayed(after)  # the step-through still ends on every grad shown
    for node in after["nodes"]:
        assert final[node["id"]] == pytest.approx(node["grad"], rel=1e-12, abs=1e-15), node["name"]
    result.expand(gid)  # again: folded
    assert result.drawn_graph["nodes"] == before["nodes"]
    assert f'id="fold_{gid}"' not in result.svg
    # a first-layer neuron shows the data point it was called on, x[0] and x[1]
    result.expand("model.layers[0].neurons[5]")
    shown = boxes_of(result.drawn_graph)
    assert [shown[f"x[{i}]"]["data"] for i in range(2)] == [v.data for v in ns["inputs"][0]]
    assert shown["x[0]"]["grad"] == ns["inputs"][0][0].grad
    result.expand("model.layers[0].neurons[5]")
    with pytest.raises(ValueError, match="no box 'nope'"):
        result.expand("nope")
    with pytest.raises(ValueError, match="more than 200 to expand"):
        result.expand("sum(losses)")


def layer_order(svg: str, layer: str) -> list[int]:
    """The neuron numbers of a layer's boxes, top to bottom in the drawing."""
    found = []
    for group in re.finditer(r'<g id="[^"]+" class="node[^"]*"[^>]*>(.*?)</g>', svg, re.S):
        name = re.search(rf">{re.escape(layer)}\.neurons\[(\d+)\]<", group[1])
        if name:
            y = min(float(v) for v in re.findall(r' y="([-\d.]+)"', group[1]))
            found.append((y, int(name[1])))
    return [k for _, k in sorted(found)]


@pytest.mark.parametrize("renderer", ["dot", "graphviz-pure"])
def test_a_layers_neurons_stand_in_order(demo, renderer) -> None:  # noqa: ANN001
    result, _, _ = demo
    rendered = render_svg(result.drawn_graph, renderer=renderer)
    for layer in ("model.layers[0]", "model.layers[1]"):
        assert layer_order(rendered.svg, layer) == list(range(16)), (renderer, layer)


def test_a_layer_folds_into_one_box_and_unfolds(demo) -> None:  # noqa: ANN001
    result, model, _ = demo
    before = result.drawn_graph
    frame = next(f for f in before["layers"] if f["nodes"][0] == boxes_of(before)[
        "model.layers[0].neurons[0]"]["id"])
    assert len(frame["nodes"]) == 16 and frame["label"].startswith("model.layers[0] · 16 neurons")
    result.expand("model.layers[0].neurons[2]")  # an expanded neuron folds with its layer
    result.expand(frame["id"])  # what a click on the layer's frame sends
    folded = result.drawn_graph
    boxes = boxes_of(folded)
    assert not any(name.startswith("model.layers[0].") for name in boxes)
    layer = boxes["model.layers[0]"]
    assert layer["id"] == frame["id"] and layer["collapsed"]["kind"] == "layer"
    assert layer["collapsed"]["count"] == 16 and layer["collapsed"]["expandable"]
    assert layer["summary"].startswith("16 neurons × 100 inputs")
    grads = [p.grad for n in model.layers[0].neurons for p in n.parameters()]
    assert f"[{min(grads):.4f}, {max(grads):.4f}]" in layer["summary"]
    # the box shows neurons[0] on input 0, as its hover says, with each neuron's numbers
    assert layer["grad"] == before["nodes"][[n["id"] for n in before["nodes"]].index(
        frame["nodes"][0])]["grad"]
    assert any("16 neurons folded into one box" in line for line in layer["explain"])
    scores = [ln for ln in layer["explain"] if ln.startswith("  model.layers[0].neurons[")]
    assert len(scores) == 8  # the first eight neurons, then "… and 8 more"
    assert sum(n["collapsed"]["nodes"] for n in before["nodes"] if n["id"] in frame["nodes"]) \
        == layer["collapsed"]["nodes"]
    # one edge from the layer to each neuron it feeds; every node still in one box
    fed = [e["target"] for e in folded["edges"] if e["source"] == layer["id"]]
    assert sorted(fed) == sorted(boxes[f"model.layers[1].neurons[{j}]"]["id"] for j in range(16))
    held = sum(b.get("collapsed", {}).get("nodes", 1) for b in folded["nodes"])
    assert held == folded["node_count"]
    assert [f["label"].split(" ·")[0] for f in folded["layers"]] == ["model.layers[1]"]
    assert f'id="fold_{frame["id"]}"' not in result.svg
    final = replayed(folded)  # the step-through still ends on every grad shown
    for node in folded["nodes"]:
        assert final[node["id"]] == pytest.approx(node["grad"], rel=1e-12, abs=1e-15), node["name"]
    with pytest.raises(ValueError, match="is folded into model.layers\\[0\\]"):
        result.expand("model.layers[0].neurons[3]")
    result.expand("model.layers[0]")  # a click on the layer's box: its neurons again
    assert result.drawn_graph["nodes"] == before["nodes"]
    assert layer_order(result.svg, "model.layers[0]") == list(range(16))


def test_widget_message_expands_a_box(demo) -> None:  # noqa: ANN001
    result, _, _ = demo
    sent = []

    class Widget:  # the message handler only needs .send: what the kernel answers
        def send(self, content: dict) -> None:
            sent.append(content)

    gid = boxes_of(result.drawn_graph)["model.layers[0].neurons[0]"]["id"]
    result._on_widget_message(Widget(), {"kind": "expand", "node": gid})
    assert result.drawn_graph["collapsed"]["expanded"] == [gid] and not sent
    result._on_widget_message(Widget(), {"kind": "fold", "node": gid})
    assert result.drawn_graph["collapsed"]["expanded"] == []
    result._on_widget_message(Widget(), {"kind": "expand", "node": "g9999"})
    assert sent and sent[0]["kind"] == "error" and "no box" in sent[0]["text"]


def test_loop_rolls_up_into_one_block(ip) -> None:  # noqa: ANN001
    result = run_autograd(ip, LOOP)
    drawn = result.drawn_graph
    boxes = boxes_of(drawn)
    block = boxes["y#3 … y#10000"]
    assert block["collapsed"]["kind"] == "steps" and block["collapsed"]["count"] == 9_998
    assert block["summary"] == "× 9,998 steps"
    # the first step and the last one drawn as scalars, the leaves too
    assert {"y#1", "w", "y#2", "y"} <= set(boxes)
    assert boxes["y"]["grad"] == 1.0 and boxes["w"]["leaf"]
    assert boxes["w"]["grad"] == result.grads["w"]
    assert drawn["collapsed"]["boxes"] < 20
    final = replayed(drawn)
    assert final[boxes["w"]["id"]] == pytest.approx(result.grads["w"], rel=1e-12)
    assert len(json.dumps(result._repr_mimebundle_())) <= BUNDLE_BUDGET


PREDICTIONS = """\
import random
rng = random.Random(0)
data = [(rng.uniform(-2, 2), rng.uniform(-1, 1)) for _ in range(60)]
w1 = 0.3
w2 = -0.5
b = 0.1
loss = 0.0
for x, y in data:
    pred = tanh(w1*x + w2*x**2 + b)
    loss = loss + (pred - y)**2"""


def test_named_boxes_count_their_unnamed_work_on_the_edges_into_them(ip) -> None:  # noqa: ANN001
    result = run_autograd(ip, PREDICTIONS)
    drawn = result.drawn_graph
    boxes = boxes_of(drawn)
    # pred = tanh(w1*x + w2*x**2 + b): w1*x, the first +, the second + lie between w1
    # and pred's tanh; w2*x**2 and the two + between w2 and it; the last + after b
    pred = boxes["pred#1"]
    assert pred["collapsed"]["kind"] == "named" and pred["collapsed"]["nodes"] == 5
    assert pred["summary"] == ""  # the count is on the edges, not on the box
    counts = {boxes_of_id(drawn)[e["source"]]["name"]: e["count"] for e in drawn["edges"]
              if e["target"] == pred["id"]}
    assert counts == {"w1": 3, "w2": 3, "b": 1}
    assert any("4 unnamed nodes" in line for line in pred["explain"])
    assert pred["grad"] == pytest.approx(result.grads["pred#1"], rel=1e-12)
    work = re.findall(r'<g id="[^"]*" class="edge autograd(?:-|&#45;)work"[^>]*>.*?>(\d+) nodes?<',
                      result.svg, re.S)
    assert sorted(set(map(int, work))) == [1, 3]


def test_any_big_graph_stays_under_the_box_cap(ip) -> None:  # noqa: ANN001
    # 1,500 different names: nothing to roll up, so the middle folds into one block
    lines = ["a = 1.5", "v0 = a * 2"] + [f"v{i} = v{i - 1} * a + {i}" for i in range(1, 1500)]
    result = run_autograd(ip, "\n".join(lines))
    drawn = result.drawn_graph
    assert drawn["collapsed"]["boxes"] <= MAX_BOXES
    more = [n for n in drawn["nodes"] if (n.get("collapsed") or {}).get("kind") == "more"]
    assert len(more) == 1 and more[0]["name"].endswith("more nodes")
    held = sum(n.get("collapsed", {}).get("nodes", 1) for n in drawn["nodes"])
    assert held == drawn["node_count"]
    # a layer of 700 neurons folds into one box
    random.seed(0)
    ip.user_ns["wide"] = MLP(2, [700, 1])
    result = run_autograd(ip, "x = [0.5, -1.0]\nL = wide(x)")
    drawn = result.drawn_graph
    assert drawn["collapsed"]["boxes"] <= MAX_BOXES
    layer = boxes_of(drawn)["wide.layers[0]"]
    assert layer["collapsed"]["kind"] == "layer" and layer["collapsed"]["count"] == 700
    assert not layer["collapsed"]["expandable"]  # 700 neuron boxes would pass the cap
    with pytest.raises(ValueError, match="700 neurons: drawn one by one the drawing would "
                                         "have 7.. boxes, more than 600"):
        result.expand("wide.layers[0]")


def test_collapse_and_expand_options(ip) -> None:  # noqa: ANN001
    result = run_autograd(ip, LECTURE, "--collapse")
    drawn = result.drawn_graph
    assert drawn["collapsed"] is not None and result.grads == LECTURE_GRADS
    # nothing to group in the lecture: its seven Values, the same grads
    assert {n["name"]: n["grad"] for n in drawn["nodes"]} == LECTURE_GRADS
    ip.user_ns["model"] = MLP(2, [16, 16, 1])
    result = run_autograd(ip, "x = [0.5, -1.0]\nL = model(x)", "--expand")
    assert result.collapsed is None and result.graph["truncated"] and result.svg is None
    with pytest.raises(UsageError, match="exclude each other"):
        ip.run_cell_magic("autograd", "--collapse --expand", LECTURE)


def test_one_mlp_call_names_neurons_by_path(ip) -> None:  # noqa: ANN001
    random.seed(1)
    ip.user_ns["net"] = MLP(3, [4, 4, 1])
    result = run_autograd(ip, "x = [2.0, 3.0, -1.0]\nL = (net(x) - 1.0)**2", "--collapse")
    boxes = boxes_of(result.drawn_graph)
    assert "net.layers[0].neurons[3]" in boxes and "net.layers[2].neurons[0]" in boxes
    assert boxes["net.layers[2].neurons[0]"]["collapsed"]["count"] == 1
    assert not boxes["net.layers[2].neurons[0]"]["summary"].startswith("×")
    assert boxes["x[0]"]["grad"] == result.grads["x[0]"]  # the named inputs stay Values


def test_a_training_loop_keeps_only_the_last_steps_neuron_calls(ip):
    """The call log behind the collapsed drawing holds the calls since the last-but-one
    backward(), not every step's: each call holds its output, and so its whole graph."""
    import gc

    from engine import Value

    random.seed(0)
    X, y = make_moons(10)
    ip.user_ns.update(X=X, y=y, model=MLP(2, [4, 1]))
    cell = ("for k in range(30):\n"
            "    scores = [model(x) for x in X]\n"
            "    loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores))\n"
            "    model.zero_grad()\n"
            "    loss.backward()\n"
            "    for p in model.parameters():\n"
            "        p.data -= 0.01 * p.grad\n")
    gc.collect()
    before = sum(type(o) is Value for o in gc.get_objects())  # earlier tests' results too
    result = run_autograd(ip, cell, "loss --collapse")
    gc.collect()
    alive = sum(type(o) is Value for o in gc.get_objects()) - before
    per_step = result.graph["node_count"]
    assert per_step > 300
    assert alive < 4 * per_step, (alive, per_step)  # this step's graph and the one before
    assert result.drawn_graph["collapsed"]["boxes"] > 0
