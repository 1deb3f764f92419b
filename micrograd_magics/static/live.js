/**
 * micrograd-magics: the LiveWidget front end (%%autograd --live), an anywidget ES module,
 * hand-written, no build step. It draws what the kernel sends: every number comes from
 * the `state` trait; the only thing computed here is the decision boundary, by running
 * the engine.nn MLP (the weights in state.layers, the ReLU layers in `boundary`) on a grid,
 * so the kernel pays nothing per grid point.
 *
 * Synced traits: state (one update, see live_view.live_state), boundary (sent once),
 * log_scale (both ways).
 *
 * Stable selectors (tests rely on them):
 *   .autograd-live                 the root; data-status="running|done|interrupted|failed|error",
 *                                  data-steps="N" (backward() calls recorded so far)
 *   .autograd-live-header          "step N · loss L · status"
 *   input.autograd-live-log        the log-scale checkbox
 *   svg.autograd-live-loss         the loss curve, data-scale="linear|log"; its polyline
 *                                  has data-points="k"; ticks text.autograd-live-tick
 *                                  (top, middle, bottom of the loss axis, then the steps)
 *   .autograd-live-layer[data-layer="layers[0]"]   one layer: two heatmaps
 *   svg.autograd-live-heatmap[data-kind="data"|"grad"]  cells rect[data-row][data-col],
 *                                  extremes rect.autograd-live-max / .autograd-live-min
 *   .autograd-live-dead            a dead neuron's row label (data-row="3")
 *   svg.autograd-live-lines        plain Values: one polyline per named leaf
 *   canvas.autograd-live-boundary  the decision boundary; data-drawn-at="step",
 *                                  data-accuracy="0.9800" (points on the right side)
 *   .autograd-live-notes           notes (no boundary and why, Ctrl-C, graph not drawn)
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"];

function svgEl(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function htmlEl(tag, className = "", parent = null, text = "") {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  if (parent) parent.appendChild(el);
  return el;
}

function fmt(x) {
  if (x === null || x === undefined) return "nan";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return x.toFixed(a >= 100 ? 1 : 4);
}

/* --- the loss curve ------------------------------------------------------------------ */

function drawCurve(svg, curve, log) {
  svg.replaceChildren();
  svg.dataset.scale = log ? "log" : "linear";
  const W = 420, H = 190, L = 58, R = 10, T = 10, B = 26;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = curve.filter(p => p[1] !== null && (!log || p[1] > 0))
                   .map(p => [p[0], log ? Math.log10(p[1]) : p[1]]);
  svgEl("line", {x1: L, y1: T, x2: L, y2: H - B, class: "autograd-live-axis"}, svg);
  svgEl("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "autograd-live-axis"}, svg);
  const line = svgEl("polyline", {class: "autograd-live-curve-line", fill: "none",
                                  "data-points": pts.length}, svg);
  if (!pts.length) return;
  const x0 = pts[0][0], x1 = Math.max(pts[pts.length - 1][0], x0 + 1);
  let lo = Math.min(...pts.map(p => p[1])), hi = Math.max(...pts.map(p => p[1]));
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (hi - y) / (hi - lo) * (H - T - B);
  line.setAttribute("points", pts.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
                                 .join(" "));
  const label = (x, y, text, anchor) => {
    const t = svgEl("text", {x, y, "text-anchor": anchor, class: "autograd-live-tick"}, svg);
    t.textContent = text;
  };
  const shown = y => fmt(log ? Math.pow(10, y) : y);
  label(L - 4, T + 8, shown(hi), "end");
  label(L - 4, (T + H - B) / 2 + 4, shown((hi + lo) / 2), "end");  // log: the geometric mean
  label(L - 4, H - B, shown(lo), "end");
  label(L, H - 8, String(x0), "start");
  label(W - R, H - 8, `step ${pts[pts.length - 1][0]}`, "end");
  const last = pts[pts.length - 1];
  svgEl("circle", {cx: sx(last[0]), cy: sy(last[1]), r: 3, class: "autograd-live-dot"}, svg);
}

/* --- heatmaps ------------------------------------------------------------------------- */

function colour(v, scale) {
  // diverging: blue below 0, red above, transparent at 0 (the theme's background shows)
  if (v === null) return "rgba(127,127,127,0.5)";
  const t = Math.min(1, Math.abs(v) / (scale || 1));
  return v >= 0 ? `rgba(214,39,40,${(0.08 + 0.92 * t).toFixed(3)})`
                : `rgba(31,119,180,${(0.08 + 0.92 * t).toFixed(3)})`;
}

function drawHeatmap(svg, table, kind) {
  svg.replaceChildren();
  const grid = table[kind];
  const rows = grid.length, cols = rows ? grid[0].length : 0;
  const cell = Math.max(6, Math.min(14, Math.floor(220 / Math.max(cols, 1))));
  svg.setAttribute("width", cols * cell + 2);
  svg.setAttribute("height", rows * cell + 2);
  let max = null, min = null, scale = 0;
  grid.forEach((row, r) => row.forEach((v, c) => {
    if (v === null) return;
    scale = Math.max(scale, Math.abs(v));
    if (max === null || v > grid[max[0]][max[1]]) max = [r, c];
    if (min === null || v < grid[min[0]][min[1]]) min = [r, c];
  }));
  const dead = new Set(table.dead);
  grid.forEach((row, r) => row.forEach((v, c) => {
    const rect = svgEl("rect", {x: 1 + c * cell, y: 1 + r * cell, width: cell - 1,
                                height: cell - 1, fill: colour(v, scale),
                                "data-row": r, "data-col": c}, svg);
    if (dead.has(r)) rect.classList.add("autograd-live-dead-cell");
    const title = svgEl("title", {}, rect);
    title.textContent = `${table.rows[r] ? table.rows[r] + "." : ""}${table.cols[c]} ` +
                        `${kind} ${fmt(v)}`;
  }));
  for (const [at, cls] of [[max, "autograd-live-max"], [min, "autograd-live-min"]]) {
    if (!at) continue;
    const rect = svg.querySelector(`rect[data-row="${at[0]}"][data-col="${at[1]}"]`);
    rect.classList.add(cls);
  }
  return {max: max ? grid[max[0]][max[1]] : null, min: min ? grid[min[0]][min[1]] : null};
}

function drawLayers(box, layers) {
  box.replaceChildren();
  for (const table of layers) {
    const layer = htmlEl("div", "autograd-live-layer", box);
    layer.dataset.layer = table.name;
    const dead = table.dead.length;
    htmlEl("div", "autograd-live-layer-title", layer,
           `${table.name}: ${table.rows.length} × ${table.cols.length}` +
           (dead ? ` · ${dead} dead ReLU` : ""));
    const maps = htmlEl("div", "autograd-live-maps", layer);
    const names = htmlEl("div", "autograd-live-rownames", maps);
    const cell = Math.max(6, Math.min(14, Math.floor(220 / Math.max(table.cols.length, 1))));
    table.rows.forEach((name, r) => {
      const d = table.dead.includes(r);
      const el = htmlEl("div", d ? "autograd-live-rowname autograd-live-dead" :
                        "autograd-live-rowname", names, d ? `${name || "neuron"} ✝` : name);
      el.style.height = el.style.lineHeight = `${cell}px`;
      el.dataset.row = r;
    });
    for (const kind of ["data", "grad"]) {
      const part = htmlEl("div", "autograd-live-map", maps);
      const svg = svgEl("svg", {class: "autograd-live-heatmap", "data-kind": kind}, part);
      const ext = drawHeatmap(svg, table, kind);
      htmlEl("div", "autograd-live-caption", part,
             `${kind} ${fmt(ext.min)} … ${fmt(ext.max)}`);
    }
  }
}

/* --- plain Values: named leaves as lines ---------------------------------------------- */

function drawLines(svg, legend, lines) {
  svg.replaceChildren();
  legend.replaceChildren();
  const W = 420, H = 160, L = 50, R = 10, T = 8, B = 20;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const all = lines.series.flat().filter(v => v !== null);
  if (!all.length) return;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const steps = lines.steps, x0 = steps[0], x1 = Math.max(steps[steps.length - 1], x0 + 1);
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (hi - y) / (hi - lo) * (H - T - B);
  svgEl("line", {x1: L, y1: T, x2: L, y2: H - B, class: "autograd-live-axis"}, svg);
  for (const [y, text] of [[T + 8, fmt(hi)], [H - B, fmt(lo)]]) {
    const t = svgEl("text", {x: L - 4, y, "text-anchor": "end", class: "autograd-live-tick"},
                    svg);
    t.textContent = text;
  }
  lines.series.forEach((series, i) => {
    const colourOf = PALETTE[i % PALETTE.length];
    const pts = series.map((v, k) => v === null ? null : `${sx(steps[k]).toFixed(1)},` +
                                                         `${sy(v).toFixed(1)}`).filter(Boolean);
    svgEl("polyline", {points: pts.join(" "), fill: "none", stroke: colourOf,
                       "stroke-width": 1.5, "data-label": lines.labels[i]}, svg);
    const item = htmlEl("span", "autograd-live-legend-item", legend);
    const swatch = htmlEl("span", "autograd-live-swatch", item);
    swatch.style.background = colourOf;
    htmlEl("span", "", item, `${lines.labels[i]} ${fmt(series[series.length - 1])}`);
  });
}

/* --- the decision boundary, evaluated here from the weights ---------------------------- */

function mlpPlan(layers) {
  // per layer: where each input's weight and the bias sit among the heatmap's columns
  return layers.map(table => ({
    rows: table.data,
    bias: table.cols.indexOf("b"),
    weights: table.cols.map((_, i) => table.cols.indexOf(`w[${i}]`)).filter(c => c >= 0),
  }));
}

function mlpScore(plan, nonlin, x) {
  let out = x;
  plan.forEach(({rows, bias, weights}, k) => {
    out = rows.map(row => {
      let act = bias >= 0 ? row[bias] : 0;
      for (let i = 0; i < out.length; i++) act += row[weights[i]] * out[i];
      return nonlin[k] && act < 0 ? 0 : act;
    });
  });
  return out[0];
}

function drawBoundary(canvas, boundary, layers) {
  const size = 180, n = 45;
  const ctx = canvas.getContext("2d");
  const pts = boundary.points;
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const pad = 0.15;
  let [ax, bx] = [Math.min(...xs), Math.max(...xs)], [ay, by] = [Math.min(...ys), Math.max(...ys)];
  const dx = (bx - ax) || 1, dy = (by - ay) || 1;
  ax -= pad * dx; bx += pad * dx; ay -= pad * dy; by += pad * dy;
  ctx.clearRect(0, 0, size, size);
  const cell = size / n;
  const plan = mlpPlan(layers);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const x = ax + (i + 0.5) / n * (bx - ax), y = by - (j + 0.5) / n * (by - ay);
      const s = mlpScore(plan, boundary.nonlin, [x, y]);
      ctx.fillStyle = s > 0 ? "rgba(214,39,40,0.28)" : "rgba(31,119,180,0.28)";
      ctx.fillRect(i * cell, j * cell, cell + 0.5, cell + 0.5);
    }
  }
  // the points this MLP classifies right (score > 0 for class 1), for the reader and tests
  const right = pts.filter(([x, y, c]) => (mlpScore(plan, boundary.nonlin, [x, y]) > 0) === !!c);
  canvas.dataset.accuracy = (right.length / pts.length).toFixed(4);
  canvas.title = `${right.length} of ${pts.length} points on the right side`;
  for (const [x, y, c] of pts) {
    ctx.beginPath();
    ctx.arc((x - ax) / (bx - ax) * size, (by - y) / (by - ay) * size, 2.6, 0, 2 * Math.PI);
    ctx.fillStyle = c ? "#d62728" : "#1f77b4";
    ctx.fill();
  }
}

/* --- the widget ------------------------------------------------------------------------ */

function render({ model, el }) {
  const root = htmlEl("div", "autograd-live", el);
  const header = htmlEl("div", "autograd-live-header", root);
  const title = htmlEl("span", "autograd-live-title", header);
  const toggle = htmlEl("label", "autograd-live-toggle", header);
  const log = htmlEl("input", "autograd-live-log", toggle);
  log.type = "checkbox";
  toggle.appendChild(document.createTextNode(" log scale"));
  const body = htmlEl("div", "autograd-live-body", root);
  const curveBox = htmlEl("div", "autograd-live-panel", body);
  htmlEl("div", "autograd-live-panel-title", curveBox, "loss");
  const curve = svgEl("svg", {class: "autograd-live-loss"}, curveBox);
  const boundaryBox = htmlEl("div", "autograd-live-panel autograd-live-boundary-box", body);
  htmlEl("div", "autograd-live-panel-title", boundaryBox, "decision boundary");
  const canvas = htmlEl("canvas", "autograd-live-boundary", boundaryBox);
  canvas.width = canvas.height = 180;
  const linesBox = htmlEl("div", "autograd-live-panel", body);
  htmlEl("div", "autograd-live-panel-title", linesBox, "named leaves (data per step)");
  const lines = svgEl("svg", {class: "autograd-live-lines"}, linesBox);
  const legend = htmlEl("div", "autograd-live-legend", linesBox);
  const layersBox = htmlEl("div", "autograd-live-layers", root);
  const notes = htmlEl("div", "autograd-live-notes", root);
  let drawnAt = -Infinity;

  function update() {
    const state = model.get("state") || {};
    const boundary = model.get("boundary") || {};
    const steps = state.steps || 0;
    const status = state.status || "running";
    root.dataset.status = status;
    root.dataset.steps = steps;
    const loss = state.loss === null || state.loss === undefined ? "" : ` · loss ${fmt(state.loss)}`;
    const label = {running: "training…", done: "done", interrupted: "stopped (Ctrl-C)",
                   failed: "no training recorded", error: "stopped by an error"}[status] ||
                  status;
    title.textContent = `%%autograd --live${state.model ? " · " + state.model : ""} · ` +
                        `${steps} step${steps === 1 ? "" : "s"}${loss} · ${label}`;
    log.checked = !!model.get("log_scale");
    drawCurve(curve, state.curve || [], log.checked);
    const isModel = state.kind === "model";
    linesBox.style.display = !isModel && state.lines && state.lines.series ? "" : "none";
    if (linesBox.style.display === "") drawLines(lines, legend, state.lines);
    drawLayers(layersBox, state.layers || []);
    const hasBoundary = !!(boundary.points && boundary.points.length && (state.layers || []).length);
    boundaryBox.style.display = hasBoundary ? "" : "none";
    if (hasBoundary && (steps - drawnAt >= (boundary.every || 5) || status !== "running")) {
      drawBoundary(canvas, boundary, state.layers);
      drawnAt = steps;
      canvas.dataset.drawnAt = steps;
    }
    notes.replaceChildren();
    for (const note of state.notes || []) htmlEl("p", "", notes, note);
  }

  log.addEventListener("change", () => {
    model.set("log_scale", log.checked);
    model.save_changes();
  });
  model.on("change:state", update);
  model.on("change:boundary", update);
  model.on("change:log_scale", update);
  update();
  return () => {
    model.off("change:state", update);
    model.off("change:boundary", update);
    model.off("change:log_scale", update);
  };
}

export default { render };
