// `eddy top`: a live view of a running Eddy, per function type: messages and failures per
// second, latency, backlog, in flight, paused; and the totals. Polls GET /v1/stats and GET
// /v1/function-types (top/view.ts makes rates of two polls, top/render.ts the lines); on a
// terminal it redraws in place on the alternate screen and ends on q or Ctrl-C, leaving the
// terminal as it found it. --once prints one snapshot, after two polls so that it has rates,
// in plain text for scripts.
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ADMIN_CLIENT_OPTIONS, type AdminClient, adminClient } from "../admin-client.ts";
import { renderTop } from "../top/render.ts";
import { type FunctionTypeInfo, type Sample, type Stats, topView } from "../top/view.ts";
import { UsageError } from "../usage.ts";

const INTERVAL_MS_DEFAULT = 1000;
const INTERVAL_MS_MIN = 50;
/** A poll that takes longer than this is shown as not answering; the next one tries again. */
const POLL_TIMEOUT_MS = 5000;

const ENTER_SCREEN = "\x1b[?1049h\x1b[?25l";
const LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l";
const HOME = "\x1b[H";
const CLEAR_LINE_END = "\x1b[K";
const CLEAR_SCREEN_END = "\x1b[J";
const CTRL_C = "\u0003";

function parseInterval(text: string | undefined): number {
  if (text === undefined) return INTERVAL_MS_DEFAULT;
  if (!/^\d+$/.test(text) || Number(text) < INTERVAL_MS_MIN) {
    throw new UsageError(`--interval-ms: "${text}" is not a whole number of milliseconds, ${INTERVAL_MS_MIN} or more`);
  }
  return Number(text);
}

async function poll(client: AdminClient): Promise<Sample> {
  const [stats, types] = await Promise.all([
    client.call<Stats>("GET", "/v1/stats", undefined, POLL_TIMEOUT_MS),
    client.call<{ functionTypes: FunctionTypeInfo[] }>("GET", "/v1/function-types", undefined, POLL_TIMEOUT_MS),
  ]);
  return { stats, functionTypes: types.functionTypes };
}

function headerOf(client: AdminClient, nowMs: number, intervalMs: number): string {
  return `eddy top  ${client.where}  ${new Date(nowMs).toISOString()}  every ${intervalMs} ms`;
}

export async function topCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...ADMIN_CLIENT_OPTIONS, "interval-ms": { type: "string" }, once: { type: "boolean" } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(" ")}`);
  const intervalMs = parseInterval(values["interval-ms"]);
  const client = adminClient(values);
  // The first poll's failure ends the command: there is nothing to show, and the error says why.
  const first = await poll(client);
  if (values.once === true) {
    await sleep(intervalMs);
    const second = await poll(client);
    const view = topView(first, second);
    process.stdout.write(`${renderTop(view, headerOf(client, view.nowMs, intervalMs)).join("\n")}\n`);
    return;
  }
  await live(client, first, intervalMs);
}

/** Redraws until q, Ctrl-C or SIGTERM; a poll that fails is shown, and the next tries again. */
async function live(client: AdminClient, first: Sample, intervalMs: number): Promise<void> {
  const terminal = process.stdout.isTTY === true;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const keys = process.stdin.isTTY === true ? process.stdin : undefined;
  const onKey = (key: Buffer) => {
    const text = key.toString();
    if (text === "q" || text === "Q" || text === CTRL_C) stop.abort();
  };
  if (keys !== undefined) {
    // Raw mode: q works without Enter, and Ctrl-C arrives as a key, not as SIGINT.
    keys.setRawMode(true);
    keys.on("data", onKey);
    keys.resume();
  }
  if (terminal) process.stdout.write(ENTER_SCREEN);
  const draw = (lines: string[]) => {
    if (!terminal) {
      process.stdout.write(`${lines.join("\n")}\n\n`);
      return;
    }
    const width = process.stdout.columns ?? 0;
    const height = process.stdout.rows ?? 0;
    const shown = (height > 0 ? lines.slice(0, height - 1) : lines).map((line) =>
      width > 0 ? line.slice(0, width) : line,
    );
    process.stdout.write(`${HOME}${shown.map((line) => `${line}${CLEAR_LINE_END}`).join("\n")}\n${CLEAR_SCREEN_END}`);
  };
  try {
    let previous = first;
    let view = topView(undefined, first);
    draw(renderTop(view, headerOf(client, view.nowMs, intervalMs)));
    while (!stop.signal.aborted) {
      await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      try {
        const current = await poll(client);
        view = topView(previous, current);
        previous = current;
        draw(renderTop(view, headerOf(client, view.nowMs, intervalMs)));
      } catch (error) {
        const lines = renderTop(view, headerOf(client, view.nowMs, intervalMs));
        draw([...lines, "", `no answer: ${(error as Error).message}; trying again every ${intervalMs} ms`]);
      }
    }
  } finally {
    if (terminal) process.stdout.write(LEAVE_SCREEN);
    if (keys !== undefined) {
      keys.off("data", onKey);
      keys.setRawMode(false);
      keys.pause();
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
