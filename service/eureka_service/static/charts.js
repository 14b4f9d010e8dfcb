/* Eureka dashboard charts: one or several runs on uPlot (vendored), with the options a user of
 * TensorBoard or W&B expects: EMA smoothing, log scale, outliers ignored, x by step or wall time,
 * cursor synced across charts, zoom kept across polls, CSV export. Pure data functions first;
 * `ChartGrid` owns the uPlot instances. Exposed as window.EurekaCharts. */
"use strict";

(function () {
  const COLORS = ["#3b5bdb", "#e67700", "#2b8a3e", "#c92a2a", "#7048e8", "#0c8599", "#d6336c", "#5c940d"];
  const STEP_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
  const SYNC_KEY = "eureka";

  /** Exponential moving average like TensorBoard's (debiased, so the start is not pulled to 0).
   * values: [N] numbers or nulls; weight in [0, 1): 0 returns the values unchanged. */
  function ema(values, weight) {
    if (!weight) return values.slice();
    let last = 0, count = 0;
    return values.map((v) => {
      if (v === null || !Number.isFinite(v)) return null;
      last = last * weight + (1 - weight) * v;
      count += 1;
      return last / (1 - Math.pow(weight, count));
    });
  }

  /** The q-th quantile (0..1) of the finite numbers in `values` (null when there are none). */
  function quantile(values, q) {
    const xs = values.filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
    if (!xs.length) return null;
    const pos = (xs.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
  }

  /** step -> seconds since the run's first step, from its `time/step` series (null: not logged). */
  function wallClock(series) {
    const times = series["time/step"];
    if (!times || !times.steps.length) return null;
    const at = new Map();
    let total = 0;
    times.steps.forEach((step, i) => { total += times.values[i]; at.set(step, total); });
    return at;
  }

  /** Lines of one panel: [{label, run, metric, xs, ys, nonfinite}] for every run and metric drawn.
   * runs: [{key, label, series}]; metrics: the panel's metric names; one run draws each metric,
   * several runs draw `metrics[0]` each (the panel's chosen metric). */
  function panelLines(runs, metrics, opts) {
    const lines = [];
    const compare = runs.length > 1;
    for (const run of runs) {
      const clock = opts.x === "time" ? wallClock(run.series) : null;
      if (opts.x === "time" && !clock) continue; // no `time/step`: no place on a time axis
      for (const metric of compare ? metrics.slice(0, 1) : metrics) {
        const s = run.series[metric];
        if (!s || (!s.steps.length && !(s.nonfinite || []).length)) continue;
        let xs = s.steps, ys = s.values;
        if (clock) {
          const keep = s.steps.map((step) => clock.has(step));
          xs = s.steps.filter((_, i) => keep[i]).map((step) => clock.get(step) / 60);
          ys = s.values.filter((_, i) => keep[i]);
        }
        if (opts.log) ys = ys.map((v) => (v > 0 ? v : null));
        lines.push({ label: compare ? run.label : metric, run: run.key, metric, xs, ys: ema(ys, opts.smoothing), nonfinite: s.nonfinite || [] });
      }
    }
    return lines;
  }

  /** uPlot's aligned data: x = sorted union of every line's xs, one y array per line (nulls in gaps). */
  function align(lines) {
    const drawn = lines.filter((l) => l.xs.length);
    if (!drawn.length) return null;
    if (drawn.length === 1) return [drawn[0].xs.slice(), drawn[0].ys.slice()];
    return uPlot.join(drawn.map((l) => [l.xs, l.ys]));
  }

  /** A chart as CSV text: header `x,<label>...`, one row per x. */
  function toCsv(xLabel, labels, data) {
    const quote = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    const rows = [[xLabel, ...labels].map(quote).join(",")];
    for (let i = 0; i < data[0].length; i++) {
      rows.push(data.map((col) => (col[i] === null || col[i] === undefined ? "" : String(col[i]))).join(","));
    }
    return rows.join("\n") + "\n";
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "\u2013";
    if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential(1);
    return Number(value.toFixed(digits)).toString();
  }

  /** Owns one uPlot per panel; keeps zoom (shared x range) across data updates. */
  class ChartGrid {
    constructor(onZoom) {
      this.charts = {};
      this.zoom = null; // {min, max} of the x scale the user chose, or null for everything
      this.applying = false;
      this.onZoom = onZoom || (() => {});
    }

    options(names, opts, width, yRange) {
      const grid = { stroke: "#eef0f4" };
      const self = this;
      return {
        width, height: 220,
        cursor: { drag: { x: true, y: false }, sync: { key: SYNC_KEY, setSeries: false } },
        scales: { x: { time: false }, y: { distr: opts.log ? 3 : 1, range: yRange } },
        axes: [
          { label: opts.x === "time" ? "minutes" : "step", size: 36, grid, incrs: opts.x === "time" ? undefined : STEP_INCRS },
          { size: 64, grid, values: (u, ticks) => ticks.map((t) => fmt(t, 4)) },
        ],
        series: [{ label: opts.x === "time" ? "min" : "step" }, ...names.map((name, i) => ({
          label: name, stroke: COLORS[i % COLORS.length], width: 1.6, spanGaps: true,
          points: { show: false }, value: (u, v) => fmt(v, 4) }))],
        hooks: { setScale: [(u, key) => { if (key === "x") self.scaleChanged(u); }] },
      };
    }

    /** A user zoom (drag) or reset (double-click) on one chart: remembered and applied to all. */
    scaleChanged(chart) {
      if (this.applying) return;
      const { min, max } = chart.scales.x;
      const xs = chart.data[0];
      const full = !xs.length || (min <= xs[0] && max >= xs[xs.length - 1]);
      this.zoom = full ? null : { min, max };
      this.applying = true;
      try {
        for (const other of Object.values(this.charts)) {
          if (other === chart) continue;
          if (this.zoom) other.setScale("x", this.zoom);
          else other.setData(other.data, true);
        }
      } finally { this.applying = false; }
      this.onZoom(this.zoom);
    }

    /** Draw or update the panel `id` in `plot` with `lines`; returns the aligned data (or null). */
    render(id, plot, lines, opts) {
      const data = align(lines);
      const existing = this.charts[id];
      if (!data) {
        if (existing) { existing.destroy(); delete this.charts[id]; }
        plot.replaceChildren(Object.assign(document.createElement("div"), { className: "nodata", textContent: "no data yet" }));
        return null;
      }
      const names = lines.filter((l) => l.xs.length).map((l) => l.label);
      const signature = JSON.stringify([names, opts.log, opts.x, opts.outliers]);
      const yRange = this.yRange(data, opts);
      this.applying = true;
      try {
        if (existing && existing.eurekaSignature === signature) {
          existing.eurekaHolder.range = yRange;
          existing.setData(data, true);
        } else {
          if (existing) existing.destroy();
          plot.replaceChildren();
          const holder = { range: yRange };
          const range = (u, min, max) => holder.range(u, min, max);
          const chart = new uPlot(this.options(names, opts, Math.max(280, plot.clientWidth || 380), range), data, plot);
          chart.eurekaHolder = holder;
          chart.eurekaSignature = signature;
          this.charts[id] = chart;
        }
        if (this.zoom) this.charts[id].setScale("x", this.zoom);
      } finally { this.applying = false; }
      return data;
    }

    /** y range: a flat series gets a band; with `outliers` off the 1st..99th percentile only. */
    yRange(data, opts) {
      let lo = null, hi = null;
      if (opts.outliers && !opts.log) {
        const ys = data.slice(1).flat();
        lo = quantile(ys, 0.01); hi = quantile(ys, 0.99);
      }
      return (u, min, max) => {
        if (lo !== null && hi !== null && hi > lo) { min = Math.max(min, lo); max = Math.min(max, hi); }
        if (min === null || max === null) return [0, 1];
        if (opts.log) return min === max ? [min / 10, max * 10] : uPlot.rangeLog(min, max, 10, true);
        if (min === max) return min === 0 ? [0, 1] : [min - Math.abs(min) * 0.5, max + Math.abs(max) * 0.5];
        return uPlot.rangeNum(min, max, 0.1, true);
      };
    }

    resize() {
      for (const [id, chart] of Object.entries(this.charts)) {
        const plot = document.querySelector(`[data-panel="${id}"] .plot`);
        if (plot && plot.clientWidth) chart.setSize({ width: plot.clientWidth, height: 220 });
      }
    }

    drop(id) {
      if (this.charts[id]) { this.charts[id].destroy(); delete this.charts[id]; }
    }

    clear() {
      for (const id of Object.keys(this.charts)) this.drop(id);
      this.zoom = null;
    }
  }

  window.EurekaCharts = { ChartGrid, panelLines, align, ema, quantile, wallClock, toCsv, fmt, COLORS };
})();
