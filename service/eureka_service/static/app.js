/* Eureka dashboard: job table and job page over the job service's REST API.
 * Every value from the API reaches the page through textContent (never innerHTML): responses are
 * model output and may hold markup. Live updates by polling. Charts: uPlot (vendored). */
"use strict";

(function () {
  const POLL_MS = 4000;
  const MAX_POINTS = 2000; // per series; the service downsamples longer runs
  const PHASES = ["Pending", "Initializing", "Running", "Succeeded", "Failed", "Suspended"];
  const COLORS = ["#3b5bdb", "#2b8a3e", "#e67700", "#c92a2a", "#7048e8", "#0c8599"];
  // Chart panels: title and the series they draw (missing series are left out).
  const PANELS = [
    { id: "rewards", title: "Rewards", series: ["reward/total", "reward/accuracy", "reward/format", "reward/repetition"] },
    { id: "response-length", title: "Response length (tokens)", series: ["response_length/mean"] },
    { id: "pass-rate", title: "Filter pass rate", series: ["filter/pass_rate"] },
    { id: "reflection", title: "Reflection-word rate (\u201caha\u201d)", series: ["reflection/rate"] },
    { id: "kl", title: "KL divergence", series: ["policy/kl", "policy/approx_kl"] },
    { id: "entropy", title: "Entropy", series: ["policy/entropy"] },
    { id: "clip", title: "Clip fraction", series: ["policy/clip_fraction"] },
    { id: "timings", title: "Phase timings (s)", series: ["time/generate", "time/score", "time/filter", "time/advantages", "time/update", "time/sync"] },
    { id: "lr", title: "Learning rate", series: ["lr"] },
  ];

  // Whole-number tick spacings for the step axis (uPlot would otherwise tick at 1.5, 2.5, ...).
  const STEP_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
  const $ = (id) => document.getElementById(id);
  const state = { jobs: [], charts: {}, timer: null, route: null, writable: false, job: null };

  /** A DOM element; string children become text nodes (never parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { Accept: "application/json" } });
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      throw new Error(`${path}: ${resp.status} ${detail}`);
    }
    return resp.json();
  }

  function showError(err) {
    const box = $("error");
    if (err) { box.textContent = String(err.message || err); box.hidden = false; }
    else { box.hidden = true; box.textContent = ""; }
  }

  function fmt(value, digits = 3) {
    if (value === null || value === undefined || Number.isNaN(value)) return "\u2013";
    if (typeof value !== "number") return String(value);
    if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential(1);
    return Number(value.toFixed(digits)).toString();
  }

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "\u2013";
    const s = Math.floor(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m`;
    if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
  }

  function phaseBadge(phase) {
    return el("span", { class: `phase phase-${PHASES.includes(phase) ? phase : "other"}` }, phase);
  }

  function stamp() { $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`; }

  /* ---------- job table ---------- */

  function fillSelect(select, values) {
    const current = select.value;
    const wanted = ["", ...values];
    const have = Array.from(select.options).map((o) => o.value);
    if (JSON.stringify(have) === JSON.stringify(wanted)) return;
    select.replaceChildren(...wanted.map((v) => el("option", { value: v }, v || "all")));
    select.value = wanted.includes(current) ? current : "";
  }

  function renderJobs() {
    const phase = $("filter-phase").value;
    const namespace = $("filter-namespace").value;
    const text = $("filter-text").value.trim().toLowerCase();
    fillSelect($("filter-namespace"), [...new Set(state.jobs.map((j) => j.namespace))].sort());
    const rows = state.jobs.filter((j) =>
      (!phase || j.phase === phase) && (!namespace || j.namespace === namespace) &&
      (!text || j.name.toLowerCase().includes(text)));
    $("jobs-body").replaceChildren(...rows.map(jobRow));
    $("jobs-empty").hidden = rows.length > 0;
    $("jobs-empty").textContent = state.jobs.length ? "No job matches the filters." : "No jobs yet.";
  }

  function jobRow(job) {
    const href = `#/jobs/${encodeURIComponent(job.namespace)}/${encodeURIComponent(job.name)}`;
    const total = job.totalSteps || 0;
    const pct = total ? Math.min(100, (100 * job.step) / total) : 0;
    const bar = el("span");
    bar.style.width = `${pct}%`;
    const row = el("tr", { dataset: { namespace: job.namespace, name: job.name } },
      el("td", {}, job.namespace),
      el("td", {}, el("a", { href }, job.name)),
      el("td", {}, phaseBadge(job.phase)),
      el("td", {}, el("div", { class: "progress" }, el("div", { class: "bar" }, bar),
        el("small", {}, total ? `${job.step} / ${total}` : `${job.step}`))),
      el("td", { class: "num" }, fmt(job.accuracy)),
      el("td", { class: "num", title: job.created || "" }, fmtAge(job.ageSeconds)));
    row.addEventListener("click", (event) => { if (event.target.tagName !== "A") location.hash = href; });
    return row;
  }

  async function refreshJobs() {
    state.jobs = await api("/api/jobs");
    renderJobs();
  }

  /* ---------- job page ---------- */

  function card(label, value) {
    return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  }

  function renderDetail(job) {
    state.job = job;
    const suspended = Boolean(((job.spec || {}).runPolicy || {}).suspend);
    $("job-actions").hidden = !state.writable;
    $("action-suspend").hidden = suspended;
    $("action-resume").hidden = !suspended;
    $("job-ns").textContent = job.namespace;
    $("job-name").textContent = job.name;
    $("job-title").textContent = job.name;
    document.title = `${job.name} \u00b7 Eureka`;
    $("job-phase").replaceWith(Object.assign(phaseBadge(job.summary.phase), { id: "job-phase" }));
    const s = job.summary, progress = job.status.progress || {}, metrics = job.status.metrics || {};
    $("job-cards").replaceChildren(
      card("Step", s.totalSteps ? `${s.step} / ${s.totalSteps}` : String(s.step)),
      card("Accuracy reward", fmt(s.accuracy)),
      card("Total reward", fmt(metrics["reward/total"])),
      card("Samples seen", progress.samplesSeen !== undefined ? String(progress.samplesSeen) : "\u2013"),
      card("Last checkpoint", progress.lastCheckpointStep !== undefined && progress.lastCheckpointStep !== null ? `step ${progress.lastCheckpointStep}` : "\u2013"),
      card("Age", fmtAge(s.ageSeconds)));
    renderTable("conditions", job.conditions, (c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime], "No conditions.");
    renderTable("events", job.events, (e) => [e.type, e.reason, e.message, e.count, e.lastTimestamp], "No events.");
    $("job-spec").textContent = JSON.stringify(job.spec, null, 2);
  }

  function renderTable(id, items, cells, emptyText) {
    const body = $(id).tBodies[0];
    if (!items || !items.length) {
      body.replaceChildren(el("tr", {}, el("td", { class: "none", colspan: 5 }, emptyText)));
      return;
    }
    body.replaceChildren(...items.map((item) => el("tr", {},
      ...cells(item).map((v, i) => el("td", { class: i === 3 && id === "events" ? "num" : null }, v ?? "")))));
  }

  function renderSamples(samples) {
    const nodes = samples.slice(0, 6).map((s) => {
      const rewards = Object.entries(s.rewards || {}).map(([k, v]) =>
        el("span", { class: `chip ${k === "accuracy" ? (v > 0 ? "good" : "bad") : ""}` }, `${k} ${fmt(v)}`));
      const aha = /\b(wait|re-?check|double[- ]check|verify|re-?evaluate|reconsider|rethink|let me check|mistake|hmm)\b/i.test(s.response || "");
      return el("article", { class: "sample" },
        el("div", { class: "sample-head" }, el("span", { class: "chip" }, `step ${s.step}`), rewards,
          aha ? el("span", { class: "chip aha" }, "reflection") : null),
        el("div", { class: "field" }, "Prompt"), el("pre", { class: "prompt" }, s.prompt || ""),
        el("div", { class: "field" }, "Response"), el("pre", { class: "response" }, s.response || ""),
        s.answer ? el("div", { class: "field" }, "Answer") : null,
        s.answer ? el("pre", { class: "answer" }, s.answer) : null);
    });
    $("samples").replaceChildren(...(nodes.length ? nodes : [el("p", { class: "empty" }, "No samples yet.")]));
  }

  /** uPlot's aligned data for a panel: x = union of steps, one y array per present series. */
  function panelData(panel, series) {
    const names = panel.series.filter((n) => series[n] && series[n].steps.length);
    if (!names.length) return null;
    const tables = names.map((n) => [series[n].steps, series[n].values]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    return { names, data };
  }

  /** y range: flat series get a sensible band instead of uPlot's 0..100. */
  function yRange(u, min, max) {
    if (min === null || max === null) return [0, 1];
    if (min === max) return min === 0 ? [0, 1] : [min - Math.abs(min) * 0.5, max + Math.abs(max) * 0.5];
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  function chartOptions(panel, names, width) {
    return {
      width, height: 220,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: false }, y: { range: yRange } },
      axes: [{ label: "step", size: 36, grid: { stroke: "#eef0f4" }, incrs: STEP_INCRS },
             { size: 64, grid: { stroke: "#eef0f4" }, values: (u, ticks) => ticks.map((t) => fmt(t, 4)) }],
      series: [{ label: "step" }, ...names.map((name, i) => ({
        label: name, stroke: COLORS[i % COLORS.length], width: 1.6, spanGaps: true,
        points: { show: false }, value: (u, v) => fmt(v, 4) }))],
    };
  }

  /** Every series no fixed panel draws, selectable in the last panel. */
  function explorerPanel(series) {
    const shown = new Set(PANELS.flatMap((p) => p.series));
    const others = Object.keys(series).filter((n) => !shown.has(n)).sort();
    let select = $("explore-metric");
    if (!select) {
      select = el("select", { id: "explore-metric", "aria-label": "metric" });
      select.addEventListener("change", () => { state.explore = select.value; tick(); });
    }
    const have = Array.from(select.options).map((o) => o.value);
    if (JSON.stringify(have) !== JSON.stringify(others)) {
      select.replaceChildren(...others.map((n) => el("option", { value: n }, n)));
    }
    if (!others.includes(state.explore)) state.explore = others[0];
    select.value = state.explore || "";
    return { id: "explore", title: "Other metrics", control: select, series: state.explore ? [state.explore] : [] };
  }

  function renderCharts(series) {
    const grid = $("charts");
    for (const panel of [...PANELS, explorerPanel(series)]) {
      let box = grid.querySelector(`[data-panel="${panel.id}"]`);
      if (!box) {
        box = el("div", { class: "chart", dataset: { panel: panel.id } }, el("h3", {}, panel.title, panel.control || null), el("div", { class: "plot" }));
        grid.append(box);
      }
      const plot = box.querySelector(".plot");
      const built = panelData(panel, series);
      const existing = state.charts[panel.id];
      if (!built) {
        if (existing) { existing.destroy(); delete state.charts[panel.id]; }
        box.dataset.points = "0";
        plot.replaceChildren(el("div", { class: "nodata" }, "no data yet"));
        continue;
      }
      box.dataset.points = String(built.data[0].length);
      box.dataset.series = built.names.join(",");
      if (existing && existing.eurekaNames === built.names.join(",")) {
        existing.setData(built.data);
        continue;
      }
      if (existing) existing.destroy();
      plot.replaceChildren();
      const chart = new uPlot(chartOptions(panel, built.names, Math.max(300, plot.clientWidth || 380)), built.data, plot);
      chart.eurekaNames = built.names.join(",");
      state.charts[panel.id] = chart;
    }
  }

  function resizeCharts() {
    for (const id of Object.keys(state.charts)) {
      const plot = document.querySelector(`[data-panel="${id}"] .plot`);
      if (plot && plot.clientWidth) state.charts[id].setSize({ width: plot.clientWidth, height: 220 });
    }
  }

  async function refreshJob(namespace, name) {
    const base = `/api/jobs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
    const [job, metrics, samples] = await Promise.all([api(base), api(`${base}/metrics?maxPoints=${MAX_POINTS}`), api(`${base}/samples`)]);
    renderDetail(job);
    renderCharts(metrics.series);
    renderSamples(samples.samples);
  }

  /* ---------- writes (suspend, resume, delete): need a bearer token ---------- */

  function notice(text, bad) {
    const box = $("action-result");
    box.textContent = text;
    box.className = bad ? "notice bad" : "notice";
    box.hidden = !text;
  }

  async function act(verb) {
    const job = state.job;
    if (!job) return;
    const token = $("token").value.trim() || sessionStorage.getItem("eureka-token") || "";
    if (!token) { notice("Enter a bearer token first (printed by `eureka serve`, or your Kubernetes token).", true); return; }
    if (verb === "delete" && !window.confirm(`Delete RLJob ${job.namespace}/${job.name}?`)) return;
    const base = `/api/jobs/${encodeURIComponent(job.namespace)}/${encodeURIComponent(job.name)}`;
    const resp = await fetch(verb === "delete" ? base : `${base}/${verb}`, {
      method: verb === "delete" ? "DELETE" : "POST",
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    });
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      notice(`${verb} failed: ${resp.status} ${detail}`, true);
      return;
    }
    sessionStorage.setItem("eureka-token", token);  // this tab only, gone when it closes
    $("token").value = "";
    notice(`${verb === "delete" ? "Deleted" : verb === "suspend" ? "Suspended" : "Resumed"} ${job.namespace}/${job.name}.`, false);
    if (verb === "delete") { state.keepNotice = true; location.hash = "#/"; }
    else await tick();
  }

  /* ---------- routing and polling ---------- */

  function parseRoute() {
    const match = location.hash.match(/^#\/jobs\/([^/]+)\/([^/]+)$/);
    return match ? { view: "job", namespace: decodeURIComponent(match[1]), name: decodeURIComponent(match[2]) } : { view: "jobs" };
  }

  async function tick() {
    const route = state.route;
    try {
      if (route.view === "job") await refreshJob(route.namespace, route.name);
      else await refreshJobs();
      showError(null);
      stamp();
    } catch (err) {
      showError(err);
    }
  }

  function navigate() {
    clearTimeout(state.timer);
    state.route = parseRoute();
    const onJob = state.route.view === "job";
    $("jobs-view").hidden = onJob;
    $("job-view").hidden = !onJob;
    if (!state.keepNotice) notice("", false);
    state.keepNotice = false;
    state.job = null;
    if (!onJob) {
      document.title = "Eureka \u00b7 RL jobs";
      for (const chart of Object.values(state.charts)) chart.destroy();
      state.charts = {};
      $("charts").replaceChildren();
    }
    const loop = async () => { await tick(); state.timer = setTimeout(loop, POLL_MS); };
    loop();
  }

  async function init() {
    fillSelect($("filter-phase"), PHASES);
    for (const id of ["filter-phase", "filter-namespace"]) $(id).addEventListener("change", renderJobs);
    $("filter-text").addEventListener("input", renderJobs);
    window.addEventListener("hashchange", navigate);
    for (const verb of ["suspend", "resume", "delete"]) {
      $(`action-${verb}`).addEventListener("click", () => act(verb).catch((err) => notice(String(err), true)));
    }
    let pending = null;
    window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(resizeCharts, 150); });
    try {
      const info = await api("/api");
      state.writable = info.writable;
      $("backend").textContent = info.writable ? info.backend : `${info.backend} \u00b7 read-only`;
    } catch (err) { showError(err); }
    navigate();
  }

  init();
})();
