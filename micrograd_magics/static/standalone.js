// micrograd-magics: runs the widget's front end (widget.js, inlined beside this loader) in a
// page with no kernel and no widget manager: an nbconvert HTML export, a course page, a
// file saved with result.save("graph.html"). The state a kernel would sync lives in a
// plain object here; nothing is fetched. Where scripts do not run, the static SVG stays.
const host = document.getElementById("__AUTOGRAD_ID__");
if (host && !host.dataset.autogradLive) {
  host.dataset.autogradLive = "1";
  const data = JSON.parse(host.querySelector("script.autograd-inline-data").textContent);
  if (data.model64) {  // a --quiz model: its gradients are not readable in the page source
    const bytes = Uint8Array.from(atob(data.model64), (c) => c.charCodeAt(0));
    data.model = JSON.parse(new TextDecoder().decode(bytes));
  }
  const staticParts = [...host.querySelectorAll(".autograd-static")];
  const svgOf = (selector) => {
    const svg = host.querySelector(`${selector} svg`);
    return svg ? new XMLSerializer().serializeToString(svg) : "";
  };
  const state = { model: data.model, svg: svgOf(".autograd-graph"), renderer: data.renderer,
                  torch_svg: svgOf(".autograd-torch-graph"), selected: "",
                  step: (data.model.steps || []).length };
  const listeners = new Map();
  const model = {
    get: (key) => state[key],
    set: (key, value) => {
      if (state[key] === value) return;
      state[key] = value;
      for (const fn of listeners.get(`change:${key}`) || []) fn();
    },
    save_changes: () => {},
    on: (name, fn) => listeners.set(name, [...(listeners.get(name) || []), fn]),
    off: (name, fn) => listeners.set(name, (listeners.get(name) || []).filter((f) => f !== fn)),
  };
  if (!document.getElementById("autograd-widget-css")) {
    const style = document.createElement("style");
    style.id = "autograd-widget-css";
    style.textContent = data.css;
    document.head.appendChild(style);
  }
  const url = URL.createObjectURL(new Blob([data.esm], { type: "text/javascript" }));
  import(url).then(({ default: widget }) => {
    const el = document.createElement("div");
    el.className = "autograd-inline";
    host.insertBefore(el, staticParts[0] || null);
    widget.render({ model, el });
    for (const part of staticParts) part.style.display = "none";
  }).catch((error) => {
    console.warn("micrograd-magics: the interactive graph could not start; the static one stays", error);
  }).finally(() => URL.revokeObjectURL(url));
}
