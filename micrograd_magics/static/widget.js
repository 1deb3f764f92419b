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
 *   .autograd-mismatch (gradient disagrees with torch / numeric), .autograd-twice
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const PT_TO_PX = 4 / 3;
const HINT = "Hover a node for its chain-rule step; click it to highlight its paths to the root.";

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
  root.append(toolbar, detail, body, explain, torchBox, footer);

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

  function rebuild() {
    graph = model.get("model") || {};
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
    footer.textContent = `${graph.node_count ?? nodes.size} nodes` + (used ? ` · laid out by ${used}` : "");
    explain.textContent = HINT;
    applyStep();
    applySelection();
    fitting = true;
    layout();
    requestAnimationFrame(layout); // once the output area has its width
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
        if (text) text.textContent = `grad ${fmt(grads.get(id) ?? 0)}`;
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
      : `step ${k} / ${count}: backward through ${name(entry.node)} (${(nodes.get(entry.node) || {}).symbol || ""}): ${entry.rule}`;
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
      explain.appendChild(h("div", { class: "autograd-explain-head" },
                            `${node.symbol || node.op}: makes ${node.name}`));
      explain.appendChild(h("div", {}, step ? `local rule: ${step.rule}` : "no backward step recorded"));
      return;
    }
    // the grad the graph shows at the current step; the final one too while they differ
    const shown = steps().length ? gradsAt(currentStep()).get(id) ?? 0 : node.grad;
    const final = fmt(shown) === fmt(node.grad) ? "" : ` (after backward: ${fmt(node.grad)})`;
    explain.appendChild(h("div", { class: "autograd-explain-head" },
      `${node.name}: data ${fmt(node.data)}, grad ${fmt(shown)}${final}${node.leaf ? " (leaf)" : ""}`));
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

  let dragged = false;
  listen(viewport, "click", (event) => {
    if (dragged) return;
    const g = event.target.closest && event.target.closest("g[data-node-id]");
    const id = g ? g.getAttribute("data-node-id") : "";
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

  function fit() {
    fitting = true;
    root.dataset.fit = "1";
    setScale(fitWidth());
    // a vertical scrollbar that appeared with this scale takes width: fit once more
    if (viewport.scrollWidth > viewport.clientWidth + 1) setScale(fitWidth());
  }

  function zoomTo(next, anchor) {
    fitting = false;
    delete root.dataset.fit;
    setScale(next, anchor);
  }

  /** The table beside the graph only when the graph fits beside it at 100 %; then the
   * graph follows the width (in fit mode). Runs on every size change of the output. */
  function layout() {
    if (!svgEl) return;
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
  onModel("change:model", rebuild);
  onModel("change:svg", rebuild);
  onModel("change:renderer", rebuild);
  rebuild();

  return () => {
    for (const dispose of disposers.reverse()) dispose();
    root.remove();
  };
}

export default { render };
