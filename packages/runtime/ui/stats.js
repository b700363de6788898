// The live numbers: GET /v1/stats once a second, from when the UI opens until it closes (not only
// while the overview shows), kept for the last five minutes. The API gives counters since start;
// rates are differences between two reads over the server's own clock, so a slow poll or a
// paused tab does not make a spike. A counter that went down (Eddy restarted) gives no rate.

import { api } from "./api.js";

export const WINDOW_MS = 5 * 60_000;
const POLL_MS = 1000;

/**
 * @typedef {{ p50: number, p99: number } | null} Latency
 * @typedef {{ invocations: number, failures: number, deadLetters: number, backlog: number,
 *   inFlight: number, paused: boolean, latencyMs: Latency }} TypeStats
 * @typedef {{ nowMs: number, functionTypes: Record<string, TypeStats>, totals: { invocations: number,
 *   failures: number, ingressRequests: number, egressRecords: number, commits: number,
 *   commitLatencyMs: Latency, kafkaLagMessages: number | null } }} Stats
 */

/** @type {Stats[]} oldest first, spanning at most WINDOW_MS */
const samples = [];
/** @type {Set<() => void>} */
const listeners = new Set();
/** @type {unknown} */
let lastError;
let started = false;

/** Starts polling (once; later calls do nothing). */
export function startSampling() {
  if (started) return;
  started = true;
  const poll = async () => {
    try {
      /** @type {Stats} */
      const stats = await api("GET", "v1/stats");
      lastError = undefined;
      const previous = samples.at(-1);
      if (previous === undefined || stats.nowMs > previous.nowMs) samples.push(stats);
      while (samples.length > 0 && /** @type {Stats} */ (samples[0]).nowMs < stats.nowMs - WINDOW_MS) samples.shift();
    } catch (error) {
      lastError = error;
    }
    for (const listener of listeners) listener();
    // The next poll is timed from the end of this one: a slow Eddy is never asked twice at once.
    setTimeout(poll, POLL_MS);
  };
  void poll();
}

/**
 * Calls `listener` after every poll; returns the function that stops it.
 * @param {() => void} listener
 */
export function onSample(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** @returns {readonly Stats[]} */
export function history() {
  return samples;
}

export function latest() {
  return samples.at(-1);
}

export function samplingError() {
  return lastError;
}

/**
 * The per-second rate of a counter between two samples; null when either lacks it or it went down.
 * @param {Stats | undefined} from
 * @param {Stats | undefined} to
 * @param {(stats: Stats) => number | null | undefined} read
 */
export function rate(from, to, read) {
  if (from === undefined || to === undefined || to.nowMs <= from.nowMs) return null;
  const before = read(from);
  const after = read(to);
  if (typeof before !== "number" || typeof after !== "number" || after < before) return null;
  return ((after - before) * 1000) / (to.nowMs - from.nowMs);
}

/**
 * The rate of a counter over the last `spanMs` of samples (smoother than the last second's).
 * @param {(stats: Stats) => number | null | undefined} read
 * @param {number} [spanMs]
 */
export function recentRate(read, spanMs = 5000) {
  const to = samples.at(-1);
  if (to === undefined) return null;
  let from = samples.at(-2);
  for (let i = samples.length - 2; i >= 0; i--) {
    const candidate = /** @type {Stats} */ (samples[i]);
    if (candidate.nowMs < to.nowMs - spanMs) break;
    from = candidate;
  }
  return rate(from, to, read);
}
