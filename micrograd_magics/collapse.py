"""Big graphs, collapsed: engine graph + the cell's neuron calls -> a plain model of boxes.

Above --max-nodes (or with --collapse) the cell's graph is drawn as groups instead of
scalars, found in this order:

- every `engine.nn.Neuron` whose calls made nodes of the graph is one box, labelled by its
  path (`model.layers[0].neurons[3]`), with the numbers of its first call and its
  parameters' grads as a range; called on many inputs it is a stack (`× 100 inputs`); the
  neurons of a layer stand in one column (`engine.nn.observing_calls` tells which calls
  there were; the nodes of a call are the graph between its inputs, its parameters and its
  output);
- the unnamed leaves those calls read (the data points) are one box `inputs`;
- a chain of unnamed `+` (`sum(losses)`, a dot product) is one box `Σ over 100 terms`,
  with the small unnamed work of each term folded in;
- what is left, when it is still too much, goes by the cell's names: each named Value is a
  box that holds the unnamed work behind it, and a name reassigned in a loop (`y#1 … y`)
  rolls up into its first steps, one block `× 9,997 steps`, and its last step.

The result is a `CollapsedView`, kept in the kernel: its `model()` is a graph model of the
same shape as `graph.build_model`'s (nodes, edges, steps: render.py and the widget read it
as any other), and `toggle(id)` expands a box into its scalar nodes in place, or folds it.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import ops
from engine.autodiff import contributions
from engine.nn import MLP, Layer, Module, Neuron
from engine.value import Value, constant
from micrograd_magics.graph import (
    MAX_DERIVED_NAME,
    GraphModel,
    derived_name,
    format_number,
    in_formula,
    jsonable,
    op_symbol,
    readable,
)

MAX_BOXES = 600
"""No drawing has more boxes than this (a Value record and an op ellipse are one each)."""
COLLAPSE_MAX = 250_000
"""Above this many nodes the cell shows the table, as without collapsing (unless
--collapse): grouping and the drawing's model cost about 12 µs a node here (a loop of
10**5 steps, 200,001 nodes: +2.5 s), so a loop of 10**6 steps would wait half a minute."""
CALLS_KEPT = 20_000
"""Neuron calls remembered during a cell (the newest): a training loop of many steps makes
many graphs, and only the root's is drawn; holding every call would keep them all alive."""
SUM_MIN = 8
"""A chain of at least this many unnamed `+` is drawn as one Σ box."""
ROLL_MIN = 6
"""A name with at least this many versions (`y#1 … y#5, y`) rolls up into a block."""
WORK_COUNTED = 5_000
"""A named box of at most this many nodes gets the counts of its unnamed work on the edges
into it (a bigger one says how many it holds)."""
EXPAND_MAX = 200
"""Scalar nodes a box shows when expanded; a bigger group is not expanded."""
COLUMN_INPUTS = 4
"""An expanded neuron of at most this many inputs keeps its output in its layer's column;
a longer chain held there made Graphviz's layout take more than 10 s."""
SHOWN_INPUTS = 8
"""Per-input numbers listed in a stack's hover box (the first ones, then the last)."""


class CallLog:
    """The observer for `engine.nn.observing_calls`: keeps the newest Neuron calls (and
    the Layer and MLP calls, for the paths). Appending a tuple is all a call costs.

    It also observes backward() (engine.observing_backward): a loop's step k draws the
    graph its forward made since step k-1's backward, so at each backward the calls made
    before the one before are dropped. Holding them would keep every step's graph alive,
    and each garbage collection of a training loop would walk them all."""

    def __init__(self, keep: int = CALLS_KEPT) -> None:
        self.keep = keep
        self.previous: deque[tuple[Module, Sequence, object]] = deque()
        self.current: deque[tuple[Module, Sequence, object]] = deque(maxlen=keep)

    def __call__(self, module: Module, x: Sequence, out: object) -> None:
        self.current.append((module, x, out))

    def backward_seen(self, root: object = None, order: object = None) -> None:
        # in place: learner_calls' wrappers hold current's append
        self.previous = deque(self.current)
        self.current.clear()

    @property
    def calls(self) -> list[tuple[Module, Sequence, object]]:
        """The calls kept, oldest first (at most `keep` of them)."""
        return (list(self.previous) + list(self.current))[-self.keep:]


def natural(name: str) -> list[Any]:
    """A sort key that reads the numbers in a name as numbers: neurons[2] before
    neurons[10]."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def wanted(node_count: int, options: Any) -> bool:
    """Whether the cell's graph is drawn collapsed: above --max-nodes unless --expand,
    always with --collapse."""
    mode = getattr(options, "collapse", "auto")
    if mode == "expand":
        return False
    return mode == "collapse" or options.max_nodes < node_count <= COLLAPSE_MAX


# --- the groups ----------------------------------------------------------------------------

@dataclass(eq=False)
class Group:
    """Scalar nodes drawn as one box."""

    kind: str  # neuron, layer, inputs, sum, named, steps, more
    name: str
    out: Value  # the node whose numbers the box shows
    nodes: list[Value] = field(default_factory=list)
    count: int = 1  # calls, terms, steps
    calls: list[tuple[Sequence, Value, list[Value]]] = field(default_factory=list)
    params: list[tuple[str, Value]] = field(default_factory=list)
    outs: list[Value] = field(default_factory=list)  # per input (stack) or per term (sum)
    layer: str = ""
    gid: str = ""
    members: list[Group] = field(default_factory=list)  # a layer's neurons


def module_paths(ns: dict[str, Any], calls: Iterable[tuple[Module, Sequence, object]]
                 ) -> tuple[dict[int, str], dict[int, str]]:
    """id(neuron) -> its path (`model.layers[0].neurons[3]`) and id(neuron) -> its layer's
    path: through the user's names first (an MLP's path beats a Layer's or a Neuron's own
    name), then through the MLP and Layer calls seen (`layers[0].neurons[3]`)."""
    paths: dict[int, str] = {}
    layers: dict[int, str] = {}

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, MLP):
            for k, layer in enumerate(obj.layers):
                walk(layer, f"{path}.layers[{k}]" if path else f"layers[{k}]")
        elif isinstance(obj, Layer):
            for j, neuron in enumerate(obj.neurons):
                layers.setdefault(id(neuron), path)
                walk(neuron, f"{path}.neurons[{j}]" if path else f"neurons[{j}]")
        elif isinstance(obj, Neuron):
            paths.setdefault(id(obj), path)

    named = [(k, v) for k, v in ns.items() if isinstance(v, Module) and not k.startswith("_")]
    for rank in (MLP, Layer, Neuron):
        for name, obj in named:
            if type(obj) is rank or (rank is Neuron and isinstance(obj, Neuron)):
                walk(obj, name)
    seen: set[int] = set()
    for rank in (MLP, Layer):
        for module, _, _ in calls:
            if isinstance(module, rank) and id(module) not in seen:
                seen.add(id(module))
                walk(module, "")
    return paths, layers


class Grouping:
    """Finds the groups of one graph (see the module docstring)."""

    def __init__(self, root: Value, order: list[Value], names: dict[int, str],
                 calls: Iterable[tuple[Module, Sequence, object]], ns: dict[str, Any],
                 paths: tuple[dict[int, str], dict[int, str]] | None = None) -> None:
        """paths: id(neuron) -> path and -> its layer's path, when the caller knows them
        (a learner's own classes, learner_calls.py); else `module_paths` finds them."""
        self.root, self.order, self.names = root, order, names
        self.pos = {id(n): i for i, n in enumerate(order)}
        parents = [id(n._a) for n in order if n._a is not None]
        parents += [id(n._b) for n in order if n._b is not None]
        self.users = Counter(parents)
        self.owner: dict[int, Group] = {}
        self.groups: list[Group] = []
        calls = list(calls)
        self._neurons(calls, ns, paths)
        self._sums()

    def name_of(self, node: Value) -> str:
        return self.names.get(id(node), node.label)

    def _claim(self, group: Group, nodes: Iterable[Value]) -> None:
        nodes = list(nodes)
        self.owner.update(dict.fromkeys(map(id, nodes), group))
        group.nodes.extend(nodes)

    def _neurons(self, calls: list[tuple[Module, Sequence, object]], ns: dict[str, Any],
                 known: tuple[dict[int, str], dict[int, str]] | None = None) -> None:
        paths, layers = known or module_paths(ns, calls)
        by_neuron: dict[int, Group] = {}
        inputs: list[Value] = []
        for module, x, out in calls:
            if not isinstance(module, Neuron) or id(out) not in self.pos or id(out) in self.owner:
                continue
            group = by_neuron.get(id(module))
            if group is None:
                path = paths.get(id(module)) or f"neuron#{len(by_neuron)}"
                group = Group("neuron", path, out, params=module.named_parameters(),
                              layer=layers.get(id(module), ""), count=0)
                by_neuron[id(module)] = group
                self.groups.append(group)
                self._claim(group, [p for _, p in group.params if id(p) in self.pos])
            made = self._call_nodes(x, module, out)
            if made is None:
                continue
            self._claim(group, made)
            group.calls.append((x, out, made))
            group.outs.append(out)
            group.count += 1
            inputs.extend(v for v in x if type(v) is Value)
        # the unnamed leaves the neurons read (the data points) are one box
        points = [v for v in dict.fromkeys(inputs) if id(v) in self.pos
                  and id(v) not in self.owner and not v.label and not v._op]
        if len(points) > 1:
            group = Group("inputs", "inputs", points[0], outs=points, count=len(points))
            self._claim(group, points)
            self.groups.append(group)

    def _call_nodes(self, x: Sequence, module: Neuron, out: Value) -> list[Value] | None:
        """The nodes one call made: from out back to its inputs and parameters."""
        stop = {id(v) for v in x} | {id(p) for p in module.parameters()}
        limit = 4 * len(module.parameters()) + 8
        made, todo, seen = [], [out], set()
        while todo:
            node = todo.pop()
            if id(node) in stop or id(node) in seen:
                continue
            if id(node) in self.owner or len(made) > limit:
                return None  # not a plain call (its output was made elsewhere)
            seen.add(id(node))
            made.append(node)
            if node._a is not None:
                todo.append(node._a)
                if node._b is not None:
                    todo.append(node._b)
        made.sort(key=lambda n: self.pos[id(n)])
        return made

    def _sums(self) -> None:
        owner, users = self.owner, self.users
        length: dict[int, int] = {}
        below: dict[int, Value] = {}  # link -> the link it continues
        for node in self.order:
            op = node._op
            if id(node) in owner or (op is not ops.ADD and op is not ops.ADD_K):
                continue
            a = node._a
            if (op is ops.ADD and id(a) in length and users[id(a)] == 1 and not a.label):
                length[id(node)] = length[id(a)] + 1
                below[id(node)] = a
            else:
                length[id(node)] = 1
        continued = {id(a) for a in below.values()}
        for node in self.order:
            if length.get(id(node), 0) < SUM_MIN or id(node) in continued:
                continue
            chain = [node]
            while id(chain[-1]) in below:
                chain.append(below[id(chain[-1])])
            chain.reverse()
            terms = [chain[0]._a] + ([chain[0]._b] if chain[0]._b is not None else [])
            terms += [link._b for link in chain[1:]]
            name = self.name_of(node) or f"Σ over {len(terms)} terms"
            group = Group("sum", name, node, outs=terms, count=len(terms))
            self._claim(group, chain)
            for term in terms:
                self._claim(group, self._private(term))
            self.groups.append(group)

    def _private(self, start: Value) -> list[Value]:
        """start and what only it uses, unnamed and not in a group: a term's own work."""
        found, todo = [], [start]
        while todo:
            node = todo.pop()
            if (id(node) in self.owner or node.label or self.users[id(node)] != 1
                    or node in found):
                continue
            found.append(node)
            if node._a is not None:
                todo.append(node._a)
                if node._b is not None:
                    todo.append(node._b)
        return found

    def by_names(self) -> None:
        """What no group holds, by the cell's names: each named Value (and the root) with
        the unnamed work behind it; a name's many versions rolled up. (Plain lists until
        the roll-up: a loop of 10**5 steps names 10**5 Values.)"""
        owner, pos, root = self.owner, self.pos, self.root
        heads: list[Value] = []
        members: list[list[Value]] = []
        taken: dict[int, int] = {}
        for node in self.order:
            if not (node.label or node is root) or id(node) in owner:
                continue
            k = len(heads)
            heads.append(node)
            taken[id(node)] = k
            mine = [node]
            todo = [node._a, node._b]
            while todo:
                n = todo.pop()
                if n is None or n.label:
                    continue
                i = id(n)
                if i in taken or i in owner:
                    continue
                taken[i] = k
                mine.append(n)
                if n._a is not None:
                    todo.append(n._a)
                    todo.append(n._b)
            members.append(mine)
        versions: dict[str, list[int]] = {}
        for k, head in enumerate(heads):
            versions.setdefault(head.label, []).append(k)
        rolled: set[int] = set()
        for ks in versions.values():
            if len(ks) < ROLL_MIN:
                continue
            middle = ks[2:-1]
            first, last = heads[middle[0]], heads[middle[-1]]
            block = Group("steps", f"{self.name_of(first)} … {self.name_of(last)}", last,
                          count=len(middle), outs=[heads[k] for k in middle])
            nodes = [n for k in middle for n in members[k]]
            if len(nodes) <= EXPAND_MAX:  # graph order for its expansion; 10**5 steps have none
                nodes.sort(key=lambda n: pos[id(n)])
            self._claim(block, nodes)
            self.groups.append(block)
            rolled.update(middle)
        for k, head in enumerate(heads):
            if k not in rolled:
                group = Group("named", self.name_of(head) or "root", head)
                self._claim(group, sorted(members[k], key=lambda n: pos[id(n)]))
                self.groups.append(group)

    def loose(self) -> list[Value]:
        """The nodes no group holds, in graph order."""
        return [n for n in self.order if id(n) not in self.owner]


def release_small(grouping: Grouping, budget: int) -> list[Value]:
    """Named groups of a few nodes (a leaf, one loop step) drawn as their scalar nodes
    again, smallest first, while the drawing stays within budget boxes. Returns the loose
    nodes."""
    loose = grouping.loose()
    used = box_count(grouping.groups, loose)
    for group in sorted((g for g in grouping.groups if g.kind == "named"),
                        key=lambda g: len(g.nodes)):
        cost = len(group.nodes) + sum(1 for n in group.nodes if n._op) - 1
        if len(group.nodes) > 4 or used + cost > budget:
            break
        used += cost
        grouping.groups.remove(group)
        for node in group.nodes:
            del grouping.owner[id(node)]
    return grouping.loose()


def layer_groups(grouping: Grouping) -> list[Group]:
    """One box for each layer of two or more neuron boxes, holding them (`members`, in the
    order of their first call: neurons[0] first), so a layer folds into it and unfolds
    again without grouping anew."""
    layers: dict[str, Group] = {}
    for group in grouping.groups:
        if group.kind != "neuron" or not group.layer:
            continue
        layer = layers.get(group.layer)
        if layer is None:
            layer = layers[group.layer] = Group("layer", group.layer, group.out, count=0)
        layer.members.append(group)
        layer.count += 1
        layer.outs.append(group.out)
        layer.params.extend((f"{group.name}.{k}", p) for k, p in group.params)
        layer.calls.extend(group.calls)
        layer.nodes.extend(group.nodes)
    return [layer for layer in layers.values() if layer.count > 1]


def fold_layer(groups: list[Group], layer: Group) -> list[Group]:
    """groups with the layer's neurons replaced by the layer's box."""
    members = {id(g) for g in layer.members}
    folded = [g for g in groups if id(g) not in members]
    return folded + [layer] if len(folded) < len(groups) else folded


def unfold_layer(groups: list[Group], layer: Group) -> list[Group]:
    """groups with the layer's box replaced by its neurons."""
    return [g for g in groups if g is not layer] + layer.members


def fold_middle(grouping: Grouping, loose: list[Value], budget: int) -> list[Value]:
    """The last resort under the cap: keep the first and last boxes in graph order, one
    block `… N more nodes` for the rest. Returns the loose nodes still drawn."""
    pos = grouping.pos
    units: list[tuple[int, int, Any]] = sorted(
        [(pos[id(g.out)], 1, g) for g in grouping.groups]
        + [(pos[id(n)], 2 if n._op else 1, n) for n in loose], key=lambda u: u[0])
    head, tail, used = [], [], 0
    for unit in units:
        if used + unit[1] > budget // 2 - 1:
            break
        head.append(unit)
        used += unit[1]
    for unit in reversed(units[len(head):]):
        if used + unit[1] > budget - 2:
            break
        tail.append(unit)
        used += unit[1]
    middle = units[len(head):len(units) - len(tail)]
    if not middle:
        return loose
    last = max((u[2] if isinstance(u[2], Value) else u[2].out for u in middle),
               key=lambda n: pos[id(n)])
    block = Group("more", "", last)
    for _, _, unit in middle:
        grouping._claim(block, [unit] if isinstance(unit, Value) else unit.nodes)
    block.count = len(block.nodes)
    block.name = f"… {block.count:,} more nodes"
    middle_groups = {id(u[2]) for u in middle if not isinstance(u[2], Value)}
    grouping.groups = [g for g in grouping.groups if id(g) not in middle_groups] + [block]
    return [u[2] for u in head + tail if isinstance(u[2], Value)]


def box_count(groups: list[Group], loose: list[Value]) -> int:
    return len(groups) + len(loose) + sum(1 for n in loose if n._op)


# --- the view: groups -> model, expanded in place on request -------------------------------

class Links:
    """The links (node, parent) from one box (`source`) into another (`target`): those
    whose parent is the node a box can show (`outs`: it gets a share), the ids of the
    neurons' parameters they read (`hidden`: no edge is drawn for those), and how many
    are plain edges."""

    __slots__ = ("source", "target", "links", "outs", "hidden", "plain")

    def __init__(self, source: object, target: object) -> None:
        self.source, self.target = source, target
        self.links: list[tuple[Value, Value]] = []
        self.outs: list[tuple[Value, Value]] = []
        self.hidden: set[int] = set()
        self.plain = 0

    def add(self, node: Value, parent: Value, is_out: bool, is_hidden: bool) -> None:
        self.links.append((node, parent))
        if is_out:
            self.outs.append((node, parent))
        if is_hidden:
            self.hidden.add(id(parent))
        else:
            self.plain += 1


class CollapsedView:
    """The collapsed drawing of one graph, kept in the kernel so a box can be expanded.

    `model()` is plain data (graph.build_model's shape, plus "collapsed" on each box and
    "clusters"/"columns" for the layout); engine objects stay here.
    """

    def __init__(self, root: Value, order: list[Value], grouping: Grouping,
                 loose: list[Value], precision: int, layers: Sequence[Group] = ()) -> None:
        self.root, self.order, self.precision = root, order, precision
        self.grouping = grouping
        self.groups = grouping.groups
        self.pos = grouping.pos
        self.loose = loose
        # the layers that can fold or unfold: those the cap did not fold into "… more"
        drawn = {id(g) for g in self.groups}
        self.layers = [layer for layer in layers if id(layer) in drawn
                       or any(id(m) in drawn for m in layer.members)]
        boxes = [g for g in self.groups if g.kind != "layer"]
        boxes += [m for layer in self.layers if id(layer) in drawn for m in layer.members]
        for k, group in enumerate(sorted(boxes, key=lambda g: self.pos[id(g.out)])):
            group.gid = f"g{k}"
        for k, layer in enumerate(self.layers):
            layer.gid = f"gl{k}"
        self.by_gid = {g.gid: g for g in boxes + self.layers}
        self._base, self._links = self._links_between(boxes)
        self.expanded: set[str] = set()
        self.root_name = in_formula(grouping.name_of(root) or "root")
        self.expand_seconds = 0.0
        self.then: dict[int, float] = {}  # id(leaf) -> the value it had at backward()
        self.engine = ""  # the learner's Value class the graph was mirrored from (--engine)
        self.notes: dict[str, list[str]] = {}  # drawn id -> lines its hover adds
        self.shown_names: dict[int, str] = {}  # id(node) -> the name it is drawn with, no label

    def fmt(self, x: float) -> str:
        return format_number(jsonable(x), self.precision)

    def _links_between(self, boxes: list[Group]
                       ) -> tuple[dict[int, Group], dict[tuple[int, int], Links]]:
        """The boxes as finely cut as the drawing can be (every neuron its own box, each
        loose node its own): id(node) -> its box, and the links (node, parent) from one
        box into another, by the pair of boxes, in graph order. Only links make edges and
        shares between boxes, and a model built after a click reads the pairs instead of
        every node. (Expanding a box cuts it finer: see model.)"""
        base: dict[int, Group] = {}
        for group in boxes:
            base.update(dict.fromkeys(map(id, group.nodes), group))
        outs = {id(g.out) for g in boxes} | {id(n) for n in self.loose}
        hidden = {id(p) for g in boxes if g.kind == "neuron" for _, p in g.params}
        links: dict[tuple[int, int], Links] = {}
        for node in self.order:
            a = node._a
            if a is None:
                continue
            mine = base.get(id(node), node)
            for parent in (a,) if node._b is None else (a, node._b):
                theirs = base.get(id(parent), parent)
                if theirs is mine:
                    continue
                key = (id(theirs), id(mine))
                link = links.get(key)
                if link is None:
                    link = links[key] = Links(theirs, mine)
                link.add(node, parent, id(parent) in outs, id(parent) in hidden)
        return base, links

    def boxes(self, model: GraphModel | None = None) -> int:
        model = model or self.model()
        return len(model["nodes"]) + sum(1 for n in model["nodes"] if n.get("op"))

    def toggle(self, gid: str) -> None:
        """Expand the box gid into its scalar nodes, or fold it back; a layer's box unfolds
        into its neurons, and a layer's frame (its id) folds them into one box again.
        ValueError, saying why, when the box cannot be expanded."""
        if gid in self.expanded:
            self.expanded.discard(gid)
            return
        group = self.by_gid.get(gid)
        if group is None:
            raise ValueError(f"no box {gid!r} in the collapsed drawing")
        folded_in = next((layer for layer in self.layers if group in layer.members
                          and layer in self.groups), None)
        if folded_in is not None:
            raise ValueError(f"{group.name} is folded into {folded_in.name}: unfold the "
                             f"layer first (click its box, or expand({folded_in.name!r}))")
        if group.kind == "layer":
            self._toggle_layer(group)
        elif not self._shown_nodes(group):
            raise ValueError(f"{group.name} holds {len(group.nodes):,} nodes: more than "
                             f"{EXPAND_MAX} to expand in place")
        else:
            self.expanded.add(gid)

    def _toggle_layer(self, layer: Group) -> None:
        if layer not in self.groups:  # its neurons are drawn: fold them
            self.expanded.difference_update(m.gid for m in layer.members)
            self.groups = self.grouping.groups = fold_layer(self.groups, layer)
            return
        boxes = self.count_boxes() - 1 + len(layer.members)
        if boxes > MAX_BOXES:
            raise ValueError(f"{layer.name} has {layer.count:,} neurons: drawn one by one the "
                             f"drawing would have {boxes:,} boxes, more than {MAX_BOXES}")
        self.groups = self.grouping.groups = unfold_layer(self.groups, layer)

    def count_boxes(self) -> int:
        """The boxes the drawing has now, without building its model."""
        scalar = {id(n): n for n in self.loose}
        for gid in self.expanded:
            scalar.update((id(n), n) for n in self._shown_nodes(self.by_gid[gid]))
        drawn = sum(1 for g in self.groups if g.gid not in self.expanded)
        return drawn + len(scalar) + sum(1 for n in scalar.values() if n._op)

    def _shown_nodes(self, group: Group) -> list[Value]:
        """The scalar nodes an expanded group draws: a neuron's first call and its
        parameters (the lecture's `draw_dot(n(x))`), else all of them when few enough."""
        if group.kind == "neuron" and group.calls:
            x, out, made = group.calls[0]
            owner = self.grouping.owner
            points = [v for v in x if type(v) is Value and getattr(
                owner.get(id(v)), "kind", "") == "inputs"]
            nodes = points + [p for _, p in group.params if id(p) in self.pos] + made
        else:
            nodes = group.nodes
        return nodes if len(nodes) <= EXPAND_MAX else []

    # --- building the model ---

    def model(self) -> GraphModel:
        started = time.perf_counter()
        unit: dict[int, str] = {}  # id(node) -> the id of the box it is drawn in
        for group in self.groups:
            unit.update(dict.fromkeys(map(id, group.nodes), group.gid))
        scalar: list[Value] = list(self.loose)
        clusters = []
        for gid in sorted(self.expanded, key=lambda g: self.pos[id(self.by_gid[g].out)]):
            group = self.by_gid[gid]
            shown = self._shown_nodes(group)
            scalar.extend(shown)
            clusters.append({"id": gid, "label": self._cluster_label(group),
                             "nodes": [f"n{self.pos[id(n)]}" for n in shown]})
        for node in scalar:
            unit[id(node)] = f"n{self.pos[id(node)]}"
        scalar.sort(key=lambda n: self.pos[id(n)])
        drawn_groups = [g for g in self.groups if g.gid not in self.expanded]
        records: dict[str, dict[str, Any]] = {}
        for group in drawn_groups:
            records[group.gid] = self._group_record(group)
        # inside an expanded neuron its parameters read as in its code: w[0], b
        params = {id(p): k for g in self.groups if g.gid in self.expanded
                  for k, p in g.params}
        params.update(self.shown_names)
        for gid in self.expanded:  # and the data point it was called on: x[0], x[1]
            if self.by_gid[gid].calls:
                x = self.by_gid[gid].calls[0][0]
                params.update((id(v), f"x[{i}]") for i, v in enumerate(x) if type(v) is Value)
        for node in scalar:
            records[unit[id(node)]] = self._scalar_record(node, records, unit, params)
        framed = {n for c in clusters for n in c["nodes"]}
        points = {id(v) for gid in self.expanded for v in self.by_gid[gid].calls[0][0]
                  if self.by_gid[gid].calls and type(v) is Value
                  and getattr(self.grouping.owner.get(id(v)), "kind", "") == "inputs"}
        # a folded neuron's parameters read elsewhere (the L2 term's p*p) are not drawn
        # as edges: one from every neuron to the regulariser would cross the whole drawing
        link_hidden = {id(p) for g in self.groups if g.kind in ("neuron", "layer")
                       for _, p in g.params}
        readers: dict[str, set[int]] = {}
        edges: list[dict[str, str]] = []
        pairs: set[tuple[str, str]] = set()
        # the node each box shows: its grad is made of the shares of the boxes using it
        shown = {id(self.by_gid[rid].out) if rid[0] == "g" else id(self.order[r["position"]]):
                 rid for rid, r in records.items()}
        made: dict[str, dict[str, list[float]]] = {}

        def share(node: Value, parent: Value, rid: str, target: str) -> None:
            for p, local, contribution in contributions(node):
                if p is parent:
                    total = made.setdefault(rid, {}).setdefault(target, [0.0, 0.0])
                    total[0] = local
                    total[1] += contribution
                    return

        def edge(source: str, target: str) -> None:
            if target[0] == "n" or (source, target) not in pairs:  # x * x: two edges
                pairs.add((source, target))
                edges.append({"source": source, "target": target})

        # a box expanded, and the inputs it reads, are cut finer than the links' boxes:
        # their links one by one, and the links inside an expanded box
        cut = {id(self.by_gid[gid]) for gid in self.expanded}
        if cut:
            cut |= {id(g) for g in self.groups if g.kind == "inputs"}
        one_by_one: list[tuple[Value, Value]] = []
        for link in self._links.values():
            if id(link.source) in cut or id(link.target) in cut:
                one_by_one.extend(link.links)
        for gid in self.expanded:
            group = self.by_gid[gid]
            for node in group.nodes:
                for parent in node._prev:
                    if self._base.get(id(parent)) is group:
                        one_by_one.append((node, parent))
        unit_of, shown_by = unit.get, shown.get
        for node, parent in one_by_one:
            pid = id(parent)
            target, source = unit_of(id(node)), unit_of(pid)
            if source == target:
                continue
            rid = shown_by(pid)
            if rid is not None:
                share(node, parent, rid, target)
            if source not in records or target not in records:
                continue
            if pid in link_hidden and target not in framed:
                readers.setdefault(target, set()).add(pid)
                continue
            if pid in points and target not in framed:
                source = self.grouping.owner[pid].gid  # the rest read the inputs box
            edge(source, target)
        # the other pairs of boxes: each link of a pair runs between the same two boxes
        for link in self._links.values():
            if id(link.source) in cut or id(link.target) in cut:
                continue
            source, target = unit_of(id(link.links[0][1])), unit_of(id(link.links[0][0]))
            if source == target:  # two neurons of a folded layer
                continue
            for node, parent in link.outs:
                rid = shown_by(id(parent))
                if rid is not None:
                    share(node, parent, rid, target)
            if source not in records or target not in records:
                continue
            if link.hidden:
                readers.setdefault(target, set()).update(link.hidden)
            for _ in range(link.plain if target[0] == "n" else min(link.plain, 1)):
                edge(source, target)
        for edge in edges:
            records[edge["target"]]["parents"].append(edge["source"])
        self._count_work(edges, unit)
        for target, read in readers.items():
            record = records[target]
            note = f"reads {len(read):,} parameters"
            record["summary"] = f"{record['summary']} · {note}" if record.get("summary") else note
            record["explain"].append(f"it {note} of the neurons (edges not drawn)")
        nodes = sorted(records.values(), key=lambda r: r["position"])
        self._made = {rid: [(user, v[0], v[1]) for user, v in users.items()]
                      for rid, users in made.items()}
        self._add_explain(records)
        columns, frames = self._layer_columns(unit)
        model: GraphModel = {
            "version": 1, "root": unit.get(id(self.root), ""), "node_count": len(self.order),
            "truncated": False, "precision": self.precision, "accumulate": True,
            "nodes": nodes, "edges": edges, "steps": [], "reached_twice": [],
            "collapsed": {"groups": len(self.groups), "expanded": sorted(self.expanded)},
            "clusters": clusters, "columns": columns, "layers": frames,
        }
        model["steps"] = self._steps(records, unit, nodes)
        if self.engine:
            model["engine"] = self.engine
        for record in nodes:
            record["explain"].extend(self.notes.get(record["id"], ()))
        for record in nodes:
            del record["position"]
        model["collapsed"]["boxes"] = self.boxes(model)
        self.expand_seconds = time.perf_counter() - started
        return model

    def _count_work(self, edges: list[dict[str, Any]], unit: dict[int, str]) -> None:
        """A box of the cell's names holds the unnamed work behind its Value: on each edge
        into it, `count` is how many of those nodes lie on a path from the edge's source
        (`loss#4 -> loss#5` through `+` alone: none; `pred#5 -> loss#5` through `-` and
        `**2`: 2)."""
        into: dict[str, list[dict[str, Any]]] = {}
        for edge in edges:
            into.setdefault(edge["target"], []).append(edge)
        for target, ins in into.items():
            group = self.by_gid.get(target)
            if group is None or group.kind != "named" or not 1 < len(group.nodes) <= WORK_COUNTED:
                continue
            members = {id(n) for n in group.nodes}
            sources: dict[int, set[str]] = {}
            for node in group.nodes:  # in graph order: parents first
                found: set[str] = set()
                for parent in node._prev:
                    if id(parent) in members:
                        found |= sources.get(id(parent), set())
                    elif id(parent) in unit:
                        found.add(unit[id(parent)])
                sources[id(node)] = found
            counts = Counter(source for node in group.nodes if node is not group.out
                             for source in sources[id(node)])
            for edge in ins:
                edge["count"] = counts.get(edge["source"], 0)

    def _layer_columns(self, unit: dict[int, str]
                       ) -> tuple[list[list[str]], list[dict[str, Any]]]:
        """The layout's columns (the boxes of a layer, neurons[0] first; an expanded
        neuron of a few inputs by its output) and the frames of the layers drawn as
        neurons (a click on one folds the layer)."""
        columns, frames = [], []
        for layer in self.layers:
            if layer in self.groups:
                continue
            column, folded = [], []
            for neuron in layer.members:
                if neuron.gid not in self.expanded:
                    column.append(neuron.gid)
                    folded.append(neuron.gid)
                elif len(neuron.calls[0][0]) <= COLUMN_INPUTS:
                    column.append(unit[id(neuron.calls[0][1])])
            if len(column) > 1:
                columns.append(column)
            if folded:
                frames.append({"id": layer.gid, "nodes": folded, "label":
                               f"{layer.name} · {layer.count} neurons\n"
                               f"click the frame to fold the layer"})
        return columns, frames

    def _cluster_label(self, group: Group) -> str:
        if group.kind == "neuron" and group.count > 1:
            return f"{group.name} on input 0 of {group.count:,} · click here to fold"
        return f"{group.name} · click here to fold"

    def _group_record(self, group: Group) -> dict[str, Any]:
        out = group.out
        summary = self._summary(group)
        return {"id": group.gid, "label": "", "name": readable(group.name), "op": "",
                "symbol": "", "data": jsonable(self.then.get(id(out), out.data)),
                "grad": jsonable(out.grad),
                "parents": [], "leaf": False, "explain": [], "summary": summary,
                "collapsed": {"kind": group.kind, "count": group.count,
                              "nodes": len(group.nodes),
                              "expandable": self._expandable(group)},
                "position": self.pos[id(out)]}

    def _expandable(self, group: Group) -> bool:
        if group.kind == "layer":  # into its neurons
            return group in self.layers and (
                self.count_boxes() - 1 + len(group.members) <= MAX_BOXES)
        return bool(self._shown_nodes(group))

    def _summary(self, group: Group) -> str:
        grads = [p.grad for _, p in group.params]
        spread = (f"grad w,b ∈ [{self.fmt(min(grads))}, {self.fmt(max(grads))}]" if grads else "")
        if group.kind == "neuron":
            many = f"× {group.count:,} inputs\n" if group.count > 1 else ""
            return f"{many}{spread}"
        if group.kind == "layer":
            calls = len(group.members[0].calls) if group.members else 1
            many = f" × {calls:,} inputs" if calls > 1 else ""
            return f"{group.count} neurons{many}\n{spread}"
        if group.kind == "inputs":
            return f"× {group.count:,} input values"
        if group.kind == "sum":
            return (f"Σ over {group.count:,} terms" if group.name != f"Σ over {group.count} terms"
                    else f"{len(group.nodes):,} nodes")
        if group.kind == "steps":
            return f"× {group.count:,} steps"
        if group.kind == "more":
            return "folded to keep the drawing small"
        # a named Value's own work: counted on the edges into it, unless too big to count
        big = len(group.nodes) > WORK_COUNTED
        return f"+ {len(group.nodes) - 1:,} unnamed nodes" if big else ""

    def _scalar_record(self, node: Value, records: dict[str, dict[str, Any]],
                       unit: dict[int, str], params: dict[int, str]) -> dict[str, Any]:
        i = self.pos[id(node)]
        symbol = op_symbol(node._op, constant(node)) if node._op else ""
        label = self.grouping.name_of(node)
        name = params.get(id(node)) or label
        if not name:
            parent_names = [records[unit[id(p)]]["name"] if unit.get(id(p)) in records else "?"
                            for p in node._prev]
            name = derived_name(symbol, parent_names) or ""
            if len(name) > MAX_DERIVED_NAME or not name:
                name = f"#{i}"
        return {"id": f"n{i}", "label": label, "name": readable(name), "op": str(node._op),
                "symbol": symbol, "data": jsonable(self.then.get(id(node), node.data)),
                "grad": jsonable(node.grad),
                "parents": [], "leaf": not node._op, "explain": [], "position": i}

    # --- hover and steps at the collapsed level ---

    def _add_explain(self, records: dict[str, dict[str, Any]]) -> None:
        top = self.root_name
        names = {rid: r["name"] for rid, r in records.items()}
        for gid in self.expanded:
            group = self.by_gid[gid]
            names[gid] = f"{group.name} on the other {group.count - 1:,} inputs"
        for rid, record in records.items():
            here = in_formula(record["name"])
            lines = record["explain"]
            # the boxes using it in the order of their names (neurons[0], neurons[1], …
            # neurons[10]), whatever order a learner's trace met them in
            users = sorted(self._made.get(rid, []), key=lambda u: natural(names.get(u[0], u[0])))
            if users:
                parts = [f"d{top}/d{in_formula(names.get(u, u))}"
                         f" * d{in_formula(names.get(u, u))}/d{here}" for u, _, _ in users[:4]]
                more = f" + … ({len(users) - 4} more)" if len(users) > 4 else ""
                total = sum(c for _, _, c in users)
                lines.append(f"d{top}/d{here} = {' + '.join(parts)}{more} = "
                             f"{' + '.join(self.fmt(c) for _, _, c in users[:4])}{more} = "
                             f"{self.fmt(total)}")
            elif rid == self._root_id(records):
                lines.append(f"d{top}/d{top} = 1")
            if rid[0] == "g":
                lines.extend(self._group_lines(self.by_gid[rid]))

    def _root_id(self, records: dict[str, dict[str, Any]]) -> str:
        for rid, record in records.items():
            if rid[0] == "g" and self.by_gid[rid].out is self.root:
                return rid
            if rid[0] == "n" and self.order[record["position"]] is self.root:
                return rid
        return ""

    def _group_lines(self, group: Group) -> list[str]:
        top, fmt = self.root_name, self.fmt
        lines = []
        if group.kind in ("neuron", "layer") and group.count > 1 and group.kind == "neuron":
            lines.append(f"called on {group.count:,} inputs; the box shows input 0; per input "
                         f"(data, d{top}/d out):")
        elif group.kind == "sum":
            lines.append(f"Σ over {group.count:,} terms ({len(group.nodes):,} nodes); "
                         f"per term (data, d{top}/d term):")
        elif group.kind == "steps":
            lines.append(f"{group.count:,} steps rolled up; per step (data, grad):")
        elif group.kind == "inputs":
            lines.append(f"{group.count:,} input values (data, grad):")
        elif group.kind == "named" and len(group.nodes) > 1:
            lines.append(f"{group.name} and the {len(group.nodes) - 1:,} unnamed nodes of the "
                         f"work behind it; each edge into it says how many lie on its path")
        elif group.kind == "layer":
            first = group.members[0] if group.members else group
            on = " on input 0" if len(first.calls) > 1 else ""
            lines.append(f"{group.count:,} neurons folded into one box; it shows "
                         f"{first.name}{on}; per neuron (data, d{top}/d out):")
            for neuron in group.members[:SHOWN_INPUTS]:
                lines.append(f"  {neuron.name}: {fmt(neuron.out.data)}, {fmt(neuron.out.grad)}")
            if len(group.members) > SHOWN_INPUTS:
                lines.append(f"  … and {len(group.members) - SHOWN_INPUTS} more")
        outs = group.outs if group.kind != "layer" else []
        if len(outs) > 1:
            picked: list[tuple[int, Value | None]] = list(enumerate(outs[:SHOWN_INPUTS]))
            if len(outs) > SHOWN_INPUTS:  # a loop's 10**5 steps: the first and the last
                picked = (picked[:SHOWN_INPUTS - 2] + [(-1, None)]
                          + [(len(outs) - 2, outs[-2]), (len(outs) - 1, outs[-1])])
            for k, out in picked:
                lines.append("  …" if out is None else f"  [{k}] {fmt(out.data)}, {fmt(out.grad)}")
        if group.params:
            by_kind: dict[str, list[float]] = {}
            for name, p in group.params:
                by_kind.setdefault("b" if name.endswith("b") else "w", []).append(p.grad)
            for kind, grads in by_kind.items():
                plural = "s" if len(grads) > 1 else ""
                lines.append(f"d{top}/d{kind}: {len(grads)} parameter grad{plural} in "
                             f"[{fmt(min(grads))}, {fmt(max(grads))}]"
                             + (f", summed over the {group.count:,} inputs"
                                if group.kind == "neuron" and group.count > 1 else ""))
        if group.kind == "layer":
            lines.append(f"{len(group.nodes):,} scalar nodes · " + (
                "click to show its neurons" if self._expandable(group) else
                f"its neurons would be more than {MAX_BOXES} boxes"))
        else:
            lines.append(f"{len(group.nodes):,} scalar nodes · "
                         + ("click to expand" if self._shown_nodes(group) else
                            f"more than {EXPAND_MAX} to expand here"))
        return lines

    def _steps(self, records: dict[str, dict[str, Any]], unit: dict[int, str],
               nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Backward at the collapsed level: one step per box, the root's first, each giving
        the boxes it uses their share (exact: the sum of the scalar contributions)."""
        fmt, top = self.fmt, self.root_name
        root_id = self._root_id(records)
        if not root_id:
            return []
        seed = f"d{top}/d{top} = 1"
        steps = [{"node": root_id, "seed": True, "upstream": 1.0, "rule": seed,
                  "updates": [{"target": root_id, "local": 1.0, "contribution": 1.0,
                               "before": 0.0, "after": 1.0, "formula": seed}]}]
        received: dict[str, list[tuple[str, float]]] = {}
        for target, users in self._made.items():
            for user, _, contribution in users:
                received.setdefault(user, []).append((target, contribution))
        left = Counter(t for t, users in self._made.items() for _ in users)
        running: dict[str, float] = {}
        for record in reversed(nodes):
            rid = record["id"]
            updates = []
            for target, contribution in received.get(rid, []):
                before = running.get(target, 0.0)
                left[target] -= 1
                after = before + contribution
                if not left[target]:  # the last share: the grad the box shows, exactly
                    after = float(records[target]["grad"]) if isinstance(
                        records[target]["grad"], float) else after
                running[target] = after
                there = in_formula(records[target]["name"])
                here = in_formula(record["name"])
                formula = (f"d{top}/d{there} {'+=' if before else '='} d{top}/d{here} * "
                           f"d{here}/d{there} = {fmt(contribution)}"
                           + (f"  →  {fmt(after)}" if before else ""))
                updates.append({"target": target, "local": 0.0,
                                "contribution": jsonable(contribution),
                                "before": jsonable(before), "after": jsonable(after),
                                "formula": formula})
            if updates:
                who = f"{len(updates)} boxes get" if len(updates) > 1 else "1 box gets"
                steps.append({"node": rid, "upstream": record["grad"],
                              "rule": f"{who} its share of d{top}/d{in_formula(record['name'])}",
                              "updates": updates})
        # what folded boxes not drawn gave (an expanded neuron's other calls): one last step
        rest = [{"target": rid, "local": 0.0,
                 "contribution": jsonable(float(r["grad"]) - running.get(rid, 0.0)),
                 "before": jsonable(running.get(rid, 0.0)), "after": r["grad"],
                 "formula": f"d{top}/d{in_formula(r['name'])} = {fmt(r['grad'])} with the "
                            f"shares of the folded calls"}
                for rid, r in records.items() if rid != root_id and isinstance(r["grad"], float)
                and r["grad"] != running.get(rid, 0.0)]
        if rest:  # they come from an expanded neuron's other calls: its step, by its output
            folded = [self.by_gid[g] for g in sorted(self.expanded) if self.by_gid[g].calls]
            here = unit.get(id(folded[0].calls[0][1]), root_id) if folded else root_id
            whose = (f"{folded[0].name} on the other {folded[0].count - 1:,} inputs"
                     if folded else "nodes no box draws")
            steps.append({"node": here, "upstream": records[here]["grad"], "updates": rest,
                          "rule": f"the shares of {whose} ({len(rest)} boxes)"})
        return steps


def view_of(model: GraphModel, root: Value, order: list[Value], calls: CallLog,
            ns: dict[str, Any], changed: list[tuple[Value, float]], options: Any
            ) -> CollapsedView:
    """The pipeline's hook: the collapsed view of the cell's graph, with the names the
    model gives (`y#1`) and the leaf values it was computed from (a training step after
    backward() changed them)."""
    names = {id(order[int(n["id"][1:])]): n["name"] for n in model["nodes"] if n["label"]}
    view = collapsed_view(root, order, names, calls.calls, ns, precision=options.precision,
                          max_nodes=options.max_nodes)
    view.then = {id(leaf): then for leaf, then in changed}
    return view


def toggle_box(result: Any, box: str) -> None:
    """Expand or fold one box of a result's collapsed drawing (by id or name) and redraw
    its static SVG and its widget. ValueError when there is no such box or it is too big."""
    import weakref

    view: CollapsedView = result.collapsed
    gid = box if box in view.by_gid else next(
        (g.gid for g in view.by_gid.values() if g.name == box), None)
    if gid is None:
        shown = ", ".join(g.name for g in view.groups[:6])
        raise ValueError(f"no box {box!r} in the collapsed drawing (boxes: {shown}, …)")
    view.toggle(gid)
    before = result._drawn, result._rendered, result._render_error
    result._drawn = None
    result._rendered = None
    result._render_error = None
    svg = result.svg
    if svg is None:  # the layout failed or took too long: keep the drawing shown
        why = result.render_error
        view.toggle(gid)
        result._drawn, result._rendered, result._render_error = before
        raise ValueError(f"{view.by_gid[gid].name} not expanded: {why}")
    widget = result._widget() if isinstance(result._widget, weakref.ref) else None
    if widget is not None and svg is not None:
        model = result.drawn_graph
        with widget.hold_sync():
            widget.model = model
            widget.svg = svg
            widget.step = len(model["steps"])


def collapsed_view(root: Value, order: list[Value], names: dict[int, str],
                   calls: Iterable[tuple[Module, Sequence, object]], ns: dict[str, Any],
                   precision: int = 4, max_nodes: int = 300,
                   max_boxes: int = MAX_BOXES,
                   paths: tuple[dict[int, str], dict[int, str]] | None = None) -> CollapsedView:
    """The collapsed drawing of root's graph (`order`: parents first, as the pipeline has
    it; `names`: the version names `y#1`; `calls`: what `CallLog` saw; `paths`: see
    Grouping)."""
    grouping = Grouping(root, order, names, calls, ns, paths)
    loose = grouping.loose()
    if box_count(grouping.groups, loose) > min(max_boxes, max(max_nodes, 60)):
        grouping.by_names()
        loose = release_small(grouping, min(max_boxes, max(max_nodes, 60)))
    layers = layer_groups(grouping)
    if box_count(grouping.groups, loose) > max_boxes:
        for layer in layers:
            grouping.groups = fold_layer(grouping.groups, layer)
    if box_count(grouping.groups, loose) > max_boxes:
        loose = fold_middle(grouping, loose, max_boxes)
    return CollapsedView(root, order, grouping, loose, precision, layers)


__all__ = ["MAX_BOXES", "CallLog", "CollapsedView", "collapsed_view", "wanted"]
