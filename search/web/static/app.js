// mixer serve: renders the JSON documents of /api into the page, and refreshes them while
// a driver runs. Every string from the store reaches the page as a text node (el() below),
// never as HTML, so a hostile domain or search name shows as text.
"use strict";

const REFRESH_MS = Math.max(2000, Number(document.body.dataset.refreshMs) || 2000);
const ROWS_SHOWN = 500;
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#1f77b4", "#17becf"];
const SVG_NS = "http://www.w3.org/2000/svg";

// ------------------------------------------------------------------ building the DOM

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Significant digits per column: at least 4, more where the column's values need them to differ (at most 6).
function digitsFor(values) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (finite.length < 2) return 4;
  const sorted = [...new Set(finite)].sort((a, b) => a - b);
  let gap = Infinity;
  for (let i = 1; i < sorted.length; i++) gap = Math.min(gap, sorted[i] - sorted[i - 1]);
  const scale = Math.max(...finite.map(Math.abs));
  if (!Number.isFinite(gap) || gap === 0 || scale === 0) return 4;
  return Math.min(6, Math.max(4, Math.ceil(Math.log10(scale / gap)) + 1));
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return "–";
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  return value.toPrecision(digits);   // 2.900, not 2.9: a column's digits say its precision
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch (_) { /* a proxy's or the gate's page: said below */ }
  if (!response.ok || body === null) throw new Error((body && body.error) || `${response.status} ${text.slice(0, 120)}`);
  return body;
}

function replace(id, ...children) {
  const node = document.getElementById(id);
  if (node) node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
}

function setStatus(text, failed) {
  const node = document.getElementById("updated");
  node.textContent = text;
  node.className = failed ? "failed" : "";
}

// ------------------------------------------------------------------ tables

// What a cell shows, as text (the filter matches what the user sees).
function shownText(column, row) {
  if (column.text) return column.text(row);
  if (column.cell) {
    const cell = column.cell(row);
    return cell instanceof Node ? cell.textContent : String(cell ?? "");
  }
  return fmt(column.value(row), column.digits);
}

// A sortable, filterable table. columns: [{key, label, value(row) -> sortable, cell(row) -> node|text}]
function sortableTable(id, columns, rows, state) {
  const filter = (state.filter || "").toLowerCase();
  let shown = rows;
  if (filter) {
    shown = rows.filter((row) => columns.some((c) => shownText(c, row).toLowerCase().includes(filter)));
  }
  if (state.sort) {
    const column = columns.find((c) => c.key === state.sort);
    if (column) {
      const sign = state.descending ? -1 : 1;
      shown = [...shown].sort((a, b) => {
        const x = column.value(a), y = column.value(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * sign;
      });
    }
  }
  const sortBy = (key) => {
    state.descending = state.sort === key ? !state.descending : false;
    state.sort = key;
    state.render();
  };
  const head = el("tr", {}, columns.map((c) => el("th", {
    "data-key": c.key, class: state.sort === c.key ? (state.descending ? "sorted desc" : "sorted asc") : "",
    tabindex: 0, onclick: () => sortBy(c.key), onkeydown: (e) => { if (e.key === "Enter") sortBy(c.key); },
  }, c.label)));
  const body = shown.slice(0, ROWS_SHOWN).map((row) => el("tr", row.__attrs || {},
    columns.map((c) => el("td", { class: c.className || "" }, c.cell ? c.cell(row) : fmt(c.value(row), c.digits)))));
  const note = shown.length > ROWS_SHOWN ? el("p", { class: "note" },
    `showing ${ROWS_SHOWN} of ${shown.length} rows: filter or sort to see others`) : null;
  return [el("table", { id, class: "data" }, el("thead", {}, head), el("tbody", {}, body)), note,
          el("p", { class: "count", id: `${id}-count` }, `${shown.length} of ${rows.length} rows`)];
}

// ------------------------------------------------------------------ charts

function scale(domain, range) {
  let [d0, d1] = domain;
  if (d0 === d1) { d0 -= 1; d1 += 1; }
  return (v) => range[0] + ((v - d0) / (d1 - d0)) * (range[1] - range[0]);
}

function ticks(lo, hi, n = 5) {
  if (lo === hi) return [lo];
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
  const err = (hi - lo) / n / step;
  const nice = step * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
  const out = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + nice * 1e-9; t += nice) out.push(Number(t.toPrecision(12)));
  return out;
}

// series: [{name, points: [[x, y]], color, line: bool, dots: bool, titles: [string]}]
function lineChart(series, { xLabel, yLabel, width = 640, height = 260 } = {}) {
  const pad = { left: 64, right: 16, top: 12, bottom: 40 };
  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  if (!all.length) return el("p", { class: "note" }, "no points yet");
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x = scale([Math.min(...xs), Math.max(...xs)], [pad.left, width - pad.right]);
  const yLo = Math.min(...ys), yHi = Math.max(...ys), margin = (yHi - yLo) * 0.05 || 0.05;
  const y = scale([yLo - margin, yHi + margin], [height - pad.bottom, pad.top]);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  for (const t of ticks(yLo - margin, yHi + margin)) {
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(t), y2: y(t), class: "grid" }),
      svg("text", { x: pad.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, fmt(t, 4)));
  }
  const [xLo, xHi] = [Math.min(...xs), Math.max(...xs)];
  for (const t of ticks(xLo, xHi)) {
    chart.append(svg("text", { x: x(t), y: height - pad.bottom + 16, "text-anchor": "middle", class: "tick" },
      fmt(t, 4)));
  }
  chart.append(svg("text", { x: (pad.left + width - pad.right) / 2, y: height - 6, "text-anchor": "middle",
    class: "axis" }, xLabel || ""));
  chart.append(svg("text", { x: 12, y: (pad.top + height - pad.bottom) / 2, "text-anchor": "middle", class: "axis",
    transform: `rotate(-90 12 ${(pad.top + height - pad.bottom) / 2})` }, yLabel || ""));
  series.forEach((s, i) => {
    const color = s.color || PALETTE[i % PALETTE.length];
    const points = s.points.filter((p) => p[1] !== null);
    if (s.line !== false && points.length > 1) {
      const d = points.map((p, k) => `${k ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      chart.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2, class: "series" }));
    }
    if (s.dots || points.length === 1) {    // a single point has no line to draw
      points.forEach((p, k) => chart.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: color,
        class: "dot" }, svg("title", {}, s.titles ? s.titles[k] : `${fmt(p[0])}: ${fmt(p[1], 5)}`))));
    }
  });
  const legend = el("div", { class: "legend" }, series.map((s, i) => el("span", {},
    el("i", { style: `background:${s.color || PALETTE[i % PALETTE.length]}` }), s.name)));
  return el("figure", {}, chart, legend);
}

// Viridis-like ramp for the target colour strip (0: best, 1: worst).
function ramp(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const u = Math.min(Math.max(t, 0), 1) * (stops.length - 1), i = Math.min(Math.floor(u), stops.length - 2);
  const f = u - i, c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c.join(",")})`;
}

// One stacked bar per run (its weights), sorted by target (best first), with a strip coloured by target.
function mixtureBars(domains, runs, maximize) {
  if (!runs.length) return el("p", { class: "note" }, "no finished runs yet");
  const sorted = [...runs].sort((a, b) => (maximize ? b.target - a.target : a.target - b.target));
  const width = 640, height = 220, strip = 14, left = 30;
  const w = (width - left) / sorted.length;
  const values = sorted.map((r) => r.target), lo = Math.min(...values), hi = Math.max(...values);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + strip + 24}`, class: "chart mixtures", role: "img" });
  sorted.forEach((run, k) => {
    let top = 0;
    domains.forEach((name, d) => {
      const h = run.weights[d] * height;
      if (h > 0) chart.append(svg("rect", { x: left + k * w, y: top, width: Math.max(w - 0.5, 0.5), height: h,
        fill: PALETTE[d % PALETTE.length] }, svg("title", {}, `${run.id}: ${name} ${fmt(run.weights[d], 3)}`)));
      top += h;
    });
    const t = hi === lo ? 0 : (maximize ? hi - run.target : run.target - lo) / (hi - lo);
    chart.append(svg("rect", { x: left + k * w, y: height + 4, width: Math.max(w - 0.5, 0.5), height: strip,
      fill: ramp(t), class: "target-strip" }, svg("title", {}, `${run.id}: target ${fmt(run.target, 5)}`)));
  });
  chart.append(svg("text", { x: left, y: height + strip + 20, class: "tick" }, `best ${fmt(sorted[0].target, 5)}`),
    svg("text", { x: width, y: height + strip + 20, "text-anchor": "end", class: "tick" },
      `worst ${fmt(sorted[sorted.length - 1].target, 5)}`),
    svg("text", { x: 4, y: height / 2, class: "tick" }, "w"));
  const legend = el("div", { class: "legend" }, domains.map((name, d) => el("span", {},
    el("i", { style: `background:${PALETTE[d % PALETTE.length]}` }), name)));
  return el("figure", {}, chart, legend);
}

function weightBars(mixture) {
  const entries = Object.entries(mixture).sort((a, b) => b[1] - a[1]);
  return el("table", { class: "weights", id: "rec-weights" }, entries.map(([name, w]) => el("tr", {},
    el("td", { class: "domain" }, name), el("td", { class: "num" }, fmt(w, 3)),
    el("td", { class: "bar" }, el("span", { style: `width:${(w * 100).toFixed(1)}%` })))));
}

// ------------------------------------------------------------------ pages

const pages = {};

pages.searches = () => {
  const state = { sort: "created", descending: true, filter: "", data: null };
  state.render = () => {
    const rows = state.data.searches;
    const columns = [
      { key: "name", label: "search", value: (r) => r.name,
        cell: (r) => el("a", { href: `search/${encodeURIComponent(r.name)}` }, r.name) },
      { key: "kind", label: "kind", value: (r) => r.kind },
      { key: "backend", label: "backend", value: (r) => r.backend },
      { key: "target", label: "target", value: (r) => r.target },
      { key: "direction", label: "direction", value: (r) => r.direction },
      { key: "status", label: "status", value: (r) => r.status,
        cell: (r) => el("span", { class: `status ${r.live ? "live" : ""}` }, r.live ? `${r.status} (live)` : r.status) },
      { key: "done", label: "own runs done / budget", value: (r) => r.own_done,
        cell: (r) => (r.budget ? `${r.own_done} / ${r.budget}` : `${r.done} runs`) },
      { key: "best", label: "best", value: (r) => r.best, digits: digitsFor(rows.map((r) => r.best)),
        className: "num" },
      { key: "created", label: "created", value: (r) => r.created },
    ];
    replace("content", sortableTable("searches", columns, rows, state));
  };
  return { url: () => "api/searches", show: (data) => { state.data = data; state.render(); } };
};

pages.search = () => {
  const name = document.body.dataset.search;
  const state = { sort: null, descending: false, filter: "", data: null, curveRun: null, curveRequest: 0 };
  const base = `api/searches/${encodeURIComponent(name)}`;

  function runRows(doc) {
    const r = doc.runs;
    return r.id.map((id, i) => ({ id, role: r.role[i], fidelity: r.fidelity[i], status: r.status[i],
      target: r.target[i], seed: r.seed[i], wall_s: r.wall_s[i], weights: r.weights[i], error: r.error[i],
      get __attrs() { return { "data-run": id, class: state.curveRun === id ? "selected" : "" }; } }));
  }

  function facts(doc) {
    const s = doc.search, p = doc.progress;
    const items = [["kind", s.kind], ["backend", s.backend], ["evaluator", s.evaluator],
      ["target", `${s.target_label} (${s.direction})`], ["status", s.status], ["driver", s.driver],
      ["runs", `${p.runs} (${p.done} done, ${p.running} running, ${p.queued} queued, ${p.failed} failed)`]];
    if (p.budget_text) items.push(["budget", p.budget_text]);
    if (p.cost_text) items.push(["cost", p.cost_text]);
    if (p.target_fidelity) items.push(["target fidelity", p.target_fidelity]);
    if (p.best) items.push(["best", `${fmt(p.best.value, 6)} (${p.best.run})`]);
    if (p.setup) items.push(["setup", p.setup]);
    const share = s.status === "done" ? 1 : p.budget ? Math.min(1, p.own_done / p.budget) : null;
    const bar = share === null ? null : el("div", { class: "progress", title: p.budget_text || "" },
      el("span", { style: `width:${(100 * share).toFixed(1)}%` }));
    return [el("dl", { id: "facts" }, items.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-fact": k }, v)])), bar];
  }

  function recommendation(doc) {
    const rec = doc.recommendation;
    if (!rec) return el("p", { class: "note" }, "no recommendation yet");
    const refs = rec.references.length ? el("div", { class: "scroll" }, el("table", { class: "data", id: "references" },
      el("thead", {}, el("tr", {}, ["role", "runs", "mixture", `mean ${doc.search.target}`, "std", "n"]
        .map((h) => el("th", { class: "plain" }, h)))),
      el("tbody", {}, rec.references.map((r) => el("tr", {},
        el("td", { title: r.runs.join("\n") }, r.role),
        el("td", { title: r.runs.join("\n"), class: "wrap" }, r.n > 1 ? `${r.runs[0]} … (${r.n} runs)` : r.runs[0]),
        el("td", { class: "wrap" }, Object.entries(r.mixture).filter(([, w]) => w > 0)
          .map(([k, w]) => `${k} ${fmt(w, 3)}`).join(", ")),
        el("td", { class: "num" }, fmt(r.mean, 5)), el("td", { class: "num" }, fmt(r.std, 3)),
        el("td", { class: "num" }, r.n)))))) : null;
    return [weightBars(rec.mixture),
      el("ul", { class: "explain" }, rec.lines.map((line) => el("li", {}, line))),
      rec.validation ? el("p", {}, `validation run ${rec.validation.run}: ${fmt(rec.validation.value, 5)}`) : null,
      refs ? [el("h3", {}, "baselines and extra runs"), refs] : null];
  }

  // Built once: a refresh must not take the path template from under the user's fingers.
  function exportsBox(doc) {
    const box = document.getElementById("exports");
    if (!doc.exports.length) {
      if (!box.dataset.formats) replace("exports", el("p", { class: "note" }, "nothing to export until there is a recommendation"));
      return;
    }
    if (box.dataset.formats === doc.exports.join(",")) return;
    box.dataset.formats = doc.exports.join(",");
    const template = el("input", { id: "path-template", type: "text", value: "/data/{name}", size: 32 });
    const said = el("p", { id: "export-error", class: "error" });
    const buttons = doc.exports.map((format) => el("button", { type: "button", "data-format": format,
      onclick: () => download(format, template.value, said) }, format));
    replace("exports", el("label", {}, "path template (megatron, olmo, hf, streaming): ", template),
      el("div", { class: "buttons" }, buttons), said);
  }

  async function download(format, template, said) {
    const q = new URLSearchParams({ format });
    if (!["json", "yaml"].includes(format)) q.set("path_template", template);
    said.textContent = "";
    const response = await fetch(`${base}/export?${q}`, { credentials: "same-origin" });
    if (!response.ok) {
      const text = await response.text();
      let message = text;
      try { message = JSON.parse(text).error; } catch (_) { /* plain text */ }
      said.textContent = message;
      return;
    }
    const disposition = response.headers.get("content-disposition") || "";
    const file = (disposition.match(/filename="([^"]+)"/) || [null, `${name}-${format}.txt`])[1];
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: file });
    document.body.append(link);
    link.click();
    link.remove();
  }

  function schedule(doc) {
    const stages = (doc.schedule && doc.schedule.schedule) || [];
    if (!stages.length) return null;
    const names = Object.keys(stages[0].mixture || {});
    return [el("h2", {}, "schedule (the method's decisions)"), el("table", { class: "data", id: "schedule" },
      el("thead", {}, el("tr", {}, ["start", "tokens", ...names].map((h) => el("th", { class: "plain" }, h)))),
      el("tbody", {}, stages.map((st) => el("tr", {}, el("td", { class: "num" }, fmt(st.start, 3)),
        el("td", { class: "num" }, st.tokens === null || st.tokens === undefined ? "–" : st.tokens.toLocaleString("en")),
        names.map((n) => el("td", { class: "num" }, fmt((st.mixture || {})[n], 3)))))))];
  }

  async function showCurves(runId) {
    state.curveRun = runId;
    const request = ++state.curveRequest;      // a later click wins over an earlier answer
    state.renderRuns();
    replace("curves-title", `loss curves: ${runId}`);
    try {
      const doc = await getJSON(`api/curves?run=${encodeURIComponent(runId)}`);
      if (request !== state.curveRequest) return;
      const series = Object.entries(doc.series).map(([key, points]) => ({ name: key, points }));
      replace("curves", series.length ? lineChart(series, { xLabel: "tokens", yLabel: "loss" })
        : el("p", { class: "note" }, "this run stored no curve"));
    } catch (error) {
      if (request === state.curveRequest) replace("curves", el("p", { class: "error" }, String(error.message)));
    }
  }

  state.render = () => {
    const doc = state.data, rows = runRows(doc);
    replace("title", doc.search.name);
    replace("facts-box", facts(doc));
    const curve = doc.best_curve;
    replace("best-curve", curve.length ? lineChart([
      { name: "run", points: curve.map((c) => [c.n, c.value]), line: false, dots: true, color: "#9aa",
        titles: curve.map((c) => `${c.run}: ${fmt(c.value, 5)}`) },
      { name: "best so far", points: curve.map((c) => [c.n, c.best]), color: "#e15759" }],
    { xLabel: "runs at the target fidelity", yLabel: doc.search.target_label })
      : el("p", { class: "note" }, doc.search.kind === "online" ? "an online run: one run, no search" : "no finished run yet"));
    replace("recommendation", recommendation(doc));
    const atTarget = doc.progress.target_fidelity;     // a multi-fidelity search: the target's runs only
    const own = rows.filter((r) => ["search", "imported"].includes(r.role) && r.status === "done" && r.target !== null
      && (!atTarget || r.fidelity === atTarget));
    replace("mixtures", own.length || doc.search.kind !== "online" ? mixtureBars(doc.domains, own.slice(-2000),
      doc.search.direction === "maximize") : el("p", { class: "note" }, "an online run: see its schedule"));
    exportsBox(doc);
    replace("schedule-box", schedule(doc));
    const digits = digitsFor(rows.map((r) => r.target));
    state.rows = rows;
    state.columns = [
      { key: "id", label: "run", value: (r) => r.id,
        cell: (r) => el("a", { href: `search/${encodeURIComponent(name)}`, class: "run", title: r.id, onclick: (e) => {
          e.preventDefault();   // <base href="/"> would make a fragment link leave the page
          showCurves(r.id);
          document.getElementById("curves-title").scrollIntoView();
        } }, r.id) },
      { key: "role", label: "role", value: (r) => r.role },
      { key: "fidelity", label: "fidelity", value: (r) => r.fidelity },
      { key: "status", label: "status", value: (r) => r.status },
      { key: "target", label: "target", value: (r) => r.target, digits, className: "num" },
      { key: "seed", label: "seed", value: (r) => r.seed, cell: (r) => r.seed ?? "–", className: "num" },
      { key: "wall_s", label: "wall s", value: (r) => r.wall_s, digits: 3, className: "num" },
      ...doc.domains.map((d, k) => ({ key: `w:${d}`, label: d, value: (r) => r.weights[k], digits: 3,
        className: "num" })),
    ];
    if (!document.getElementById("run-filter")) {
      replace("runs-filter", el("input", { id: "run-filter", type: "search", value: state.filter,
        placeholder: "filter runs (id, role, status…)",
        oninput: (e) => { state.filter = e.target.value; state.renderRuns(); } }));
    }
    replace("runs-note", doc.runs_shown < doc.progress.runs
      ? el("p", { class: "note" }, `the first ${doc.runs_shown} of ${doc.progress.runs} runs (mixer sql has them all)`) : null);
    state.renderRuns();
  };
  state.renderRuns = () => replace("runs-table", sortableTable("runs", state.columns, state.rows, state));
  return { url: () => base, show: (data) => { state.data = data; state.render(); } };
};

pages.missing = () => null;

pages.corpus = () => ({
  url: () => "api/corpus",
  show: (doc) => {
    const count = (n) => el("td", { class: "num" }, n.toLocaleString("en"));
    const domains = el("table", { class: "data", id: "domains" },
      el("thead", {}, el("tr", {}, ["domain", "use", "training documents", "training tokens", "held-out documents",
        "held-out tokens"].map((h) => el("th", { class: "plain" }, h)))),
      el("tbody", {}, doc.domains.map((d) => el("tr", {}, el("td", {}, d.name), el("td", {}, d.use),
        count(d.documents), count(d.tokens), count(d.held_out_documents), count(d.held_out_tokens)))));
    const clusterings = doc.clusterings.map((c) => {
      const most = Math.max(...c.clusters.map((k) => k.documents), 1);
      return [el("h2", {}, `clustering ${c.name}`),
        el("p", {}, `${c.documents.toLocaleString("en")} documents, embedder ${c.embedder}; a cluster's documents `
          + "include its domain's held-out ones"),
        el("table", { class: "data clusters" }, el("thead", {}, el("tr", {}, ["cluster", "domain", "documents",
          "", "top terms"].map((h) => el("th", { class: "plain" }, h)))),
        el("tbody", {}, c.clusters.map((k) => el("tr", {}, el("td", { class: "num" }, k.cluster), el("td", {}, k.domain),
          count(k.documents),
          el("td", { class: "bar" }, el("span", { style: `width:${((100 * k.documents) / most).toFixed(1)}%` })),
          el("td", { class: "wrap" }, k.top_terms.join(", "))))))];
    });
    replace("content", el("h2", {}, "domains and eval-only sets"), domains, clusterings);
  },
});

// ------------------------------------------------------------------ refreshing

async function main() {
  const page = pages[document.body.dataset.page]();
  if (!page) return;
  let last = null;
  async function refresh() {
    try {
      const data = await getJSON(page.url());
      const { generated, stale } = data;
      delete data.generated;
      delete data.stale;
      const text = JSON.stringify(data);
      if (text !== last) {
        last = text;
        page.show(data);
      }
      const now = new Date().toLocaleTimeString();
      setStatus(stale ? `the store is busy: showing the read of ${new Date(generated * 1000).toLocaleTimeString()} `
        + `(checked ${now})` : `checked ${now}`, Boolean(stale));
    } catch (error) {
      setStatus(`could not refresh: ${error.message}`, true);
    }
    setTimeout(refresh, REFRESH_MS);
  }
  await refresh();
}

main();
