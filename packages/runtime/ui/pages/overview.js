// The overview: what Eddy is doing now, as tiles, and over the last five minutes, as uPlot
// charts redrawn from the sampler's history once a second. A chart whose series change (a
// function type is used for the first time) is rebuilt; otherwise only its data is replaced,
// which uPlot draws in well under a millisecond for 300 points.

import { api, describeError } from "../api.js";
import { formatBytes, formatDuration, formatMs, formatNumber, formatTime, h, replace } from "../dom.js";
import { history, latest, onSample, rate, recentRate, samplingError, WINDOW_MS } from "../stats.js";
import uPlot from "../vendor/uPlot.esm.js";

/** @typedef {import("../stats.js").Stats} Stats */

const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d"];
/** Per-type charts show this many types, the busiest: a module of 200 types stays readable. */
const TYPES_CHARTED_MAX = 6;

/**
 * A chart: its series' labels for the current sample, and their values between two samples.
 * @typedef {{ id: string, title: string, format: (value: number | null) => string,
 *   labels: (last: Stats) => string[],
 *   values: (previous: Stats, current: Stats, labels: string[]) => (number | null)[],
 *   headline: (last: Stats) => string }} ChartSpec
 */

/** @param {number | null} value */
const perSecond = (value) => (value === null ? "–" : `${formatNumber(value)}/s`);

/**
 * The function types to chart: the busiest by messages handled.
 * @param {Stats} last
 */
function chartedTypes(last) {
  return Object.entries(last.functionTypes)
    .sort(([, a], [, b]) => b.invocations - a.invocations)
    .slice(0, TYPES_CHARTED_MAX)
    .map(([typename]) => typename)
    .sort();
}

/** @param {Record<string, import("../stats.js").TypeStats>} types */
const sumOf = (types, /** @type {"backlog" | "inFlight" | "deadLetters" | "failures"} */ field) =>
  Object.values(types).reduce((sum, type) => sum + (type[field] ?? 0), 0);

/** @type {ChartSpec[]} */
const CHARTS = [
  {
    id: "messages",
    title: "Messages / s",
    format: perSecond,
    labels: () => ["handled", "failed calls"],
    values: (previous, current) => [
      rate(previous, current, (stats) => stats.totals.invocations),
      rate(previous, current, (stats) => stats.totals.failures),
    ],
    headline: () => perSecond(recentRate((stats) => stats.totals.invocations)),
  },
  {
    id: "invocations",
    title: "Invocations / s by function type",
    format: perSecond,
    labels: chartedTypes,
    values: (previous, current, labels) =>
      labels.map((typename) => rate(previous, current, (stats) => stats.functionTypes[typename]?.invocations)),
    headline: (last) => `${Object.keys(last.functionTypes).length} types`,
  },
  {
    id: "latency",
    title: "Function latency p50 / p99 (last 10 s)",
    format: formatMs,
    labels: (last) => chartedTypes(last).flatMap((typename) => [`${typename} p50`, `${typename} p99`]),
    values: (_previous, current, labels) =>
      labels.map((label) => {
        const [typename, quantile] = label.split(" ");
        const latency = current.functionTypes[typename ?? ""]?.latencyMs;
        return latency ? latency[quantile === "p50" ? "p50" : "p99"] : null;
      }),
    headline: (last) => {
      const p99s = Object.values(last.functionTypes).map((type) => type.latencyMs?.p99 ?? 0);
      return `p99 ≤ ${formatMs(Math.max(0, ...p99s))}`;
    },
  },
  {
    id: "commits",
    title: "Commit latency p50 / p99 (last 10 s)",
    format: formatMs,
    labels: () => ["p50", "p99"],
    values: (_previous, current) => [
      current.totals.commitLatencyMs?.p50 ?? null,
      current.totals.commitLatencyMs?.p99 ?? null,
    ],
    headline: () => perSecond(recentRate((stats) => stats.totals.commits)).replace("/s", " commits/s"),
  },
  {
    id: "io",
    title: "Ingress requests and egress records / s",
    format: perSecond,
    labels: () => ["ingress", "egress"],
    values: (previous, current) => [
      rate(previous, current, (stats) => stats.totals.ingressRequests),
      rate(previous, current, (stats) => stats.totals.egressRecords),
    ],
    headline: () =>
      `${perSecond(recentRate((stats) => stats.totals.ingressRequests))} in, ${perSecond(recentRate((stats) => stats.totals.egressRecords))} out`,
  },
  {
    id: "lag",
    title: "Kafka lag (messages)",
    format: formatNumber,
    labels: () => ["lag"],
    values: (_previous, current) => [current.totals.kafkaLagMessages ?? null],
    headline: (last) =>
      last.totals.kafkaLagMessages === null || last.totals.kafkaLagMessages === undefined
        ? "no Kafka ingress"
        : formatNumber(last.totals.kafkaLagMessages),
  },
  {
    id: "backlog",
    title: "Backlog and in flight (messages)",
    format: formatNumber,
    labels: () => ["backlog", "in flight"],
    values: (_previous, current) => [sumOf(current.functionTypes, "backlog"), sumOf(current.functionTypes, "inFlight")],
    headline: (last) => `${formatNumber(sumOf(last.functionTypes, "backlog"))} waiting`,
  },
];

/**
 * @param {HTMLElement} element
 * @param {ChartSpec} spec
 * @param {string[]} labels
 */
function makePlot(element, spec, labels) {
  const style = getComputedStyle(document.documentElement);
  const axis = style.getPropertyValue("--muted").trim() || "#666";
  const grid = style.getPropertyValue("--grid").trim() || "#eee";
  /** @type {uPlot.Axis} */
  const xAxis = { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid } };
  return new uPlot(
    {
      width: Math.max(200, element.clientWidth),
      height: 170,
      // The last five minutes, whatever has been sampled: the chart scrolls instead of stretching.
      // At least a minute, growing to five: a fresh page does not squeeze its seconds into a corner.
      scales: {
        x: {
          time: true,
          range: (_plot, min, max) => [max - Math.min(WINDOW_MS / 1000, Math.max(60, max - min)), max],
        },
        // From zero: a rate that wobbles between 150 and 160 is steady, not a cliff.
        y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      series: [
        {},
        ...labels.map((label, index) => ({
          label,
          stroke: PALETTE[index % PALETTE.length],
          width: 1.5,
          dash: label.endsWith(" p50") ? [4, 3] : undefined,
          value: (/** @type {uPlot} */ _plot, /** @type {number | null} */ value) => spec.format(value),
        })),
      ],
      axes: [
        xAxis,
        {
          ...xAxis,
          size: 64,
          values: (_plot, splits) => splits.map((value) => spec.format(value).replace("/s", "")),
        },
      ],
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    },
    [[]],
    element,
  );
}

/** @param {HTMLElement} root @param {string[]} _params @param {AbortSignal} signal */
export function mount(root, _params, signal) {
  const tiles = h("div", { class: "tiles" });
  const problem = h("p", { class: "problem", hidden: true });
  const grid = h("div", { class: "charts" });
  replace(root, h("h1", {}, "Overview"), problem, tiles, grid);

  /** @type {Map<string, { spec: ChartSpec, card: HTMLElement, now: HTMLElement, plotAt: HTMLElement, plot?: uPlot, key?: string }>} */
  const charts = new Map();
  for (const spec of CHARTS) {
    const now = h("span", { class: "now" }, "–");
    const plotAt = h("div", { class: "plot" });
    const card = h(
      "section",
      { class: "card chart", dataset: { chart: spec.id } },
      h("header", {}, h("h2", {}, spec.title), now),
      plotAt,
    );
    grid.append(card);
    charts.set(spec.id, { spec, card, now, plotAt });
  }

  /** @type {any} */
  let overview;
  const loadOverview = async () => {
    try {
      overview = await api("GET", "v1/overview", { signal });
    } catch (error) {
      if (!signal.aborted) overview = { error: describeError(error) };
    }
  };

  const redraw = () => {
    const error = samplingError();
    problem.hidden = error === undefined;
    if (error !== undefined) problem.textContent = `The numbers are not updating: ${describeError(error)}`;
    const last = latest();
    renderTiles(tiles, last, overview);
    if (last === undefined) return;
    const samples = history();
    for (const chart of charts.values()) {
      const labels = chart.spec.labels(last);
      const key = labels.join("\n");
      if (chart.plot === undefined || chart.key !== key) {
        chart.plot?.destroy();
        chart.plot = makePlot(chart.plotAt, chart.spec, labels);
        chart.key = key;
      }
      /** @type {number[]} */
      const xs = [];
      /** @type {(number | null)[][]} */
      const columns = labels.map(() => []);
      for (let i = 1; i < samples.length; i++) {
        const previous = /** @type {Stats} */ (samples[i - 1]);
        const current = /** @type {Stats} */ (samples[i]);
        xs.push(current.nowMs / 1000);
        const values = chart.spec.values(previous, current, labels);
        for (const [index, value] of values.entries()) columns[index]?.push(value);
      }
      chart.plot.setData(/** @type {uPlot.AlignedData} */ ([xs, ...columns]));
      chart.now.textContent = chart.spec.headline(last);
    }
  };

  const resize = new ResizeObserver(() => {
    for (const chart of charts.values())
      chart.plot?.setSize({ width: Math.max(200, chart.plotAt.clientWidth), height: 170 });
  });
  resize.observe(grid);

  void loadOverview().then(redraw);
  const overviewTimer = setInterval(() => void loadOverview(), 5000);
  const stop = onSample(redraw);
  redraw();
  signal.addEventListener("abort", () => {
    stop();
    clearInterval(overviewTimer);
    resize.disconnect();
    for (const chart of charts.values()) chart.plot?.destroy();
  });
}

/**
 * @param {HTMLElement} tiles
 * @param {Stats | undefined} last
 * @param {any} overview
 */
function renderTiles(tiles, last, overview) {
  /** @type {[string, string, string][]} label, value, id */
  const entries = [];
  if (last !== undefined) {
    const types = last.functionTypes;
    entries.push(
      ["Messages handled", formatNumber(last.totals.invocations), "invocations"],
      ["Now", perSecond(recentRate((stats) => stats.totals.invocations)), "rate"],
      ["Backlog", formatNumber(sumOf(types, "backlog")), "backlog"],
      ["In flight", formatNumber(sumOf(types, "inFlight")), "in-flight"],
      ["Failed calls", formatNumber(last.totals.failures), "failures"],
      ["Dead letters since start", formatNumber(sumOf(types, "deadLetters")), "dead-letters"],
    );
  }
  if (overview !== undefined && overview.error === undefined) {
    const last = overview.checkpoints?.last;
    entries.push(
      ["Mode", overview.mode, "mode"],
      ["Partitions owned", `${overview.ownedPartitions} of ${overview.partitions}`, "partitions"],
      ["Up for", formatDuration(overview.nowMs - overview.startedAtMs), "uptime"],
      ["State on disk", formatBytes(overview.stateBytesOnDisk), "state-bytes"],
      ["Delayed messages", formatNumber(overview.delayedMessagesPending), "delayed"],
      [
        "Last checkpoint",
        overview.checkpoints?.enabled ? (last ? formatTime(last.atMs, overview.nowMs) : "none yet") : "off",
        "checkpoint",
      ],
    );
  }
  replace(
    tiles,
    entries.map(([label, value, id]) =>
      h(
        "div",
        { class: "tile", dataset: { tile: id } },
        h("span", { class: "label" }, label),
        h("span", { class: "value" }, value),
      ),
    ),
  );
}
