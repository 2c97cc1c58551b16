// A Dataflow job's page: the pipeline graph (dagre, top to bottom), the selected step's info,
// throughput charts (uPlot) and job logs, all kept current by the page's SSE stream.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("job-data").textContent);
  const nodes = data.nodes;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const expanded = new Set();
  let counts = data.counts || {};
  let wall = data.wall || {};
  let summary = data.summary;
  let selected = null;
  const fmt = new Intl.NumberFormat("en-US");

  // ---- graph --------------------------------------------------------------------------------
  const BOX_W = 250, BOX_H = 62;

  function ancestors(node) {
    const out = [];
    for (let p = byId.get(node.parent); p; p = byId.get(p.parent)) out.unshift(p);
    return out;
  }
  const isOpen = (n) => n.composite && expanded.has(n.id);
  const visible = (n) => ancestors(n).every((a) => expanded.has(a.id));
  // The box that stands for a step: itself, or its outermost collapsed composite.
  function representative(id) {
    const node = byId.get(id);
    if (!node) return null;
    for (const c of [...ancestors(node), node]) if (!isOpen(c)) return c.id;
    return null;  // an expanded composite is a frame, not a box: its parts carry the edges
  }

  function edges(boxes) {
    const producer = new Map();
    for (const n of nodes) for (const pc of n.outputs || []) producer.set(pc, n.id); // deepest wins
    const out = new Map();
    for (const n of nodes) {
      for (const pc of n.inputs || []) {
        const from = producer.has(pc) ? representative(producer.get(pc)) : null;
        const to = representative(n.id);
        if (!from || !to || from === to) continue;
        if (ancestors(byId.get(to)).some((a) => a.id === from)) continue;
        if (ancestors(byId.get(from)).some((a) => a.id === to)) continue;
        out.set(`${from}\u0000${to}`, [from, to]);
      }
    }
    if (out.size === 0) { // no input information: pipeline order is the best we know
      for (let i = 1; i < boxes.length; i++) out.set(i, [boxes[i - 1].id, boxes[i].id]);
    }
    return [...out.values()];
  }

  function stepState(node) {
    const n = counts[node.id];
    switch (summary.state) {
      case "JOB_STATE_DONE": return ["Succeeded", "ok"];
      case "JOB_STATE_FAILED": return ["Failed", "fail"];
      case "JOB_STATE_CANCELLED": case "JOB_STATE_CANCELLING": return ["Cancelled", "warn"];
      case "JOB_STATE_RUNNING": return n ? ["Running", "run"] : ["Not started", "idle"];
      default: return ["Not started", "idle"];
    }
  }

  function countText(node) {
    const n = counts[node.id];
    return n === undefined ? "—" : fmt.format(n);
  }

  // A step's wall time (start + process + finish msecs, parts included), written as the CLI
  // writes it: 0.4 s, 12 s, 3 min 5 s, 1 h 2 min.
  function wallText(node) {
    const ms = wall[node.id];
    if (ms === undefined) return "—";
    const s = ms / 1000;
    if (s < 10) return `${s.toFixed(1)} s`;
    const whole = Math.round(s);
    if (whole < 60) return `${whole} s`;
    const m = Math.floor(whole / 60);
    if (m < 60) return `${m} min ${whole % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c) e.appendChild(c);
    return e;
  }

  function draw() {
    const host = document.getElementById("graph");
    host.replaceChildren();
    if (!nodes.length || !window.dagre) return;
    const boxes = nodes.filter((n) => visible(n) && !isOpen(n));
    const clusters = nodes.filter((n) => visible(n) && isOpen(n));
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "TB", nodesep: 36, ranksep: 46, marginx: 40, marginy: 32 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const c of clusters) g.setNode(c.id, { label: c.label });
    for (const b of boxes) g.setNode(b.id, { width: BOX_W, height: BOX_H });
    for (const n of [...boxes, ...clusters]) if (n.parent && expanded.has(n.parent)) g.setParent(n.id, n.parent);
    const links = edges(boxes);
    for (const [a, b] of links) g.setEdge(a, b);
    try {
      dagre.layout(g);
    } catch (err) {
      host.replaceChildren(el("p", { class: "alert", role: "alert", text: `The graph could not be laid out: ${err.message}` }));
      return;
    }
    const size = g.graph();
    host.style.width = `${size.width}px`;
    host.style.height = `${size.height}px`;

    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", size.width); svg.setAttribute("height", size.height);
    svg.setAttribute("aria-hidden", "true");
    svg.innerHTML = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a0"/></marker></defs>';
    for (const [a, b] of links) {
      const pts = g.edge(a, b).points;
      const path = document.createElementNS(NS, "path");
      path.setAttribute("d", pts.map((p, i) => `${i ? "L" : "M"}${p.x},${p.y}`).join(" "));
      path.setAttribute("class", "edge");
      path.setAttribute("marker-end", "url(#arrow)");
      svg.appendChild(path);
    }
    host.appendChild(svg);

    for (const c of clusters) {
      const box = g.node(c.id);
      const pad = 8;
      const div = el("div", { class: "cluster", "data-step": c.id });
      Object.assign(div.style, { left: `${box.x - box.width / 2 - pad}px`, top: `${box.y - box.height / 2 - pad}px`,
        width: `${box.width + 2 * pad}px`, height: `${box.height + 2 * pad}px` });
      div.append(toggle(c), el("span", { class: "cluster-label", text: c.label }));
      host.appendChild(div);
    }
    for (const n of boxes) {
      const box = g.node(n.id);
      const [label, cls] = stepState(n);
      const main = el("button", { class: "step-main", type: "button", "aria-pressed": String(selected === n.id),
        "aria-label": `${n.id}: ${label}, ${countText(n)} elements added, wall time ${wallText(n)}` },
        el("span", { class: "step-name", text: n.label, title: n.id }),
        el("span", { class: "step-meta" },
          el("span", { class: `step-state state-${cls}`, text: label }),
          el("span", { class: "step-count", text: countText(n) }),
          el("span", { class: "muted", text: " elements" }),
          el("span", { class: "step-wall muted", text: wallText(n), title: "Wall time" })));
      main.addEventListener("click", () => select(n.id));
      const div = el("div", { class: `step step-${cls}${selected === n.id ? " selected" : ""}`, "data-step": n.id }, main);
      if (n.composite) div.appendChild(toggle(n));
      Object.assign(div.style, { left: `${box.x - BOX_W / 2}px`, top: `${box.y - BOX_H / 2}px`,
        width: `${BOX_W}px`, height: `${BOX_H}px` });
      host.appendChild(div);
    }
  }

  function toggle(node) {
    const open = expanded.has(node.id);
    const b = el("button", { class: "step-toggle", type: "button", "aria-expanded": String(open),
      "aria-label": `${open ? "Collapse" : "Expand"} ${node.id}`, title: open ? "Collapse" : "Expand",
      text: open ? "−" : "+" });
    b.addEventListener("click", () => {
      if (open) { expanded.delete(node.id); for (const n of nodes) if (n.id.startsWith(node.id + "/")) expanded.delete(n.id); }
      else expanded.add(node.id);
      draw();
      const again = document.querySelector(`[data-step="${CSS.escape(node.id)}"] .step-toggle`);
      if (again) again.focus();
    });
    return b;
  }

  function refreshBoxes() {
    for (const div of document.querySelectorAll("#graph .step")) {
      const node = byId.get(div.dataset.step);
      const [label, cls] = stepState(node);
      div.className = `step step-${cls}${selected === node.id ? " selected" : ""}`;
      const state = div.querySelector(".step-state");
      state.textContent = label; state.className = `step-state state-${cls}`;
      div.querySelector(".step-count").textContent = countText(node);
      div.querySelector(".step-wall").textContent = wallText(node);
      div.querySelector(".step-main").setAttribute("aria-label", `${node.id}: ${label}, ${countText(node)} elements added, wall time ${wallText(node)}`);
    }
    if (selected) showStep(selected);
  }

  // ---- selected step ------------------------------------------------------------------------
  function producerName(pc) {
    let name = null;
    for (const n of nodes) if ((n.outputs || []).includes(pc)) name = n.id;
    return name ? `${name} (${pc})` : pc;
  }

  function showStep(id) {
    const node = byId.get(id);
    const dl = document.getElementById("step-details");
    document.getElementById("step-empty").hidden = true;
    dl.hidden = false;
    const rows = [
      ["Name", node.id], ["Kind", node.kind || "—"], ["Status", stepState(node)[0]],
      ["Elements added", countText(node)],
      ["Input collections", (node.inputs || []).map(producerName).join("\n") || "—"],
      ["Output collections", (node.outputs || []).join("\n") || "—"],
      ["Wall time", wallText(node)],
    ];
    if (node.composite) rows.push(["Parts", nodes.filter((n) => n.parent === id).map((n) => n.label).join(", ")]);
    dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, class: k.includes("collections") ? "mono small pre" : "" })]));
  }

  function select(id) {
    selected = id;
    for (const div of document.querySelectorAll("#graph .step")) {
      const on = div.dataset.step === id;
      div.classList.toggle("selected", on);
      div.querySelector(".step-main").setAttribute("aria-pressed", String(on));
    }
    showStep(id);
  }

  // ---- metrics ------------------------------------------------------------------------------
  const series = nodes.filter((n) => !n.parent);  // top-level steps: the ones users named
  const history = { t: [], rates: series.map(() => []) };
  let lastSample = null;
  let chart = null;
  const palette = ["#1a5fb4", "#c01c28", "#26a269", "#e66100", "#613583", "#1c71d8", "#865e3c", "#2ec27e", "#a51d2d", "#5e5c64"];

  function sample() {
    const now = Date.now() / 1000;
    const snapshot = series.map((n) => counts[n.id] || 0);
    if (lastSample) {
      const dt = Math.max(now - lastSample.t, 0.001);
      history.t.push(now);
      series.forEach((_, i) => history.rates[i].push(Math.max(0, (snapshot[i] - lastSample.v[i]) / dt)));
      if (history.t.length > 900) { history.t.shift(); history.rates.forEach((r) => r.shift()); }
    }
    lastSample = { t: now, v: snapshot };
    if (chart) chart.setData([history.t, ...history.rates]);
  }

  function makeChart() {
    const host = document.getElementById("throughput-chart");
    if (chart || !window.uPlot || host.offsetWidth === 0) return;
    chart = new uPlot({
      width: host.offsetWidth, height: 280,
      series: [{}, ...series.map((n, i) => ({ label: n.label, stroke: palette[i % palette.length], width: 2,
        value: (u, v) => (v == null ? "—" : `${fmt.format(Math.round(v))}/s`) }))],
      axes: [{}, { label: "elements/sec", size: 70 }],
      scales: { x: { time: true } },
    }, [history.t, ...history.rates], host);
  }

  function renderTotals() {
    const body = document.querySelector("#step-totals tbody");
    body.replaceChildren(...series.map((n, i) => {
      const rates = history.rates[i];
      const latest = rates.length ? `${fmt.format(Math.round(rates[rates.length - 1]))}/s` : "—";
      return el("tr", {}, el("td", { text: n.id }), el("td", { class: "num", text: countText(n) }),
        el("td", { class: "num", text: wallText(n) }), el("td", { class: "num", text: latest }));
    }));
    const custom = data.custom || [];
    document.getElementById("custom-empty").hidden = custom.length > 0;
    document.querySelector("#custom-counters tbody").replaceChildren(...custom.map((c) => el("tr", { "data-counter": c.name },
      el("td", { class: "mono", text: c.name }), el("td", { class: "mono small", text: c.namespace || "—" }),
      el("td", { text: c.step || "job" }), el("td", { class: "num", text: metricValue(c.value) }))));
    const counters = data.counters || [];
    document.getElementById("counters-empty").hidden = counters.length > 0;
    document.querySelector("#counters tbody").replaceChildren(...counters.map((c) => el("tr", {},
      el("td", { class: "mono", text: c.name }), el("td", { text: c.step || "job" }),
      el("td", { class: "num", text: metricValue(c.value) }))));
  }

  // A counter's number, or a distribution as Dataflow's console lists it.
  function metricValue(v) {
    if (typeof v === "number") return fmt.format(v);
    if (v && typeof v === "object" && "count" in v) {
      return ["count", "sum", "min", "max", "mean"].filter((k) => k in v)
        .map((k) => `${k} ${fmt.format(Number(v[k]))}`).join(", ");
    }
    return JSON.stringify(v);
  }

  // ---- logs ---------------------------------------------------------------------------------
  const ORDER = ["JOB_MESSAGE_DEBUG", "JOB_MESSAGE_DETAILED", "JOB_MESSAGE_BASIC", "JOB_MESSAGE_WARNING", "JOB_MESSAGE_ERROR"];
  const SEVERITY = { JOB_MESSAGE_DEBUG: "Debug", JOB_MESSAGE_DETAILED: "Detailed", JOB_MESSAGE_BASIC: "Info",
    JOB_MESSAGE_WARNING: "Warning", JOB_MESSAGE_ERROR: "Error" };
  const importance = document.getElementById("importance");

  function addMessages(messages) {
    const body = document.querySelector("#job-messages tbody");
    for (const m of messages) {
      const level = m.messageImportance || "JOB_MESSAGE_BASIC";
      const row = el("tr", { "data-importance": level },
        el("td", { class: "nowrap", text: (m.time || "").replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") }),
        el("td", { class: `sev sev-${level}`, text: SEVERITY[level] || level }),
        el("td", { class: "pre", text: m.messageText || "" }));
      body.appendChild(row);
    }
    filterMessages();
  }

  function filterMessages() {
    const min = ORDER.indexOf(importance.value);
    let shown = 0;
    for (const row of document.querySelectorAll("#job-messages tbody tr")) {
      const show = ORDER.indexOf(row.dataset.importance) >= min;
      row.hidden = !show;
      if (show) shown++;
    }
    document.getElementById("messages-empty").hidden = shown > 0;
  }
  importance.addEventListener("change", filterMessages);

  // ---- live ---------------------------------------------------------------------------------
  function applySummary(s) {
    summary = s;
    const pill = document.getElementById("job-state");
    pill.className = `state state-${s.stateClass}`;
    const label = pill.querySelector(".label");
    if (label.textContent !== s.stateLabel) label.textContent = s.stateLabel;  // announce changes only
    document.getElementById("info-state").textContent = s.stateLabel;
    document.getElementById("info-elapsed").textContent = s.elapsed;
    document.getElementById("cancel-job").hidden = s.terminal;
  }

  function connect() {
    if (summary.terminal) return;
    const source = new EventSource(data.events);
    source.addEventListener("job", (ev) => { applySummary(JSON.parse(ev.data)); refreshBoxes(); sample(); renderTotals(); });
    source.addEventListener("counts", (ev) => {
      const body = JSON.parse(ev.data);
      counts = body.counts; wall = body.wall || {}; data.counters = body.counters; data.custom = body.custom;
      refreshBoxes(); renderTotals();
    });
    source.addEventListener("messages", (ev) => addMessages(JSON.parse(ev.data)));
    source.addEventListener("apierror", (ev) => window.cloudlet.toast(JSON.parse(ev.data).message));
    source.addEventListener("end", () => source.close());
    window.addEventListener("pagehide", () => source.close());
  }

  document.addEventListener("tabshown", (ev) => { if (ev.target.id === "tab-metrics") makeChart(); });
  window.addEventListener("resize", () => { if (chart) chart.setSize({ width: document.getElementById("throughput-chart").offsetWidth, height: 280 }); });

  draw();
  addMessages(data.messages || []);
  renderTotals();
  lastSample = { t: Date.now() / 1000, v: series.map((n) => counts[n.id] || 0) };
  connect();
})();
