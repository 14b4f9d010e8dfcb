/* Eureka dashboard: job table, job page and run comparison over the job service's REST API.
 * Every value from the API reaches the page through textContent (never innerHTML): responses are
 * model output and may hold markup. Live updates by polling (ETag: an unchanged answer is a 304);
 * a finished run is not polled. Charts: charts.js over uPlot (vendored). */
"use strict";

(function () {
  const { ChartGrid, panelLines, toCsv, fmt } = window.EurekaCharts;
  const POLL_MS = 4000;
  const MAX_POINTS = 2000; // per series; the service downsamples longer runs
  const SAMPLES_PAGE = 12;
  const PHASES = ["Pending", "Initializing", "Running", "Succeeded", "Failed", "Suspended"];
  const FINISHED = new Set(["Succeeded", "Failed"]);
  const IMAGE_URI = /^data:image\/(jpeg|png);base64,[A-Za-z0-9+/=]+$/;
  // Chart panels: title and the series they draw (missing series are left out).
  const PANELS = [
    { id: "rewards", title: "Rewards", series: ["reward/total", "reward/accuracy", "reward/format", "reward/repetition"] },
    { id: "response-length", title: "Response length (tokens)", series: ["response_length/mean"] },
    { id: "pass-rate", title: "Filter pass rate", series: ["filter/pass_rate"] },
    { id: "reflection", title: "Reflection-word rate (\u201caha\u201d)", series: ["reflection/rate"] },
    { id: "kl", title: "KL divergence", series: ["policy/kl", "policy/approx_kl"] },
    { id: "entropy", title: "Entropy", series: ["policy/entropy"] },
    { id: "clip", title: "Clip fraction", series: ["policy/clip_fraction"] },
    { id: "timings", title: "Phase timings (s)", series: ["time/generate", "time/score", "time/filter", "time/advantages", "time/update", "time/sync", "time/step"] },
    { id: "lr", title: "Learning rate", series: ["lr"] },
  ];

  const $ = (id) => document.getElementById(id);
  const state = {
    jobs: [], timer: null, route: null, writable: false, protectReads: false, job: null,
    grid: new ChartGrid(() => markZoom()), chosen: {}, explore: null, runs: [],
    opts: { smoothing: 0, log: false, outliers: false, x: "step" },
    samples: { step: "", kind: "", limit: SAMPLES_PAGE },
    selected: new Set(), polls: 0,
  };

  /** A DOM element; string children become text nodes (never parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /* ---------- API, tokens and errors ---------- */

  function token() { return sessionStorage.getItem("eureka-token") || ""; }

  /** A readable message from an error body: FastAPI's 422 list, the RLJob problems, or text. */
  function detailText(body, fallback) {
    if (!body || typeof body !== "object") return fallback;
    const parts = [];
    const d = body.detail;
    if (typeof d === "string") parts.push(d);
    else if (Array.isArray(d)) parts.push(...d.map((e) => `${(e.loc || []).filter((p) => p !== "query" && p !== "path").join(".")}: ${e.msg}`));
    else if (d) parts.push(JSON.stringify(d));
    for (const p of body.problems || []) parts.push(`line ${p.line ?? "?"}: ${p.path ? p.path + ": " : ""}${p.message}`);
    return parts.length ? parts.join("\n") : fallback;
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const resp = await fetch(path, { headers });
    if (!resp.ok) {
      let body = null;
      try { body = await resp.json(); } catch (_) { /* not JSON */ }
      if (resp.status === 401) $("read-auth").hidden = false;
      throw new Error(`${path}: ${resp.status} ${detailText(body, resp.statusText)}`);
    }
    return resp.json();
  }

  function showError(err) {
    const box = $("error");
    if (err) { box.textContent = String(err.message || err); box.hidden = false; }
    else { box.hidden = true; box.textContent = ""; }
  }

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "\u2013";
    const s = Math.floor(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m`;
    if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
  }

  function since(iso) {
    const t = Date.parse(iso || "");
    return Number.isNaN(t) ? null : Math.max(0, (Date.now() - t) / 1000);
  }

  function phaseBadge(summary, id) {
    const phase = summary.phase;
    const badge = el("span", { class: `phase phase-${PHASES.includes(phase) ? phase : "other"}`, id }, phase);
    if (summary.stale) {
      badge.className = "phase phase-Stale";
      badge.textContent = "Stale";
      badge.title = `${phase}, but no report since ${summary.lastUpdate}: the trainer may have stopped`;
    }
    return badge;
  }

  function stamp(text) { $("updated").textContent = text || `updated ${new Date().toLocaleTimeString()}`; }

  const jobPath = (ns, name) => `/api/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const jobHash = (ns, name) => `#/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const compareHash = (keys) => `#/compare/${keys.map((k) => k.split("/").map(encodeURIComponent).join("/")).join("/")}`;

  /* ---------- job table ---------- */

  function fillSelect(select, values, labels) {
    const current = select.value;
    const wanted = ["", ...values];
    const have = Array.from(select.options).map((o) => o.value);
    if (JSON.stringify(have) === JSON.stringify(wanted)) return;
    select.replaceChildren(...wanted.map((v, i) => el("option", { value: v }, (labels && labels[i]) || v || "all")));
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
    updateCompareButton();
  }

  function updateCompareButton() {
    const n = state.selected.size;
    $("compare-selected").disabled = n < 2;
    $("compare-selected").textContent = n ? `Compare ${n} runs` : "Compare runs";
  }

  function jobRow(job) {
    const key = `${job.namespace}/${job.name}`;
    const href = jobHash(job.namespace, job.name);
    const total = job.totalSteps || 0;
    const bar = el("span");
    bar.style.width = `${total ? Math.min(100, (100 * job.step) / total) : 0}%`;
    const pick = el("input", { type: "checkbox", class: "pick", "aria-label": `compare ${key}`, checked: state.selected.has(key) });
    pick.addEventListener("change", () => {
      if (pick.checked) state.selected.add(key); else state.selected.delete(key);
      updateCompareButton();
    });
    const row = el("tr", { dataset: { namespace: job.namespace, name: job.name } },
      el("td", { class: "pick-cell" }, pick),
      el("td", { class: "hide-narrow" }, job.namespace),
      el("td", {}, el("a", { href }, job.name)),
      el("td", {}, phaseBadge(job)),
      el("td", {}, el("div", { class: "progress" }, el("div", { class: "bar" }, bar),
        el("small", {}, total ? `${job.step} / ${total}` : `${job.step}`))),
      el("td", { class: "num" }, fmt(job.accuracy, 3)),
      el("td", { class: "num hide-narrow", title: job.created || "" }, fmtAge(job.ageSeconds)));
    row.addEventListener("click", (event) => {
      if (event.target.tagName !== "A" && event.target.tagName !== "INPUT") location.hash = href;
    });
    return row;
  }

  async function refreshJobs() {
    state.jobs = await api("/api/jobs");
    renderJobs();
  }

  /* ---------- job page ---------- */

  function card(label, value, title) {
    return el("div", { class: "card", title }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  }

  /** Seconds per step: the mean of the last 10 `time/step` values (null when not logged). */
  function stepSeconds(series) {
    const s = series["time/step"];
    if (!s || !s.values.length) return null;
    const recent = s.values.slice(-10);
    return recent.reduce((a, b) => a + b, 0) / recent.length;
  }

  function renderDetail(job, series) {
    state.job = job;
    const s = job.summary, progress = job.status.progress || {}, metrics = job.status.metrics || {};
    const suspended = Boolean(((job.spec || {}).runPolicy || {}).suspend);
    $("job-actions").hidden = !state.writable;
    $("action-suspend").hidden = suspended;
    $("action-resume").hidden = !suspended;
    $("job-ns").textContent = job.namespace;
    $("job-name").textContent = job.name;
    $("job-title").textContent = job.name;
    document.title = `${job.name} \u00b7 Eureka`;
    $("job-phase").replaceWith(phaseBadge(s, "job-phase"));
    const perStep = stepSeconds(series);
    const left = s.totalSteps ? s.totalSteps - s.step : null;
    const running = s.phase === "Running" && !s.stale;
    const updated = since(s.lastUpdate);
    $("job-cards").replaceChildren(
      card("Step", s.totalSteps ? `${s.step} / ${s.totalSteps}` : String(s.step)),
      card("Accuracy reward", fmt(s.accuracy, 3)),
      card("Total reward", fmt(metrics["reward/total"], 3)),
      card("Last update", updated === null ? "\u2013" : `${fmtAge(updated)} ago`, s.lastUpdate || ""),
      card("Steps / s", perStep ? fmt(1 / perStep, 3) : "\u2013", perStep ? `${fmt(perStep, 2)} s per step (last 10)` : ""),
      card("ETA", running && perStep && left !== null ? fmtAge(left * perStep) : "\u2013"),
      card("Samples seen", progress.samplesSeen !== undefined ? String(progress.samplesSeen) : "\u2013"),
      card("Last checkpoint", progress.lastCheckpointStep !== undefined && progress.lastCheckpointStep !== null ? `step ${progress.lastCheckpointStep}` : "\u2013"));
    renderTable("conditions", job.conditions, (c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime], "No conditions.");
    renderTable("events", job.events, (e) => [e.type, e.reason, e.message, e.count, e.lastTimestamp], "No events.");
    $("job-spec").textContent = JSON.stringify(job.spec, null, 2);
    const others = state.jobs.filter((j) => `${j.namespace}/${j.name}` !== `${job.namespace}/${job.name}`);
    fillSelect($("compare-with"), others.map((j) => `${j.namespace}/${j.name}`), ["compare with\u2026", ...others.map((j) => `${j.namespace}/${j.name}`)]);
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

  function renderSamples(answer) {
    const step = $("samples-step");
    fillSelect(step, answer.steps.map(String), ["all steps", ...answer.steps.map((s) => `step ${s}`)]);
    step.value = state.samples.step;
    const nodes = answer.samples.map((s) => {
      const rewards = Object.entries(s.rewards || {}).map(([k, v]) =>
        el("span", { class: `chip ${k === "accuracy" ? (v > 0.5 ? "good" : "bad") : ""}` }, `${k} ${fmt(v, 3)}`));
      const aha = window.EurekaReflective(s.response || "");
      const image = typeof s.image === "string" && IMAGE_URI.test(s.image)
        ? el("img", { class: "sample-image", src: s.image, alt: "the prompt's image" }) : null;
      return el("article", { class: "sample" },
        el("div", { class: "sample-head" }, el("span", { class: "chip" }, `step ${s.step}`), rewards,
          aha ? el("span", { class: "chip aha" }, "reflection") : null),
        el("div", { class: image ? "sample-body with-image" : "sample-body" }, image,
          el("div", {},
            el("div", { class: "field" }, "Prompt"), el("pre", { class: "prompt" }, s.prompt || ""),
            el("div", { class: "field" }, "Response"), el("pre", { class: "response" }, s.response || ""),
            s.answer ? el("div", { class: "field" }, "Answer") : null,
            s.answer ? el("pre", { class: "answer" }, s.answer) : null)));
    });
    $("samples").replaceChildren(...(nodes.length ? nodes : [el("p", { class: "empty" }, "No samples match.")]));
    $("samples-count").textContent = `${answer.samples.length} of ${answer.total}`;
    $("samples-more").hidden = answer.samples.length >= answer.total;
  }

  /* ---------- charts ---------- */

  /** Every series no fixed panel draws, selectable in the last panel. */
  function explorerPanel(names) {
    const shown = new Set(PANELS.flatMap((p) => p.series));
    const others = names.filter((n) => !shown.has(n)).sort();
    let select = $("explore-metric");
    if (!select) {
      select = el("select", { id: "explore-metric", "aria-label": "metric" });
      select.addEventListener("change", () => { state.explore = select.value; renderCharts(); });
    }
    const have = Array.from(select.options).map((o) => o.value);
    if (JSON.stringify(have) !== JSON.stringify(others)) select.replaceChildren(...others.map((n) => el("option", { value: n }, n)));
    if (!others.includes(state.explore)) state.explore = others[0];
    select.value = state.explore || "";
    return { id: "explore", title: "Other metrics", control: select, series: state.explore ? [state.explore] : [] };
  }

  /** In a comparison a panel draws one metric per run: a select picks which. */
  function metricPicker(panel, present) {
    if (state.runs.length < 2 || panel.id === "explore") return { metrics: present, control: null };
    const id = `metric-${panel.id}`;
    let select = $(id);
    if (!select) {
      select = el("select", { id, "aria-label": `${panel.title} metric` });
      select.addEventListener("change", () => { state.chosen[panel.id] = select.value; renderCharts(); });
    }
    const have = Array.from(select.options).map((o) => o.value);
    if (JSON.stringify(have) !== JSON.stringify(present)) select.replaceChildren(...present.map((n) => el("option", { value: n }, n)));
    const choice = present.includes(state.chosen[panel.id]) ? state.chosen[panel.id] : present[0];
    select.value = choice || "";
    return { metrics: choice ? [choice] : [], control: select };
  }

  function panelBox(panel) {
    const grid = $("charts");
    let box = grid.querySelector(`[data-panel="${panel.id}"]`);
    if (!box) {
      const csv = el("button", { type: "button", class: "csv", title: "download this chart as CSV" }, "CSV");
      csv.addEventListener("click", () => downloadCsv(panel.id, panel.title));
      box = el("div", { class: "chart", dataset: { panel: panel.id } },
        el("h3", {}, el("span", { class: "title" }, panel.title), el("span", { class: "control" }), el("span", { class: "spacer" }),
          el("span", { class: "warn-chip", hidden: true }), csv),
        el("div", { class: "plot" }));
      grid.append(box);
    }
    return box;
  }

  function renderCharts() {
    const names = [...new Set(state.runs.flatMap((r) => Object.keys(r.series)))];
    for (const panel of [...PANELS, explorerPanel(names)]) {
      const box = panelBox(panel);
      const present = panel.series.filter((n) => names.includes(n));
      const { metrics, control } = metricPicker(panel, present);
      const slot = box.querySelector(".control");
      const want = control || panel.control || null;
      if (want && slot.firstChild !== want) slot.replaceChildren(want);
      if (!want) slot.replaceChildren();
      const lines = panelLines(state.runs, metrics, state.opts);
      const data = state.grid.render(panel.id, box.querySelector(".plot"), lines, state.opts);
      box.dataset.points = data ? String(data[0].length) : "0";
      box.dataset.series = lines.filter((l) => l.xs.length).map((l) => l.label).join(",");
      const bad = lines.filter((l) => l.nonfinite.length);
      const chip = box.querySelector(".warn-chip");
      chip.hidden = !bad.length;
      chip.textContent = bad.length ? `NaN/Inf at step ${bad.flatMap((l) => l.nonfinite).slice(0, 5).join(", ")}` : "";
      chip.title = bad.map((l) => `${l.label}: steps ${l.nonfinite.join(", ")}`).join("\n");
    }
    markZoom();
  }

  /** The x range shown, on every panel (tests and screenshots read it). */
  function markZoom() {
    for (const [id, chart] of Object.entries(state.grid.charts)) {
      const box = document.querySelector(`[data-panel="${id}"]`);
      if (!box) continue;
      box.dataset.xMin = fmt(chart.scales.x.min, 4);
      box.dataset.xMax = fmt(chart.scales.x.max, 4);
    }
    $("zoom-reset").hidden = !state.grid.zoom;
  }

  function downloadCsv(id, title) {
    const chart = state.grid.charts[id];
    if (!chart) return;
    const labels = chart.series.slice(1).map((s) => s.label);
    const blob = new Blob([toCsv(state.opts.x === "time" ? "minutes" : "step", labels, chart.data)], { type: "text/csv" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `${title.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  /* ---------- refresh ---------- */

  async function refreshJob(namespace, name) {
    const base = jobPath(namespace, name);
    const q = new URLSearchParams({ limit: String(state.samples.limit) });
    if (state.samples.step) q.set("step", state.samples.step);
    if (state.samples.kind) q.set("kind", state.samples.kind);
    const [job, metrics, samples] = await Promise.all([
      api(base), api(`${base}/metrics?maxPoints=${MAX_POINTS}`), api(`${base}/samples?${q}`)]);
    if (!state.jobs.length) state.jobs = await api("/api/jobs");
    state.runs = [{ key: `${namespace}/${name}`, label: name, series: metrics.series }];
    renderDetail(job, metrics.series);
    renderCharts();
    renderSamples(samples);
    return [job.summary];
  }

  async function refreshCompare(keys) {
    const answers = await Promise.all(keys.map(async (key) => {
      const [ns, name] = key.split("/");
      const [job, metrics] = await Promise.all([api(jobPath(ns, name)), api(`${jobPath(ns, name)}/metrics?maxPoints=${MAX_POINTS}`)]);
      return { key, job, metrics };
    }));
    state.runs = answers.map((a) => ({ key: a.key, label: a.key, series: a.metrics.series }));
    $("compare-runs").replaceChildren(...answers.map((a, i) => {
      const rest = keys.filter((k) => k !== a.key);
      const remove = el("a", { href: rest.length > 1 ? compareHash(rest) : jobHash(...rest[0].split("/")), class: "remove", title: "leave out" }, "\u00d7");
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = window.EurekaCharts.COLORS[i % window.EurekaCharts.COLORS.length];
      return el("span", { class: "run-chip" }, swatch, el("a", { href: jobHash(a.job.namespace, a.job.name) }, a.key), phaseBadge(a.job.summary), remove);
    }));
    document.title = `Compare ${keys.length} runs \u00b7 Eureka`;
    renderCharts();
    return answers.map((a) => a.job.summary);
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
    const entered = $("token").value.trim() || token();
    if (!entered) { notice("Enter a bearer token first (printed by `eureka serve`, or your Kubernetes token).", true); return; }
    if (verb === "delete" && !window.confirm(`Delete RLJob ${job.namespace}/${job.name}?`)) return;
    const base = jobPath(job.namespace, job.name);
    const resp = await fetch(verb === "delete" ? base : `${base}/${verb}`, {
      method: verb === "delete" ? "DELETE" : "POST",
      headers: { Authorization: `Bearer ${entered}`, Accept: "application/json" },
    });
    if (!resp.ok) {
      let body = null;
      try { body = await resp.json(); } catch (_) { /* not JSON */ }
      notice(`${verb} failed: ${resp.status} ${detailText(body, resp.statusText)}`, true);
      return;
    }
    sessionStorage.setItem("eureka-token", entered);  // this tab only, gone when it closes
    $("token").value = "";
    notice(`${verb === "delete" ? "Deleted" : verb === "suspend" ? "Suspended" : "Resumed"} ${job.namespace}/${job.name}.`, false);
    if (verb === "delete") { state.keepNotice = true; location.hash = "#/"; }
    else await tick();
  }

  /* ---------- routing and polling ---------- */

  function parseRoute() {
    const hash = location.hash;
    let match = hash.match(/^#\/jobs\/([^/]+)\/([^/]+)$/);
    if (match) return { view: "job", namespace: decodeURIComponent(match[1]), name: decodeURIComponent(match[2]) };
    match = hash.match(/^#\/compare\/(.+)$/);
    if (match) {
      const parts = match[1].split("/").map(decodeURIComponent);
      const keys = [];
      for (let i = 0; i + 1 < parts.length; i += 2) keys.push(`${parts[i]}/${parts[i + 1]}`);
      if (keys.length >= 2) return { view: "compare", keys: [...new Set(keys)] };
    }
    return { view: "jobs" };
  }

  /** One poll; returns whether to poll again (a page of finished runs is left alone). */
  async function tick() {
    const route = state.route;
    try {
      let summaries = null;
      if (route.view === "job") summaries = await refreshJob(route.namespace, route.name);
      else if (route.view === "compare") summaries = await refreshCompare(route.keys);
      else await refreshJobs();
      showError(null);
      state.polls += 1;
      document.body.dataset.polls = String(state.polls);
      const done = summaries && summaries.every((s) => FINISHED.has(s.phase));
      stamp(done ? `finished \u00b7 updated ${new Date().toLocaleTimeString()} \u00b7 not polling` : null);
      return !done;
    } catch (err) {
      showError(err);
      return true;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    const route = state.route;
    const loop = async () => {
      const again = await tick();
      if (again && state.route === route) state.timer = setTimeout(loop, POLL_MS);
    };
    loop();
  }

  function navigate() {
    clearTimeout(state.timer);
    const previous = state.route;
    state.route = parseRoute();
    const view = state.route.view;
    $("jobs-view").hidden = view !== "jobs";
    $("job-view").hidden = view === "jobs";
    for (const node of document.querySelectorAll(".job-only")) node.hidden = view !== "job";
    for (const node of document.querySelectorAll(".compare-only")) node.hidden = view !== "compare";
    if (!state.keepNotice) notice("", false);
    state.keepNotice = false;
    state.job = null;
    state.polls = 0; // polls of this view (data-polls on <body>)
    const sameRuns = previous && JSON.stringify(previous.keys || [previous.namespace, previous.name]) === JSON.stringify(state.route.keys || [state.route.namespace, state.route.name]);
    if (view === "jobs" || !sameRuns) {
      state.grid.clear();
      $("charts").replaceChildren();
      state.samples = { step: "", kind: "", limit: SAMPLES_PAGE };
      $("samples-kind").value = "";
    }
    if (view === "jobs") document.title = "Eureka \u00b7 RL jobs";
    schedule();
  }

  function bindControls() {
    const opts = state.opts;
    const rerender = () => { if (state.runs.length) renderCharts(); };
    $("opt-smoothing").addEventListener("input", (e) => { opts.smoothing = Number(e.target.value); $("opt-smoothing-value").textContent = e.target.value; rerender(); });
    $("opt-log").addEventListener("change", (e) => { opts.log = e.target.checked; rerender(); });
    $("opt-outliers").addEventListener("change", (e) => { opts.outliers = e.target.checked; rerender(); });
    $("opt-x").addEventListener("change", (e) => { opts.x = e.target.value; state.grid.zoom = null; rerender(); });
    $("zoom-reset").addEventListener("click", () => { state.grid.zoom = null; state.grid.clear(); $("charts").replaceChildren(); rerender(); });
    $("compare-with").addEventListener("change", (e) => {
      if (e.target.value && state.route.view === "job") location.hash = compareHash([`${state.route.namespace}/${state.route.name}`, e.target.value]);
    });
    $("compare-selected").addEventListener("click", () => { if (state.selected.size >= 2) location.hash = compareHash([...state.selected]); });
    $("samples-step").addEventListener("change", (e) => { state.samples.step = e.target.value; state.samples.limit = SAMPLES_PAGE; tick(); });
    $("samples-kind").addEventListener("change", (e) => { state.samples.kind = e.target.value; state.samples.limit = SAMPLES_PAGE; tick(); });
    $("samples-more").addEventListener("click", () => { state.samples.limit += SAMPLES_PAGE; tick(); });
    $("read-auth").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("read-token").value.trim();
      if (value) sessionStorage.setItem("eureka-token", value); else sessionStorage.removeItem("eureka-token");
      $("read-token").value = "";
      schedule();
    });
  }

  async function init() {
    fillSelect($("filter-phase"), PHASES);
    for (const id of ["filter-phase", "filter-namespace"]) $(id).addEventListener("change", renderJobs);
    $("filter-text").addEventListener("input", renderJobs);
    window.addEventListener("hashchange", navigate);
    for (const verb of ["suspend", "resume", "delete"]) {
      $(`action-${verb}`).addEventListener("click", () => act(verb).catch((err) => notice(String(err), true)));
    }
    bindControls();
    let pending = null;
    window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(() => state.grid.resize(), 150); });
    try {
      const info = await api("/api");
      state.writable = info.writable;
      state.protectReads = info.protect_reads;
      $("read-auth").hidden = !info.protect_reads;
      $("backend").textContent = info.writable ? info.backend : `${info.backend} \u00b7 read-only`;
    } catch (err) { showError(err); }
    navigate();
  }

  // The same phrases as the trainer's `reflection/rate` (eureka_trainer/rewards/reflection.py).
  const REFLECTIVE = /\b(?:wait|re-check|recheck|double-check|double check|verify|re-evaluate|reevaluate|reconsider|rethink|let me check|mistake|hmm)\b/i;
  window.EurekaReflective = (text) => REFLECTIVE.test(text);

  init();
})();
