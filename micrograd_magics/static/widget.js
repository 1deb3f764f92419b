/**
 * micrograd-magics: the AutogradWidget front end (anywidget ES module, hand-written, no
 * build step). It shows the SVG that Python laid out and decorates it; every number and
 * every chain-rule sentence comes from the graph model (nothing is recomputed here except
 * replaying the recorded backward updates).
 *
 * Synced traits: model (the graph model dict), svg (string), step (int, both ways),
 * selected (node id or "", both ways), renderer (string).
 *
 * Stable selectors (tests rely on them; keep them):
 *   .autograd-widget                       the widget root; data-step="k", data-steps="N",
 *                                          data-selected="<node id>"
 *   .autograd-toolbar                      step controls and view buttons
 *   button[data-action="first"|"back"|"forward"|"last"]   replay the backward pass
 *   input[type=range].autograd-slider      0 (before backward, all grads 0) .. N (all steps)
 *   .autograd-step-caption                 "step k / N: ..." for the current step
 *   .autograd-step-detail                  the current step's formulas, one per line
 *   button[data-action="zoom-in"|"zoom-out"|"fit"|"actual"|"download"]
 *                                          fit: scale down to the width (never above 100 %);
 *                                          actual: 100 %; the root's data-zoom="0.75" and
 *                                          data-fit="1" while the graph follows the width
 *   .autograd-zoom                         the current zoom, "75 %"
 *   .autograd-viewport                     the scrolling, pannable area around the SVG
 *   .autograd-body.autograd-stacked        the comparison table below the graph (no room
 *                                          beside it for the graph at 100 %)
 *   svg g[data-kind="value"][data-node-id="n0"]  a Value's record node (SVG id = model id)
 *   svg g[data-kind="op"][data-node-id="n2"]     the op node that makes n2 (id "n2_op")
 *   svg g[data-kind="edge"][data-source][data-target]   Value -> op of target
 *   svg g[data-kind="op-edge"][data-target]             op -> the Value it makes
 *   text.autograd-label / .autograd-data / .autograd-grad   texts of a value node
 *   .autograd-explain                      hover box: the hovered node's chain-rule text
 *   .autograd-torch-graph                  torch's autograd graph (only with --torch-graph)
 *   .autograd-compare                      comparison table (only with model.compare);
 *                                          rows tr[data-node-id], failing rows .autograd-fail
 *   classes on node/edge groups: .autograd-hover, .autograd-selected, .autograd-path,
 *   .autograd-current (the node whose rule runs now), .autograd-updated (its targets),
 *   .autograd-mismatch (gradient disagrees with torch / numeric), .autograd-twice,
 *   .autograd-asked (quiz: a parent whose grad is asked now)
 *
 * Quiz (model.quiz = {tolerance}): the root has data-quiz="asking" | "done"
 *   .autograd-quiz                         the question panel (the step buttons hide)
 *   input.autograd-quiz-input[data-node-id][data-step]   one per parent of the step
 *   .autograd-quiz-feedback[data-node-id]  right / hint / += text beside that input
 *   button[data-action="reveal"][data-node-id]   after three wrong tries
 *   .autograd-quiz-score                   "5 of 7 right first time" at the end
 *   button[data-action="quiz-again"]       start the quiz over
 *   answers (synced trait): one dict per answer, appended
 *
 * Nudge and set (custom messages to the kernel, see widget.py):
 *   .autograd-leaves                       the leaves panel; data-kernel="0" without one
 *   select.autograd-nudge-h                h: 0.1, 0.01, 0.001
 *   tr[data-node-id] in it: input.autograd-leaf-value (Enter sets; ArrowUp/Down: ± h),
 *   .autograd-leaf-drag (drag sideways), button[data-action="nudge-up"|"nudge-down"],
 *   .autograd-leaf-grad, .autograd-leaf-slope (measured), .autograd-leaf-root (before → after)
 *   .autograd-leaves-status                the kernel's last answer (or error)
 *   button[data-action="all-leaves"]       more than 12 leaves: the rest on request
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const PT_TO_PX = 4 / 3;
const HINT = "Hover a node for its chain-rule step; click it to highlight its paths to the root.";
const COLLAPSED_HINT = "Hover a box for the chain rule at its level; click a box to expand it (a neuron into its nodes, a layer into its neurons), click a frame to fold it again (a layer's frame folds the layer into one box).";

/** A number as the graph shows it: the same rule as Python's graph.format_number. */
export function formatNumber(x, precision) {
  if (typeof x === "string") {
    if (x === "nan" || x === "inf" || x === "-inf") return x;
    x = Number(x);
  }
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const a = Math.abs(x);
  const p = precision;
  if (a !== 0 && !(a >= 1e-3 && a < 1e7)) {
    const exact = a.toExponential(100).split("e")[0];
    const tie = halfEvenTie(exact, p ? p + 2 : 1);
    let [mant, exp] = a.toExponential(p).split("e");
    if (tie !== null) [mant, exp] = [tie, a.toExponential(100).split("e")[1]];
    // Python writes at least two exponent digits: 1.0000e-07, JS writes 1.0000e-7
    const e = Number(exp);
    return `${sign}${mant}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  const exact = a.toFixed(100); // the exact decimal expansion in this range
  const tie = halfEvenTie(exact, exact.indexOf(".") + (p ? p + 1 : 0));
  return sign + (tie !== null ? tie : a.toFixed(p));
}

/** JS rounds an exact tie up, Python to even. Given the exact digits and where the kept
 * part ends: the kept part when it is a tie that Python rounds down, else null. */
function halfEvenTie(exact, cut) {
  const rest = exact.slice(cut).replace(".", "");
  if (!/^50*$/.test(rest)) return null;
  const kept = exact.slice(0, cut);
  return Number(kept.replace(".", "").slice(-1)) % 2 === 0 ? kept.replace(/\.$/, "") : null;
}

function h(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Parse the SVG as XML (never as HTML) and drop anything active, defensively: the SVG is
 * Graphviz's, with labels escaped, so there should be nothing to drop. */
function parseSvg(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (!svg || svg.namespaceURI !== SVG_NS || doc.getElementsByTagName("parsererror").length) {
    return null;
  }
  for (const bad of svg.querySelectorAll("script, foreignObject, iframe")) bad.remove();
  for (const node of [svg, ...svg.querySelectorAll("*")]) {
    for (const attr of [...node.attributes]) {
      const value = attr.value.trim().toLowerCase();
      if (attr.name.toLowerCase().startsWith("on") || value.startsWith("javascript:")) {
        node.removeAttribute(attr.name);
      }
    }
  }
  return document.importNode(svg, true);
}

/** The width of the record field a text is centred in (between the nearest vertical lines
 * of its box), or Infinity when the box is not a record of such lines. */
function fieldWidth(text) {
  const x = Number(text.getAttribute("x"));
  const xs = [];
  for (const line of text.parentNode.querySelectorAll("polygon, polyline")) {
    const points = (line.getAttribute("points") || "").trim().split(/\s+/).map((p) => p.split(",").map(Number));
    for (let i = 1; i < points.length; i++) {
      if (points[i][0] === points[i - 1][0] && points[i][1] !== points[i - 1][1]) xs.push(points[i][0]);
    }
  }
  const left = Math.max(...xs.filter((v) => v < x));
  const right = Math.min(...xs.filter((v) => v > x));
  return Number.isFinite(left) && Number.isFinite(right) ? 2 * Math.min(x - left, right - x) - 3 : Infinity;
}

/** Write a number into its SVG text. The layout was made for other numbers (the quiz's
 * "?", the values before a set): a text longer than the one laid out is measured and, when
 * it does not fit its field, shortened to `short` (the number without its word) or, as a
 * last resort, squeezed to the field (textLength). Only longer texts are measured. */
function putText(text, full, short) {
  if (text.dataset.laidOut === undefined) text.dataset.laidOut = String(text.textContent.length);
  text.textContent = full;
  text.dataset.full = full;
  text.dataset.short = short || "";
  if (text.hasAttribute("textLength")) {
    text.removeAttribute("textLength");
    text.removeAttribute("lengthAdjust");
  }
  if (full.length <= Number(text.dataset.laidOut) || typeof text.getComputedTextLength !== "function") return;
  const room = fieldWidth(text);
  if (!Number.isFinite(room) || text.getComputedTextLength() <= room) return;
  if (short) {
    text.textContent = short;
    if (text.getComputedTextLength() <= room) return;
  }
  text.setAttribute("textLength", String(Math.max(room, 1)));
  text.setAttribute("lengthAdjust", "spacingAndGlyphs");
}

/** Add a class to every box drawn for one node (see render.use_copies). */
function markBoxes(group, cls) {
  for (const box of (group && group.boxes) || []) box.classList.add(cls);
}

function render({ model, el }) {
  const root = h("div", { class: "autograd-widget" });
  el.appendChild(root);
  const disposers = [];
  const listen = (target, type, fn, options) => {
    target.addEventListener(type, fn, options);
    disposers.push(() => target.removeEventListener(type, fn, options));
  };
  const onModel = (name, fn) => {
    model.on(name, fn);
    disposers.push(() => model.off(name, fn));
  };

  // --- the frame: toolbar, viewport (+ comparison table), explain box ---------------
  const toolbar = h("div", { class: "autograd-toolbar" });
  const button = (action, label, title) => {
    const b = h("button", { type: "button", "data-action": action, title, "aria-label": title }, label);
    b.className = "autograd-button";
    return b;
  };
  const stepBox = h("span", { class: "autograd-steps" });
  const first = button("first", "|◀", "first: before the backward pass");
  const back = button("back", "◀", "back one step");
  const forward = button("forward", "▶", "forward one step");
  const last = button("last", "▶|", "last: every step done");
  const slider = h("input", { type: "range", class: "autograd-slider", min: "0", step: "1",
                              "aria-label": "backward step" });
  const caption = h("span", { class: "autograd-step-caption" });
  stepBox.append(first, back, forward, last, slider, caption);
  const viewBox = h("span", { class: "autograd-view-buttons" });
  const zoomText = h("span", { class: "autograd-zoom", title: "zoom" });
  viewBox.append(button("zoom-out", "−", "zoom out"), zoomText,
                 button("zoom-in", "+", "zoom in (or Ctrl + wheel)"),
                 button("fit", "fit", "fit the graph to the width (never above 100 %)"),
                 button("actual", "100 %", "actual size (scroll or drag to pan)"),
                 button("download", "⤓ SVG", "download the graph as SVG"));
  toolbar.append(stepBox, viewBox);
  const detail = h("div", { class: "autograd-step-detail" });
  const body = h("div", { class: "autograd-body" });
  const viewport = h("div", { class: "autograd-viewport", tabindex: "0" });
  const canvas = h("div", { class: "autograd-canvas" });
  viewport.appendChild(canvas);
  const side = h("div", { class: "autograd-side" });
  body.append(viewport, side);
  const explain = h("div", { class: "autograd-explain", "aria-live": "polite" });
  const footer = h("div", { class: "autograd-footer" });
  const torchBox = h("div", { class: "autograd-torch-graph" });
  const quizBox = h("div", { class: "autograd-quiz", "aria-live": "polite" });
  const leavesBox = h("div", { class: "autograd-leaves" });
  root.append(toolbar, quizBox, detail, body, explain, leavesBox, torchBox, footer);

  // --- state derived from the model ----------------------------------------------
  let graph = {};
  let nodes = new Map(); // id -> model node
  let children = new Map(); // id -> [child ids]
  let groups = new Map(); // id -> {value: <g>, op: <g>}
  let edges = []; // [{g, source, target, kind}]
  let svgEl = null;
  let natural = { width: 0, height: 0 };
  let scale = 1;
  let fitting = true; // the graph follows the width until the learner zooms

  const steps = () => graph.steps || [];
  const precision = () => (Number.isInteger(graph.precision) ? graph.precision : 4);
  const fmt = (x) => formatNumber(x, precision());
  const name = (id) => (nodes.get(id) || {}).name || id;
  /** ` (*)`: the op of a step's node; nothing for a box of many nodes, which has none */
  const opOf = (id) => ((nodes.get(id) || {}).symbol ? ` (${nodes.get(id).symbol})` : "");

  /** The model changed but not its shape (a set from the kernel): new numbers, same SVG,
   * same layout, zoom and scroll. */
  function sameShape(next) {
    const ids = (next.nodes || []).map((n) => n.id);
    return svgEl && ids.length === nodes.size && ids.every((id) => nodes.has(id))
      && (next.edges || []).length === (graph.edges || []).length;
  }

  function updateNumbers() {
    graph = model.get("model") || {};
    nodes = new Map((graph.nodes || []).map((n) => [n.id, n]));
    for (const [id, g] of groups) {
      const node = nodes.get(id);
      if (!node) continue;
      for (const box of g.boxes) {
        const text = box.querySelector("text.autograd-data");
        if (text) putText(text, `data ${fmt(node.data)}`, fmt(node.data));
      }
    }
    buildCompare();
    applyStep();
    buildLeaves();
  }

  let lastSvg = null;
  function onModelChange() {
    const next = model.get("model") || {};
    if (lastSvg === model.get("svg") && sameShape(next)) updateNumbers();
    else rebuild();
  }

  function rebuild() {
    graph = model.get("model") || {};
    lastSvg = model.get("svg");
    nodes = new Map((graph.nodes || []).map((n) => [n.id, n]));
    children = new Map();
    for (const e of graph.edges || []) {
      if (!children.has(e.source)) children.set(e.source, []);
      children.get(e.source).push(e.target);
    }
    canvas.textContent = "";
    svgEl = parseSvg(model.get("svg") || "");
    groups = new Map();
    edges = [];
    const clicked = root.dataset.expanding; // the box a click here expanded, if one did
    delete root.dataset.expanding;
    root.dataset.collapsed = graph.collapsed ? "1" : "0";
    if (svgEl) {
      svgEl.classList.add("autograd-svg");
      canvas.appendChild(svgEl);
      const vb = (svgEl.getAttribute("viewBox") || "").split(/[\s,]+/).map(Number);
      natural = vb.length === 4 && vb.every(Number.isFinite)
        ? { width: vb[2] * PT_TO_PX, height: vb[3] * PT_TO_PX }
        : { width: svgEl.width.baseVal.value, height: svgEl.height.baseVal.value };
      for (const g of svgEl.querySelectorAll("g[data-node-id]")) {
        const id = g.getAttribute("data-node-id");
        if (!groups.has(id)) groups.set(id, { boxes: [] });
        const kind = g.getAttribute("data-kind");
        const group = groups.get(id);
        // a node used far apart is drawn once per use (render.use_copies): every box
        // shows its grad and its highlight; the first one stands for it elsewhere
        if (kind === "value") group.boxes.push(g);
        if (!group[kind]) group[kind] = g;
      }
      for (const g of svgEl.querySelectorAll("g[data-source][data-target]")) {
        edges.push({ g, source: g.getAttribute("data-source"),
                     target: g.getAttribute("data-target"), kind: g.getAttribute("data-kind") });
      }
      const mismatches = new Set((graph.compare || {}).mismatches || []);
      const twice = new Set(graph.reached_twice || []);
      for (const [id, g] of groups) {
        if (mismatches.has(id)) markBoxes(g, "autograd-mismatch");
        if (twice.has(id)) markBoxes(g, "autograd-twice");
      }
    } else {
      canvas.appendChild(h("p", { class: "autograd-error" }, "The graph's SVG could not be shown."));
    }
    const count = steps().length;
    stepBox.style.display = count ? "" : "none";
    detail.style.display = count ? "" : "none";
    slider.max = String(count);
    root.dataset.steps = String(count);
    buildCompare();
    const used = model.get("renderer");
    footer.textContent = `${graph.node_count ?? nodes.size} nodes` + (used ? ` · laid out by ${used}` : "")
      + (graph.collapsed ? ` · drawn collapsed in ${graph.collapsed.boxes} boxes: click a box to expand it, its frame to fold it` : "");
    explain.textContent = graph.collapsed ? COLLAPSED_HINT : HINT;
    startQuiz();
    applyStep();
    buildLeaves();
    applySelection();
    fitting = true;
    layout();
    requestAnimationFrame(layout); // once the output area has its width
    if (clicked) requestAnimationFrame(() => requestAnimationFrame(() => showFrame(clicked)));
  }

  /** After a click expanded a box (a neuron into its nodes, a layer into its neurons):
   * its frame at a readable zoom, in view (the whole drawing is one "fit" away). */
  const READABLE = 0.6;
  function showFrame(id) {
    const shown = svgEl && [...svgEl.querySelectorAll("g.cluster[id^='fold_']")]
      .find((g) => g.id === `fold_${id}`);
    if (!shown || scale >= READABLE) return;
    zoomTo(READABLE);
    const frame = shown.getBoundingClientRect();
    const view = viewport.getBoundingClientRect();
    viewport.scrollLeft += frame.left - view.left - 8;
    viewport.scrollTop += frame.top - view.top - 8;
  }

  // --- the backward replay ----------------------------------------------------------
  function currentStep() {
    const k = Number(model.get("step"));
    return Math.max(0, Math.min(Number.isFinite(k) ? k : 0, steps().length));
  }

  function gradsAt(k) {
    const grads = new Map([...nodes.keys()].map((id) => [id, 0]));
    for (const entry of steps().slice(0, k)) {
      for (const u of entry.updates || []) grads.set(u.target, u.after);
    }
    return grads;
  }

  function applyStep() {
    const count = steps().length;
    if (quizActive()) {
      applyQuiz();
      return;
    }
    stepBox.style.display = count ? "" : "none";
    detail.style.display = count ? "" : "none";
    quizBox.style.display = quiz.done ? "" : "none";
    if (!count) {
      root.dataset.step = "0";
      return;
    }
    const k = currentStep();
    root.dataset.step = String(k);
    slider.value = String(k);
    first.disabled = back.disabled = k === 0;
    forward.disabled = last.disabled = k === count;
    const grads = gradsAt(k);
    for (const [id, g] of groups) {
      for (const box of g.boxes) {
        const text = box.querySelector("text.autograd-grad");
        if (text) putText(text, `grad ${fmt(grads.get(id) ?? 0)}`, fmt(grads.get(id) ?? 0));
      }
    }
    for (const g of svgEl ? svgEl.querySelectorAll(".autograd-current, .autograd-updated") : []) {
      g.classList.remove("autograd-current", "autograd-updated");
    }
    detail.textContent = "";
    if (k === 0) {
      caption.textContent = `step 0 / ${count}: before the backward pass, every grad is 0`;
      return;
    }
    const entry = steps()[k - 1];
    const here = groups.get(entry.node) || {};
    markBoxes(here, "autograd-current");
    if (!entry.seed && here.op) here.op.classList.add("autograd-current");
    for (const u of entry.updates || []) {
      const target = groups.get(u.target) || {};
      if (u.target !== entry.node) markBoxes(target, "autograd-updated");
    }
    caption.textContent = entry.seed
      ? `step ${k} / ${count}: seed ${entry.rule}`
      : `step ${k} / ${count}: backward through ${name(entry.node)}${opOf(entry.node)}: ${entry.rule}`;
    const twice = new Set(graph.reached_twice || []);
    for (const u of entry.updates || []) {
      const line = h("div", { class: "autograd-formula" }, u.formula || "");
      if (twice.has(u.target)) line.classList.add("autograd-twice");
      detail.appendChild(line);
    }
  }

  function setStep(k) {
    const count = steps().length;
    const next = Math.max(0, Math.min(k, count));
    model.set("step", next);
    model.save_changes();
    applyStep(); // also when the value did not change (no change event)
  }

  // --- hover and click -------------------------------------------------------------------
  function showNode(id, kind) {
    const node = nodes.get(id);
    if (!node) return;
    explain.textContent = "";
    if (kind === "op") {
      const step = steps().find((s) => s.node === id && !s.seed);
      if (quizActive()) {
        explain.appendChild(h("div", { class: "autograd-explain-head" }, `${node.symbol || node.op}: makes ${node.name}`));
        return;
      }
      explain.appendChild(h("div", { class: "autograd-explain-head" },
                            `${node.symbol || node.op}: makes ${node.name}`));
      explain.appendChild(h("div", {}, step ? `local rule: ${step.rule}` : "no backward step recorded"));
      return;
    }
    if (quizActive()) {
      const known = quizKnown().get(id);
      explain.appendChild(h("div", { class: "autograd-explain-head" },
        `${node.name}: data ${fmt(node.data)}, grad ${known === undefined ? "?" : fmt(known)}`
        + (node.leaf ? " (leaf)" : "")));
      explain.appendChild(h("div", {}, "the quiz hides the chain-rule steps until you answer"));
      return;
    }
    // the grad the graph shows at the current step; the final one too while they differ
    const shown = steps().length ? gradsAt(currentStep()).get(id) ?? 0 : node.grad;
    const final = fmt(shown) === fmt(node.grad) ? "" : ` (after backward: ${fmt(node.grad)})`;
    explain.appendChild(h("div", { class: "autograd-explain-head" },
      `${node.name}: data ${fmt(node.data)}, grad ${fmt(shown)}${final}${node.leaf ? " (leaf)" : ""}`));
    if (node.summary) explain.appendChild(h("div", { class: "autograd-note" }, node.summary.replace(/\n/g, " · ")));
    const lines = Array.isArray(node.explain) ? node.explain : node.explain ? [String(node.explain)] : [];
    for (const line of lines) explain.appendChild(h("div", { class: "autograd-formula" }, line));
    if (!lines.length) explain.appendChild(h("div", {}, "no chain-rule step recorded for this node"));
    if ((graph.reached_twice || []).includes(id)) {
      explain.appendChild(h("div", { class: "autograd-note" },
        `${node.name} is used more than once: its grad adds up ${lines.length} contributions (+=)`));
    }
  }

  function hoverClass(id, on) {
    const g = groups.get(id) || {};
    for (const part of [...(g.boxes || []), g.op]) part && part.classList.toggle("autograd-hover", on);
  }

  let hovered = null;
  listen(viewport, "mouseover", (event) => {
    const g = event.target.closest && event.target.closest("g[data-node-id]");
    const id = g ? g.getAttribute("data-node-id") : null;
    if (id === hovered) return;
    if (hovered) hoverClass(hovered, false);
    hovered = id;
    if (id) {
      hoverClass(id, true);
      showNode(id, g.getAttribute("data-kind"));
    }
  });
  listen(viewport, "mouseleave", () => {
    if (hovered) hoverClass(hovered, false);
    hovered = null;
  });

  function pathFrom(start) {
    const seen = new Set([start]);
    const todo = [start];
    while (todo.length) {
      for (const next of children.get(todo.pop()) || []) {
        if (!seen.has(next)) {
          seen.add(next);
          todo.push(next);
        }
      }
    }
    return seen;
  }

  function applySelection() {
    const selected = model.get("selected") || "";
    root.dataset.selected = selected;
    for (const g of svgEl ? svgEl.querySelectorAll(".autograd-path, .autograd-selected") : []) {
      g.classList.remove("autograd-path", "autograd-selected");
    }
    if (!selected || !nodes.has(selected)) return;
    const on = pathFrom(selected);
    for (const id of on) {
      const g = groups.get(id) || {};
      markBoxes(g, "autograd-path");
      if (id !== selected && g.op) g.op.classList.add("autograd-path");
    }
    const start = groups.get(selected) || {};
    markBoxes(start, "autograd-selected");
    for (const e of edges) {
      const onPath = e.kind === "op-edge"
        ? on.has(e.target) && e.target !== selected
        : on.has(e.source) && on.has(e.target);
      if (onPath) e.g.classList.add("autograd-path");
    }
  }

  // --- a collapsed drawing (collapse.py): a click on a box expands it in place, a click
  // on the frame of an expanded one folds it; the kernel lays the new drawing out
  function toKernel(kind, id, what) {
    if (!hasKernel()) {
      explain.textContent = `${what} needs the running kernel (this page has none)`;
      return;
    }
    model.send({ kind, node: id });
    root.dataset.expanding = id;
    explain.textContent = `${what}…`;
  }

  let dragged = false;
  listen(viewport, "click", (event) => {
    if (dragged) return;
    const g = event.target.closest && event.target.closest("g[data-node-id]");
    const id = g ? g.getAttribute("data-node-id") : "";
    const box = (nodes.get(id) || {}).collapsed;
    if (box && box.expandable) {
      toKernel("expand", id, `expanding ${name(id)}`);
      return;
    }
    const frame = !g && event.target.closest && event.target.closest("g.cluster[id^='fold_']");
    if (frame) {
      toKernel("fold", frame.id.slice(5), "folding");
      return;
    }
    const head = !g && event.target.closest && event.target.closest("g.autograd-layer-head");
    if (head) { // a layer's heading, in its frame: folds the layer too
      toKernel("fold", head.id.slice(5), "folding");
      return;
    }
    const next = id && id !== (model.get("selected") || "") ? id : "";
    model.set("selected", next);
    model.save_changes();
    applySelection();
  });

  // --- zoom and pan --------------------------------------------------------------------
  function setScale(next, anchor) {
    if (!svgEl) return;
    next = Math.max(0.1, Math.min(next, 4));
    const rect = viewport.getBoundingClientRect();
    const ax = anchor ? anchor.x - rect.left : viewport.clientWidth / 2;
    const ay = anchor ? anchor.y - rect.top : viewport.clientHeight / 2;
    const fx = (viewport.scrollLeft + ax) / scale;
    const fy = (viewport.scrollTop + ay) / scale;
    scale = next;
    svgEl.setAttribute("width", `${natural.width * scale}px`);
    svgEl.setAttribute("height", `${natural.height * scale}px`);
    viewport.scrollLeft = fx * scale - ax;
    viewport.scrollTop = fy * scale - ay;
    root.dataset.zoom = scale.toFixed(2);
    zoomText.textContent = `${Math.round(scale * 100)} %`;
  }

  const PAD = 4; // the viewport's border and a little air, px
  const SIDE_MAX = 420; // .autograd-side's max-width in widget.css

  function fitWidth() {
    const width = viewport.clientWidth - PAD;
    return width > 0 && natural.width > 0 ? Math.min(1, width / natural.width) : 1;
  }

  /** A collapsed drawing is the whole network: "fit" shows all of it, its height too
   * (the viewport's CSS max-height); any other follows the width and scrolls down. */
  function fitScale() {
    const wide = fitWidth();
    if (!graph.collapsed) return wide;
    const room = parseFloat(getComputedStyle(viewport).maxHeight) - PAD;
    return room > 0 && natural.height > 0 ? Math.min(wide, room / natural.height) : wide;
  }

  function fit() {
    fitting = true;
    root.dataset.fit = "1";
    setScale(fitScale());
    // a vertical scrollbar that appeared with this scale takes width: fit once more
    if (viewport.scrollWidth > viewport.clientWidth + 1) setScale(fitScale());
  }

  function zoomTo(next, anchor) {
    fitting = false;
    delete root.dataset.fit;
    setScale(next, anchor);
  }

  /** The table beside the graph only when the graph fits beside it at 100 %; then the
   * graph follows the width (in fit mode). Runs on every size change of the output. */
  /** Measure the texts put while the widget was not on the page yet (no sizes then). */
  function refit() {
    for (const text of svgEl ? svgEl.querySelectorAll("text[data-full]") : []) {
      if (text.dataset.full.length > Number(text.dataset.laidOut)) putText(text, text.dataset.full, text.dataset.short);
    }
  }

  function layout() {
    if (!svgEl) return;
    refit();
    const hasSide = side.style.display !== "none" && side.firstChild;
    if (hasSide) {
      // the width the table takes beside the graph: its content's, at most the CSS's 420 px
      const box = side.firstChild;
      box.style.width = "max-content";
      const sideWidth = Math.min(SIDE_MAX, box.getBoundingClientRect().width);
      box.style.width = "";
      const gap = parseFloat(getComputedStyle(body).columnGap) || 0;
      const room = body.clientWidth - sideWidth - gap - PAD;
      body.classList.toggle("autograd-stacked", room < natural.width);
    } else {
      body.classList.remove("autograd-stacked");
    }
    if (fitting) fit();
  }

  if (typeof ResizeObserver !== "undefined") {
    let width = -1;
    const observer = new ResizeObserver(() => {
      if (root.clientWidth === width) return; // height changes come from us
      width = root.clientWidth;
      layout();
    });
    observer.observe(root);
    disposers.push(() => observer.disconnect());
  }

  listen(viewport, "wheel", (event) => {
    if (!(event.ctrlKey || event.metaKey)) return; // plain wheel keeps scrolling the page
    event.preventDefault();
    zoomTo(scale * Math.exp(-event.deltaY * 0.002), { x: event.clientX, y: event.clientY });
  }, { passive: false });

  let drag = null;
  const onMove = (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!dragged && Math.abs(dx) + Math.abs(dy) > 4) {
      dragged = true;
      viewport.classList.add("autograd-panning");
    }
    if (dragged) {
      viewport.scrollLeft = drag.left - dx;
      viewport.scrollTop = drag.top - dy;
    }
  };
  const onUp = () => {
    drag = null;
    viewport.classList.remove("autograd-panning");
    window.removeEventListener("pointermove", onMove);
    window.removeEventListener("pointerup", onUp);
    setTimeout(() => { dragged = false; }, 0); // the click that ends a drag is not a click
  };
  listen(viewport, "pointerdown", (event) => {
    if (event.button !== 0) return;
    dragged = false;
    drag = { x: event.clientX, y: event.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
    window.addEventListener("pointermove", onMove);
    window.addEventListener("pointerup", onUp);
  });
  disposers.push(() => {
    window.removeEventListener("pointermove", onMove);
    window.removeEventListener("pointerup", onUp);
  });

  // --- buttons and slider ----------------------------------------------------------------
  function download() {
    const text = model.get("svg") || "";
    const blob = new Blob(['<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n', text],
                          { type: "image/svg+xml" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: "autograd-graph.svg" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  listen(toolbar, "click", (event) => {
    const b = event.target.closest && event.target.closest("button[data-action]");
    if (!b || b.disabled) return;
    const k = currentStep();
    const actions = {
      first: () => setStep(0),
      back: () => setStep(k - 1),
      forward: () => setStep(k + 1),
      last: () => setStep(steps().length),
      "zoom-in": () => zoomTo(scale * 1.25),
      "zoom-out": () => zoomTo(scale / 1.25),
      fit,
      actual: () => zoomTo(1),
      download,
    };
    const act = actions[b.getAttribute("data-action")];
    if (act) act();
  });
  listen(slider, "input", () => setStep(Number(slider.value)));

  // --- the comparison table (model.compare, optional) ------------------------------------
  function buildCompare() {
    side.textContent = "";
    const compare = graph.compare;
    const rows = compare && Array.isArray(compare.rows) ? compare.rows : [];
    side.style.display = rows.length || (compare && (compare.notes || []).length) ? "" : "none";
    if (!compare) return;
    const columns = Array.isArray(compare.columns) ? compare.columns : [];
    const box = h("div", { class: "autograd-compare" });
    const failing = rows.filter((r) => !r.ok).length;
    box.appendChild(h("div", { class: "autograd-compare-head" },
      failing ? `${failing} of ${rows.length} gradients disagree` : `all ${rows.length} gradients agree`));
    const table = h("table");
    const head = h("tr");
    for (const c of ["label", "engine", ...columns, "diff", ""]) head.appendChild(h("th", {}, c));
    table.appendChild(h("thead")).appendChild(head);
    const tbody = table.appendChild(h("tbody"));
    const ordered = [...rows.filter((r) => !r.ok), ...rows.filter((r) => r.ok)];
    for (const r of ordered) {
      const tr = h("tr", { "data-node-id": String(r.id ?? "") });
      if (!r.ok) tr.classList.add("autograd-fail");
      const cell = (value) => (value === null || value === undefined ? "—" : fmt(value));
      tr.appendChild(h("td", {}, String(r.label ?? r.id ?? "")));
      tr.appendChild(h("td", {}, cell(r.engine)));
      for (const c of columns) tr.appendChild(h("td", {}, cell(r[c])));
      tr.appendChild(h("td", {}, r.diff === undefined ? "—" : formatNumber(r.diff, 2)));
      tr.appendChild(h("td", {}, r.ok ? "✓" : "✗"));
      tbody.appendChild(tr);
    }
    box.appendChild(table);
    for (const note of compare.notes || []) box.appendChild(h("div", { class: "autograd-note" }, String(note)));
    side.appendChild(box);
    listen(table, "mouseover", (event) => {
      const tr = event.target.closest && event.target.closest("tr[data-node-id]");
      if (!tr) return;
      const id = tr.getAttribute("data-node-id");
      if (hovered) hoverClass(hovered, false);
      hovered = id;
      hoverClass(id, true);
      showNode(id, "value");
    });
  }

  // --- the quiz (model.quiz): predict each grad before it is shown -----------------------
  // One question per update of each backward step, in the order backward runs; the value
  // asked is the parent's grad after the update (the accumulated one for a node reached
  // twice). State lives in this view; the answers go to Python through the `answers` trait.
  let quiz = { questions: [], state: new Map(), done: false };
  const quizActive = () => Boolean(graph.quiz) && !quiz.done;
  const qKey = (q) => `${q.step}:${q.index}`;
  const uid = Math.random().toString(36).slice(2, 10); // input ids unique per view
  const tolerance = () => {
    const t = Number((graph.quiz || {}).tolerance);
    return Number.isFinite(t) && t >= 0 ? t : 0.5 * 10 ** -precision();
  };
  const rootName = () => name(graph.root);

  function startQuiz(fresh = false) {
    const questions = [];
    steps().forEach((entry, step) => (entry.updates || []).forEach((u, index) => {
      questions.push({ step, index, entry, u });
    }));
    const state = new Map();
    // answers already given (another view of this widget, a re-render) count
    for (const a of fresh ? [] : model.get("answers") || []) {
      const q = questions.find((x) => x.step === a.step && x.u.target === a.node
                                       && !(state.get(qKey(x)) || {}).answered);
      if (!q) continue;
      const s = state.get(qKey(q)) || { tries: 0 };
      s.tries = Math.max(s.tries, Number(a.try) || s.tries + 1);
      if (a.ok) Object.assign(s, { answered: true, firstTry: s.tries === 1 });
      state.set(qKey(q), s);
    }
    quiz = { questions, state, done: false };
    quiz.done = Boolean(graph.quiz) && questions.length > 0 && questions.every((q) => answered(q));
  }

  const answered = (q) => Boolean((quiz.state.get(qKey(q)) || {}).answered);
  const askedStep = () => {
    const q = quiz.questions.find((x) => !answered(x));
    return q ? q.step : steps().length;
  };

  /** Node id -> the grad the learner has earned so far (answered or revealed). */
  function quizKnown() {
    const known = new Map();
    for (const q of quiz.questions) if (answered(q)) known.set(q.u.target, q.u.after);
    return known;
  }

  /** The chain rule for the edge, in symbols and then with the numbers already known:
   * from the update's formula ("dL/da = dL/de * de/da = -2.0000 * -3.0000 = 6.0000"). */
  function hints(q) {
    const parent = name(q.u.target);
    const parts = String(q.u.formula || "").split(" = ");
    const numeric = (text) => /^[\s\d.eE+\-*/()]+$|^(nan|inf)/.test(text.trim());
    let i = parts.findIndex((p, k) => k > 0 && numeric(p));
    if (i < 0) i = parts.length;
    const built = q.entry.seed
      ? `d${rootName()}/d${rootName()}`
      : `d${rootName()}/d${parent} = d${rootName()}/d${name(q.entry.node)} * d${name(q.entry.node)}/d${parent}`;
    const symbols = i > 1 ? parts.slice(0, i).join(" = ") : built;
    let numbers = i < parts.length ? parts.slice(0, i + 1).join(" = ") : symbols;
    const before = Number(q.u.before);
    if (q.entry.seed) {
      return [`the seed: how much does ${rootName()} change when ${rootName()} changes by 1? ${symbols}`,
              `${symbols} = 1 by definition`];
    }
    const twice = before !== 0 ? ` — ${parent} already holds ${fmt(before)} from an earlier step, and the grad adds up (+=)` : "";
    if (before !== 0) numbers = `${numbers}, added to the ${fmt(before)} ${parent} already holds`;
    return [`${symbols}${twice}`, numbers];
  }

  function record(q, typed, ok, tries) {
    const entry = { node: q.u.target, label: name(q.u.target), step: q.step, typed, ok, try: tries };
    model.set("answers", [...(model.get("answers") || []), entry]);
    model.save_changes();
  }

  function submit(q, input) {
    const typed = input.value.trim();
    const feedback = input.parentNode.querySelector(".autograd-quiz-feedback");
    const x = Number(typed);
    if (!typed || !Number.isFinite(x) && !/^[-+]?(nan|inf)$/i.test(typed)) {
      feedback.textContent = "type a number (e.g. -2 or 0.5), then Enter";
      return;
    }
    const s = quiz.state.get(qKey(q)) || { tries: 0 };
    s.tries += 1;
    const want = Number(q.u.after);
    const ok = Math.abs(x - want) <= tolerance() || String(x) === String(want);
    record(q, typed, ok, s.tries);
    if (ok) {
      Object.assign(s, { answered: true, firstTry: s.tries === 1 });
      quiz.state.set(qKey(q), s);
      applyQuiz(q);
      return;
    }
    quiz.state.set(qKey(q), s);
    const [symbols, numbers] = hints(q);
    const parent = name(q.u.target);
    const contribution = Number(q.u.contribution);
    const before = Number(q.u.before);
    let text;
    if (before !== 0 && Math.abs(x - contribution) <= tolerance()) {
      text = `${fmt(x)} is only this step's contribution. ${parent} is used more than once: its grad `
        + `adds up (+=), so give the total so far: the ${fmt(before)} it already holds + ${fmt(contribution)}.`;
    } else {
      text = `not ${fmt(x)}. ` + (s.tries === 1 ? `Hint: ${symbols}` : `Hint: ${numbers}`);
    }
    feedback.textContent = text;
    feedback.classList.add("autograd-quiz-wrong");
    if (s.tries >= 3 && !input.parentNode.querySelector("button[data-action='reveal']")) {
      const reveal = h("button", { type: "button", "data-action": "reveal", "data-node-id": q.u.target,
                                   class: "autograd-button" }, "reveal");
      reveal.addEventListener("click", () => {
        Object.assign(s, { answered: true, revealed: true, firstTry: false });
        applyQuiz(q);
      });
      input.parentNode.appendChild(reveal);
    }
    input.select();
  }

  /** Draw the quiz at the step being asked; `justAnswered` stays highlighted. */
  function applyQuiz(justAnswered) {
    const count = steps().length;
    const k = askedStep();
    if (k >= count) {
      finishQuiz();
      return;
    }
    root.dataset.quiz = "asking";
    root.dataset.step = String(k);
    stepBox.style.display = "none";
    detail.style.display = "none";
    quizBox.style.display = "";
    const known = quizKnown();
    for (const [id, g] of groups) {
      for (const box of g.boxes) {
        const text = box.querySelector("text.autograd-grad");
        if (text) {
          const shown = known.has(id) ? fmt(known.get(id)) : "?";
          putText(text, `grad ${shown}`, shown);
        }
      }
    }
    for (const g of svgEl ? svgEl.querySelectorAll(".autograd-current, .autograd-updated, .autograd-asked") : []) {
      g.classList.remove("autograd-current", "autograd-updated", "autograd-asked");
    }
    const entry = steps()[k];
    const here = groups.get(entry.node) || {};
    markBoxes(here, "autograd-current");
    if (!entry.seed && here.op) here.op.classList.add("autograd-current");
    if (justAnswered && justAnswered.step !== k) markBoxes(groups.get(justAnswered.u.target), "autograd-updated");
    const asked = quiz.questions.filter((q) => q.step === k);
    for (const q of asked) {
      if (!answered(q) && q.u.target !== entry.node) markBoxes(groups.get(q.u.target), "autograd-asked");
      else if (answered(q)) markBoxes(groups.get(q.u.target), "autograd-updated");
    }
    quizBox.textContent = "";
    const node = nodes.get(entry.node) || {};
    quizBox.appendChild(h("div", { class: "autograd-quiz-head" }, entry.seed
      ? `quiz, step ${k + 1} / ${count}: the seed. What is the grad of the root ${rootName()}?`
      : `quiz, step ${k + 1} / ${count}: backward through ${name(entry.node)} (${node.symbol || node.op || ""}), `
        + `whose grad is ${fmt(known.get(entry.node) ?? entry.upstream)}. What grad does each parent have now?`));
    let focus = null;
    for (const q of asked) {
      const parent = name(q.u.target);
      const row = h("div", { class: "autograd-quiz-row", "data-node-id": q.u.target });
      // a*a: the same parent gets two updates in one step; say which one each box is
      const same = asked.filter((x) => x.u.target === q.u.target);
      const which = same.length > 1 ? ` after += ${same.indexOf(q) + 1} of ${same.length}` : "";
      row.appendChild(h("label", { for: `ag-q-${uid}-${q.step}-${q.index}` },
                        `d${rootName()}/d${parent}${which} =`));
      const s = quiz.state.get(qKey(q)) || { tries: 0 };
      if (answered(q)) {
        row.appendChild(h("span", { class: "autograd-quiz-value" }, fmt(q.u.after)));
        row.appendChild(h("span", { class: "autograd-quiz-feedback autograd-quiz-right", "data-node-id": q.u.target },
          s.revealed ? "revealed" : "right"));
      } else {
        const input = h("input", { type: "text", inputmode: "decimal", autocomplete: "off",
                                   class: "autograd-quiz-input", id: `ag-q-${uid}-${q.step}-${q.index}`,
                                   "data-node-id": q.u.target, "data-step": String(q.step),
                                   "data-update": String(q.index),
                                   "aria-label": `gradient of ${rootName()} with respect to ${parent}` });
        input.addEventListener("keydown", (event) => {
          event.stopPropagation(); // JupyterLab's shortcuts (Enter, arrows) stay out of the box
          if (event.key === "Enter") {
            event.preventDefault();
            submit(q, input);
          }
        });
        row.appendChild(input);
        const feedback = h("span", { class: "autograd-quiz-feedback", "data-node-id": q.u.target });
        if ((graph.reached_twice || []).includes(q.u.target)) {
          feedback.textContent = Number(q.u.before) !== 0
            ? `${parent} is reached again: give its accumulated grad`
            : `${parent} is used more than once; this is its first contribution`;
        }
        row.appendChild(feedback);
        if (s.tries >= 3) {
          const reveal = h("button", { type: "button", "data-action": "reveal", "data-node-id": q.u.target,
                                       class: "autograd-button" }, "reveal");
          reveal.addEventListener("click", () => {
            Object.assign(s, { answered: true, revealed: true, firstTry: false });
            quiz.state.set(qKey(q), s);
            applyQuiz(q);
          });
          row.appendChild(reveal);
        }
        focus = focus || input;
      }
      quizBox.appendChild(row);
    }
    quizBox.appendChild(h("div", { class: "autograd-note" },
      `Enter checks, Tab moves to the next box; an answer within ${tolerance()} of the grad is right.`));
    // keep the keyboard in the quiz: the next box gets the focus after an answer
    if (focus && (justAnswered || quizBox.contains(document.activeElement) || root.contains(document.activeElement))) {
      focus.focus();
    }
  }

  function finishQuiz() {
    quiz.done = true;
    explain.textContent = HINT;
    root.dataset.quiz = "done";
    const total = quiz.questions.length;
    const first = quiz.questions.filter((q) => (quiz.state.get(qKey(q)) || {}).firstTry).length;
    const revealed = quiz.questions.filter((q) => (quiz.state.get(qKey(q)) || {}).revealed).length;
    quizBox.textContent = "";
    quizBox.appendChild(h("span", { class: "autograd-quiz-score" },
      `${first} of ${total} right first time` + (revealed ? ` (${revealed} revealed)` : "")
      + ". Every grad is shown now; step through the backward pass to see each rule."));
    const again = h("button", { type: "button", "data-action": "quiz-again", class: "autograd-button" }, "quiz again");
    again.addEventListener("click", () => {
      startQuiz(true); // the answers so far stay in `answers`; the new ones follow them
      applyStep();
      buildLeaves();
      const input = quizBox.querySelector("input");
      if (input) input.focus();
    });
    quizBox.appendChild(again);
    buildLeaves();
    setStep(steps().length);
  }

  // --- nudge and set: the learner moves a leaf; the kernel recomputes ---------------------
  const hasKernel = () => typeof model.send === "function";
  const H_CHOICES = ["0.1", "0.01", "0.001"];
  let hChoice = "0.001";
  let waiting = null;
  const leafResults = new Map(); // id -> the last "nudged" answer for that leaf
  const LEAF_ROWS = 12; // a neuron's or an MLP's leaves: the first ones, the rest on request
  let allLeaves = false;

  function buildLeaves() {
    leavesBox.textContent = "";
    // a collapsed drawing's unnamed leaves (a data point's x[0]) cannot be nudged by name
    const leaves = (graph.nodes || []).filter((n) => n.leaf && (!graph.collapsed || n.label));
    if (!leaves.length || quizActive()) {
      leavesBox.style.display = graph.quiz && leaves.length ? "" : "none";
      if (graph.quiz && leaves.length) {
        leavesBox.appendChild(h("div", { class: "autograd-note" },
          "nudge and set the leaves once the quiz is done (a nudge would give the answers away)"));
      }
      return;
    }
    leavesBox.style.display = "";
    const live = hasKernel();
    leavesBox.dataset.kernel = live ? "1" : "0";
    const head = h("div", { class: "autograd-leaves-head" });
    head.appendChild(h("span", {}, `nudge a leaf by h and watch ${rootName()}: h = `));
    const select = h("select", { class: "autograd-nudge-h", "aria-label": "nudge size h" });
    for (const choice of H_CHOICES) {
      const option = h("option", { value: choice }, choice);
      if (choice === hChoice) option.selected = true;
      select.appendChild(option);
    }
    select.addEventListener("change", () => { hChoice = select.value; });
    head.appendChild(select);
    leavesBox.appendChild(head);
    const table = h("table");
    const header = h("tr");
    for (const c of ["leaf", "value", "nudge", "grad", "slope", rootName()]) header.appendChild(h("th", {}, c));
    table.appendChild(h("thead")).appendChild(header);
    const tbody = table.appendChild(h("tbody"));
    const rootNode = nodes.get(graph.root) || {};
    for (const leaf of allLeaves ? leaves : leaves.slice(0, LEAF_ROWS)) {
      const tr = h("tr", { "data-node-id": leaf.id });
      tr.appendChild(h("td", {}, leaf.name));
      const value = h("input", { type: "text", inputmode: "decimal", class: "autograd-leaf-value",
                                 value: fmt(leaf.data), "aria-label": `value of ${leaf.name}` });
      value.dataset.shown = value.value;
      value.addEventListener("keydown", (event) => {
        event.stopPropagation();
        if (event.key === "Enter") {
          event.preventDefault();
          sendSet(leaf, value);
        } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
          // the keyboard's drag: one h per press, set at once
          event.preventDefault();
          const x = Number(value.value);
          if (!Number.isFinite(x)) return;
          value.value = fmt(x + (event.key === "ArrowUp" ? 1 : -1) * Number(hChoice));
          sendSet(leaf, value);
        }
      });
      value.addEventListener("change", () => sendSet(leaf, value));
      const valueCell = h("td");
      // drag the handle sideways: h per pixel while dragging, one set when let go
      const handle = h("span", { class: "autograd-leaf-drag", title: `drag sideways to change ${leaf.name} (h per pixel)`,
                                 "aria-hidden": "true" }, "↔");
      handle.addEventListener("pointerdown", (event) => {
        if (!live || event.button !== 0) return;
        event.preventDefault();
        event.stopPropagation();
        const start = { x: event.clientX, value: Number(leaf.data) };
        handle.setPointerCapture(event.pointerId);
        const move = (e) => { value.value = fmt(start.value + (e.clientX - start.x) * Number(hChoice)); };
        const up = () => {
          handle.removeEventListener("pointermove", move);
          handle.removeEventListener("pointerup", up);
          sendSet(leaf, value);
        };
        handle.addEventListener("pointermove", move);
        handle.addEventListener("pointerup", up);
      });
      valueCell.append(value, handle);
      tr.appendChild(valueCell);
      const nudgeCell = h("td");
      for (const [action, label, sign] of [["nudge-down", "−h", -1], ["nudge-up", "+h", 1]]) {
        const b = h("button", { type: "button", "data-action": action, class: "autograd-button",
                                title: `${leaf.name} ${sign > 0 ? "+" : "−"} h` }, label);
        b.addEventListener("click", () => sendNudge(leaf, sign * Number(hChoice)));
        nudgeCell.appendChild(b);
      }
      tr.appendChild(nudgeCell);
      tr.appendChild(h("td", { class: "autograd-leaf-grad" }, fmt(leaf.grad)));
      const last = leafResults.get(leaf.id);
      tr.appendChild(h("td", { class: "autograd-leaf-slope" }, last ? fmt(last.slope) : "—"));
      tr.appendChild(h("td", { class: "autograd-leaf-root" },
        last ? `${fmt(last.before)} → ${fmt(last.after)}` : fmt(rootNode.data)));
      for (const control of tr.querySelectorAll("input, button")) control.disabled = !live;
      tbody.appendChild(tr);
    }
    leavesBox.appendChild(table);
    if (leaves.length > LEAF_ROWS) {
      const more = h("button", { type: "button", "data-action": "all-leaves", class: "autograd-button" },
                     allLeaves ? `first ${LEAF_ROWS} leaves only` : `all ${leaves.length} leaves`);
      more.addEventListener("click", () => {
        allLeaves = !allLeaves;
        buildLeaves();
      });
      leavesBox.appendChild(more);
    }
    leavesBox.appendChild(h("div", { class: "autograd-leaves-status" }, live
      ? "type a value and press Enter to set a leaf (forward and backward run again on the recorded graph)"
      : "nudge and set need a running kernel: this page has none (the quiz and the replay still work)"));
  }

  function status(text, bad) {
    const line = leavesBox.querySelector(".autograd-leaves-status");
    if (!line) return;
    line.textContent = text;
    line.classList.toggle("autograd-error", Boolean(bad));
  }

  function send(content) {
    if (!hasKernel()) return;
    model.send(content);
    clearTimeout(waiting);
    status("asking the kernel…");
    waiting = setTimeout(() => status("no answer from the kernel (is it running this result?)", true), 5000);
  }

  function sendNudge(leaf, step) {
    send({ kind: "nudge", node: leaf.id, h: step });
  }

  function sendSet(leaf, input) {
    const typed = input.value.trim();
    if (typed === input.dataset.shown) return;
    const x = Number(typed);
    if (!typed || !Number.isFinite(x)) {
      status(`${leaf.name}: type a number, e.g. 3 or -0.5`, true);
      return;
    }
    input.dataset.shown = typed;
    send({ kind: "set", values: { [leaf.id]: x } });
  }

  onModel("msg:custom", (msg) => {
    if (!msg || typeof msg !== "object") return;
    clearTimeout(waiting);
    if (msg.kind === "nudged") {
      leafResults.set(msg.node, msg);
      const tr = leavesBox.querySelector(`tr[data-node-id="${CSS.escape(String(msg.node))}"]`);
      if (tr) {
        tr.querySelector(".autograd-leaf-slope").textContent = fmt(msg.slope);
        tr.querySelector(".autograd-leaf-grad").textContent = fmt(msg.grad);
        tr.querySelector(".autograd-leaf-root").textContent = `${fmt(msg.before)} → ${fmt(msg.after)}`;
      }
      status(String(msg.text || ""));
    } else if (msg.kind === "set_done") {
      leafResults.clear(); // the slopes were measured at the old values
      buildLeaves();
      const values = Object.entries(msg.values || {}).map(([id, x]) => `${name(id)} = ${fmt(x)}`).join(", ");
      status(`set ${values}; ${rootName()} is now ${fmt((nodes.get(graph.root) || {}).data)}`);
    } else if (msg.kind === "error") {
      if (root.dataset.expanding !== undefined) {
        delete root.dataset.expanding;
        explain.textContent = String(msg.text || "the kernel could not expand that box");
      }
      status(String(msg.text || "the kernel could not do that"), true);
    }
  });

  // --- torch's own autograd graph (--torch-graph), optional ------------------------------
  function buildTorchGraph() {
    torchBox.textContent = "";
    const torchSvg = parseSvg(model.get("torch_svg") || "");
    torchBox.style.display = torchSvg ? "" : "none";
    if (!torchSvg) return;
    torchBox.append(h("div", { class: "autograd-compare-head" },
                      "torch's autograd graph (each node: the value it computes)"), torchSvg);
  }

  onModel("change:torch_svg", buildTorchGraph);
  buildTorchGraph();
  onModel("change:step", applyStep);
  onModel("change:selected", applySelection);
  onModel("change:model", onModelChange);
  onModel("change:svg", () => { if (model.get("svg") !== lastSvg) rebuild(); });
  onModel("change:renderer", rebuild);
  rebuild();

  return () => {
    for (const dispose of disposers.reverse()) dispose();
    root.remove();
  };
}

export default { render };
