// The function types: health, rates and latency, pause and resume. The list (a module's types,
// tens, not millions) is read every two seconds; rates come from the stats sampler, over the
// last ten seconds so that one slow second does not make a function look broken.

import { addressPath, api, describeError } from "../api.js";
import { formatMs, formatNumber, formatTime, h, replace, sleep, toast } from "../dom.js";
import { onSample, recentRate } from "../stats.js";

const REFRESH_MS = 2000;
const RATE_SPAN_MS = 10_000;

/**
 * @typedef {{ typename: string, endpoint: { kind: "http", url: string } | { kind: "in-process" },
 *   paused: boolean, backlog: number, inFlight: number, invocations: number, failures: number,
 *   health: { status: "ok" | "failing" | "idle", lastSuccessAtMs: number | null,
 *     lastFailureAtMs: number | null, lastError: string | null,
 *     latencyMs: { p50: number, p99: number } | null } }} FunctionType
 */

/** @param {HTMLElement} root @param {string[]} _params @param {AbortSignal} signal */
export function mount(root, _params, signal) {
  const filter = h("input", { type: "search", placeholder: "filter by typename", class: "filter" });
  const problem = h("p", { class: "problem", hidden: true });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "grid functions" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [
          "Function type",
          "Health",
          "Messages/s",
          "Failed calls/s",
          "Error rate",
          "p50",
          "p99",
          "Backlog",
          "In flight",
          "Handled",
          "Last success",
          "Last failure",
          "",
        ].map((title) => h("th", {}, title)),
      ),
    ),
    body,
  );
  replace(
    root,
    h("h1", {}, "Functions"),
    h("div", { class: "toolbar" }, filter),
    problem,
    h("div", { class: "scroll" }, table),
  );

  /** @type {FunctionType[]} */
  let types = [];

  const render = () => {
    const needle = /** @type {HTMLInputElement} */ (filter).value.trim();
    const shown = types.filter((type) => type.typename.includes(needle));
    replace(
      body,
      shown.length === 0
        ? h(
            "tr",
            {},
            h("td", { colspan: 13, class: "empty" }, types.length === 0 ? "No function types yet." : "None matches."),
          )
        : null,
      shown.map((type) => row(type, pauseButton(type))),
    );
  };

  // The table is redrawn every second; a row's button is kept across redraws, so a click that
  // lands between two of them (press on the old button, release on a new one) is not lost.
  /** @type {Map<string, HTMLButtonElement>} */
  const buttons = new Map();
  /** @param {FunctionType} type */
  const pauseButton = (type) => {
    let button = buttons.get(type.typename);
    if (button === undefined) {
      const typename = type.typename;
      button = /** @type {HTMLButtonElement} */ (h("button", { type: "button" }));
      button.addEventListener("click", () => {
        const current = types.find((candidate) => candidate.typename === typename);
        if (current !== undefined) void setPaused(current, !current.paused);
      });
      buttons.set(typename, button);
    }
    button.textContent = type.paused ? "Resume" : "Pause";
    return button;
  };

  /** @param {FunctionType} type @param {boolean} pause */
  const setPaused = async (type, pause) => {
    try {
      const updated = await api(
        "POST",
        `v1/function-types/${addressPath(type.typename)}/${pause ? "pause" : "resume"}`,
        { signal },
      );
      types = types.map((candidate) => (candidate.typename === updated.typename ? updated : candidate));
      render();
      toast(`${type.typename} ${pause ? "paused: its messages wait" : "resumed"}`);
    } catch (error) {
      if (!signal.aborted) toast(describeError(error), "error");
    }
  };

  const poll = async () => {
    while (!signal.aborted) {
      try {
        types = (await api("GET", "v1/function-types", { signal })).functionTypes;
        problem.hidden = true;
        render();
      } catch (error) {
        if (signal.aborted) return;
        problem.hidden = false;
        problem.textContent = describeError(error);
      }
      await sleep(REFRESH_MS, signal);
    }
  };

  filter.addEventListener("input", render);
  const stop = onSample(render);
  signal.addEventListener("abort", stop);
  void poll();
}

/**
 * @param {FunctionType} type
 * @param {HTMLButtonElement} pauseButton
 */
function row(type, pauseButton) {
  const handled = recentRate((stats) => stats.functionTypes[type.typename]?.invocations, RATE_SPAN_MS);
  const failed = recentRate((stats) => stats.functionTypes[type.typename]?.failures, RATE_SPAN_MS);
  // Failed calls over all attempts: a batch that fails three times and then succeeds shows 75 %.
  const attempts = (handled ?? 0) + (failed ?? 0);
  const errorRate = attempts > 0 ? (failed ?? 0) / attempts : null;
  const status = type.paused ? "paused" : type.health.status;
  const endpoint = type.endpoint.kind === "http" ? type.endpoint.url : "in-process";
  return h(
    "tr",
    { dataset: { typename: type.typename } },
    h(
      "td",
      {},
      h("a", { href: `#/state/${addressPath(type.typename)}`, title: `state of ${type.typename}` }, type.typename),
      h("div", { class: "sub" }, endpoint),
    ),
    h(
      "td",
      {},
      h("span", { class: `badge ${status}` }, status),
      type.health.lastError
        ? h("div", { class: "sub error-text", title: type.health.lastError }, type.health.lastError)
        : null,
    ),
    h("td", { class: "num" }, formatNumber(handled)),
    h("td", { class: "num" }, formatNumber(failed)),
    h("td", { class: "num" }, errorRate === null ? "–" : `${formatNumber(errorRate * 100)} %`),
    h("td", { class: "num" }, formatMs(type.health.latencyMs?.p50)),
    h("td", { class: "num" }, formatMs(type.health.latencyMs?.p99)),
    h("td", { class: "num" }, formatNumber(type.backlog)),
    h("td", { class: "num" }, formatNumber(type.inFlight)),
    h("td", { class: "num" }, formatNumber(type.invocations)),
    h("td", {}, formatTime(type.health.lastSuccessAtMs)),
    h("td", {}, formatTime(type.health.lastFailureAtMs)),
    h("td", {}, pauseButton),
  );
}
